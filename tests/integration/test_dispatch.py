"""workers.dispatch writes the message Celery would write, where a worker reads it.

The comparison runs against a private redis-server: the message Celery's own ``apply_async``
pushes and the one ``run_job_message`` builds, for the same task id, must agree field by field.
A Celery or kombu upgrade that changes either format fails here, not in production.
"""

from __future__ import annotations

import base64
import json
import time
import uuid

import pytest
import redis

from workers import dispatch
from workers.tasks import run_job

pytestmark = pytest.mark.integration


def _messages(url: str, key: str) -> list[dict]:
    return [json.loads(raw) for raw in redis.Redis.from_url(url).lrange(key, 0, -1)]


def _body(message: dict) -> list:
    assert message["properties"]["body_encoding"] == "base64"
    return json.loads(base64.b64decode(message["body"]))


def test_the_message_is_the_one_celery_sends(redis_server, celery_on):
    celery_on(redis_server.url)
    task_id = str(uuid.uuid4())
    run_job.apply_async(args=["job-1"], queue="compare.celery", task_id=task_id, retry=False)
    ours = json.loads(dispatch.run_job_message("job-1", "compare.celery", task_id=task_id))
    [celerys] = _messages(redis_server.url, "compare.celery")

    assert _body(ours) == _body(celerys) == [["job-1"], {}, {"callbacks": None, "errbacks": None,
                                                             "chain": None, "chord": None}]
    assert ours["headers"] == celerys["headers"]
    assert ours["headers"]["timelimit"] == [1860, 1800] and ours["headers"]["ignore_result"] is True
    # Every delivery gets its own tag (kombu's acks and redelivery key on it).
    tags = ours["properties"].pop("delivery_tag"), celerys["properties"].pop("delivery_tag")
    assert tags[0] != tags[1] and all(uuid.UUID(tag) for tag in tags)
    assert ours["properties"] == celerys["properties"]
    assert {k: v for k, v in ours.items() if k not in {"headers", "properties", "body"}} == \
        {k: v for k, v in celerys.items() if k not in {"headers", "properties", "body"}}


def test_send_pushes_onto_the_queue_key_and_honours_a_key_prefix(redis_server, celery_on, settings):
    from qcos.celery import app

    celery_on(redis_server.url)
    dispatch.send_run_job("job-2", "jobs.test")
    [message] = _messages(redis_server.url, "jobs.test")
    assert _body(message)[0] == ["job-2"] and message["headers"]["task"] == "workers.tasks.run_job"

    options = app.conf.broker_transport_options
    app.conf.broker_transport_options = {**options, "global_keyprefix": "qcos:"}
    try:
        dispatch.send_run_job("job-3", "jobs.test")
        run_job.apply_async(args=["job-4"], queue="jobs.test", retry=False)
    finally:
        app.conf.broker_transport_options = options
    assert [_body(m)[0] for m in _messages(redis_server.url, "qcos:jobs.test")] == [["job-4"], ["job-3"]]


@pytest.mark.parametrize("conf", [
    {"broker_url": "redis://127.0.0.1:1/0", "task_always_eager": True},  # the embedded default
    {"broker_url": "amqp://guest@127.0.0.1//"},
    {"broker_url": "rediss://127.0.0.1:1/0?ssl_cert_reqs=required"},
    {"broker_url": "redis://127.0.0.1:1/0", "broker_use_ssl": {"ssl_cert_reqs": "required"}},
    {"broker_url": "redis://127.0.0.1:1/0;redis://127.0.0.1:2/0"},  # failover
    {"broker_url": ["redis://127.0.0.1:1/0", "redis://127.0.0.1:2/0"]},
    {"broker_url": "redis+socket:///tmp/redis.sock"},
    {"broker_url": "redis://127.0.0.1:1/0", "broker_transport": "myapp.transport:Transport"},
])
def test_eager_mode_and_other_brokers_go_through_celery(conf, monkeypatch):
    from qcos.celery import app

    keys = ("broker_url", "task_always_eager", "broker_use_ssl", "broker_transport")
    saved = {key: app.conf[key] for key in keys}
    try:
        app.conf.update({"task_always_eager": False, "broker_use_ssl": None, "broker_transport": None, **conf})
        assert dispatch._redis_route() is None
        sent = []
        monkeypatch.setattr(run_job, "apply_async", lambda **kwargs: sent.append(kwargs))
        dispatch.send_run_job("job-8", "jobs.test")
        assert sent == [{"args": ["job-8"], "queue": "jobs.test", "retry": False}]
        # The same broker as plain redis:// takes the direct path.
        app.conf.update(broker_url="redis://127.0.0.1:1/0", task_always_eager=False, broker_use_ssl=None,
                        broker_transport=None)
        assert dispatch._redis_route() is not None
    finally:
        app.conf.update(saved)


def test_a_dead_broker_fails_fast_and_a_restarted_one_is_used_again(redis_server, celery_on):
    celery_on(redis_server.url)
    dispatch.send_run_job("job-5", "jobs.test")  # the process now holds a pooled connection
    redis_server.stop()
    started = time.monotonic()
    with pytest.raises(redis.ConnectionError):
        dispatch.send_run_job("job-6", "jobs.test")
    assert time.monotonic() - started < 2
    redis_server.start()  # empty again; the pooled connection is stale
    dispatch.send_run_job("job-7", "jobs.test")
    assert [_body(m)[0] for m in _messages(redis_server.url, "jobs.test")] == [["job-7"]]
