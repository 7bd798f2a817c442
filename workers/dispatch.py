"""Waking a worker for a job: ``run_job`` published straight onto the Redis list it consumes.

Every submit publishes one ``run_job`` message after its COMMIT, so the publish sits on the path a
job takes from POST to COMPLETED. Through ``run_job.apply_async`` it cost 1.3-2.0 ms on the
measuring machine after a short sleep, as a submit meets it (routing, the producer pool, kombu's
declare cache and envelope, a new redis-py client per publish); the same message written here
with one LPUSH on a client kept per process costs 0.4-0.9 ms (``perf/publish.py``; the figures
are in docs/performance.md).

What is written is exactly what Celery would write:

* the body and headers of Celery's task message protocol 2
  (https://docs.celeryq.dev/en/stable/internals/protocol.html), JSON-serialised as QCOS configures
  Celery (``CELERY_TASK_SERIALIZER = "json"``);
* inside kombu's envelope for its Redis transport (base64 body, ``delivery_info``, a fresh
  ``delivery_tag``), pushed with LPUSH onto the queue's key, as kombu's ``Channel._put`` does for
  the default exchange and priority 0.

``tests/integration/test_dispatch.py`` publishes the same task id both ways into a real redis-server and
compares the two messages field by field, so an upgrade of Celery or kombu that changes either
format fails the suite instead of the workers. The worker side is untouched: it consumes, acks
late and redelivers these messages like any other (the integration tests run jobs through it).

Only a single plain ``redis://`` broker takes this path. In eager mode (the embedded default),
for any other broker, and for setups this module does not reproduce (TLS through ``rediss://`` or
``broker_use_ssl``, failover lists of URLs, a custom ``broker_transport``), ``send_run_job``
calls ``run_job.apply_async``. A failed publish raises, as
``apply_async`` does; the caller logs it and the reconciler enqueues the QUEUED job again.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import uuid
from dataclasses import dataclass
from urllib.parse import urlsplit

import redis
from celery.utils.nodenames import anon_nodename
from redis.backoff import NoBackoff
from redis.retry import Retry

from qcos.celery import app

from .tasks import run_job

# The options part of a protocol 2 body: a plain task, no canvas around it.
_EMBED = {"callbacks": None, "errbacks": None, "chain": None, "chord": None}


@dataclass(frozen=True)
class _RedisRoute:
    client: redis.Redis
    key_prefix: str


_routes: dict[tuple, _RedisRoute] = {}
_routes_lock = threading.Lock()


def send_run_job(job_id: str, queue: str) -> None:
    """Publish ``run_job(job_id)`` to ``queue``; raises when the broker cannot be reached."""
    route = _redis_route()
    if route is None:
        run_job.apply_async(args=[job_id], queue=queue, retry=False)
        return
    route.client.lpush(route.key_prefix + queue, run_job_message(job_id, queue))


def run_job_message(job_id: str, queue: str, *, task_id: str | None = None) -> bytes:
    """The serialised message for ``run_job(job_id)`` on ``queue``, as kombu's Redis transport
    stores it."""
    task_id = task_id or str(uuid.uuid4())
    args = [job_id]
    body = json.dumps([args, {}, _EMBED]).encode()
    envelope = {
        "body": base64.b64encode(body).decode("ascii"),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": {
            "lang": "py",
            "task": run_job.name,
            "id": task_id,
            "shadow": None,
            "eta": None,
            "expires": None,
            "group": None,
            "group_index": None,
            "retries": 0,
            "timelimit": [run_job.time_limit, run_job.soft_time_limit],
            "root_id": task_id,
            "parent_id": None,
            "argsrepr": repr(args),
            "kwargsrepr": "{}",
            "origin": anon_nodename(),
            "ignore_result": bool(run_job.ignore_result),
            "replaced_task_nesting": 0,
            "stamped_headers": None,
            "stamps": {},
        },
        "properties": {
            "correlation_id": task_id,
            "reply_to": app.thread_oid,
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": queue},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": str(uuid.uuid4()),
        },
    }
    return json.dumps(envelope).encode()


def _redis_route() -> _RedisRoute | None:
    """This process's client for the configured broker, or None when Celery must publish (see
    the module docstring). Keyed by the broker's settings, so changing them (as tests do) takes
    effect."""
    conf = app.conf
    url = conf.broker_url
    if (conf.task_always_eager or not isinstance(url, str) or ";" in url or urlsplit(url).scheme != "redis"
            or conf.broker_use_ssl or conf.broker_transport not in (None, "", "redis")):
        return None
    options = conf.broker_transport_options or {}
    key = (os.getpid(), url, options.get("global_keyprefix", ""),
           options.get("socket_connect_timeout"), options.get("socket_timeout"))
    route = _routes.get(key)
    if route is None:
        with _routes_lock:
            route = _routes.get(key)
            if route is None:
                client = redis.Redis.from_url(
                    url,
                    socket_connect_timeout=options.get("socket_connect_timeout"),
                    socket_timeout=options.get("socket_timeout"),
                    # One immediate retry on a fresh connection (the pooled one may predate a
                    # Redis restart), never a backoff: a submit must not hang on a dead broker.
                    retry=Retry(NoBackoff(), 1),
                )
                route = _routes[key] = _RedisRoute(client=client, key_prefix=options.get("global_keyprefix", ""))
    return route
