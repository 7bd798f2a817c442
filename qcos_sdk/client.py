"""HTTP client for the QCOS job API (``/api/v2.1``).

Design notes:

* One ``requests.Session`` per client so connections are pooled across the
  submit-then-poll loop.
* Every submission carries an ``Idempotency-Key``. A POST that dies on the
  wire (connection reset, 502/503/504 from a proxy) may or may not have
  created the job; resending it with the *same* key lets the server return
  the original job instead of running the circuit twice.
* GETs are retried the same way because they are side-effect free; other
  POSTs (cancel) are not, since the client cannot prove they are safe.
* Namespaces added later (``client.ledger``, ``client.bench``...) should
  subclass :class:`Namespace`, which hands them the client's ``_request``
  so they share auth, retries and error mapping.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

import requests

from ._version import __version__
from .errors import (
    ConfigurationError,
    InvalidCircuitError,
    QCOSConnectionError,
    QCOSError,
    QCOSTimeoutError,
    error_from_response,
)
from .bench import Bench
from .ledger import Ledger
from .models import BudgetCheck, CostEstimate, Job

DEFAULT_BASE_URL = "http://127.0.0.1:8000"
API_PREFIX = "/api/v2.1"
ENV_API_KEY = "QCOS_API_KEY"
ENV_BASE_URL = "QCOS_BASE_URL"
RETRYABLE_STATUSES = frozenset({502, 503, 504})
POLL_INITIAL_S = 0.05
POLL_MAX_S = 1.0
POLL_GROWTH = 1.5
MAX_BACKOFF_S = 10.0

QASM_SUFFIXES = (".qasm", ".qasm2", ".qasm3")

ProgressCallback = Callable[[Job], None]
RequestFn = Callable[..., Any]


def check_not_a_path(circuit: str) -> None:
    """Refuse, before any request, a circuit that is a file's name rather than its OpenQASM text
    (``execute("circuit.qasm")``): the server could only answer a parse error at line 1."""
    if not isinstance(circuit, str) or "\n" in circuit or ";" in circuit or len(circuit) > 1024:
        return  # OpenQASM text has statements; a path has neither newlines nor semicolons
    name = circuit.strip()
    if name and (name.lower().endswith(QASM_SUFFIXES) or os.path.isfile(name)):
        raise InvalidCircuitError(
            "INVALID_CIRCUIT",
            f"circuit {name!r} is a file name, not OpenQASM text: pass its contents "
            f"(open({name!r}).read()), or on the command line `qcos execute {name}`",
            details={"hint": "file_path_given", "path": name},
        )


class Namespace:
    """Base for grouped endpoints hung off the client (``client.ledger`` etc.).

    Subclasses call ``self._request(method, path, ...)`` with a path relative
    to ``/api/v2.1`` and get decoded JSON back, or a :class:`QCOSError`.
    """

    def __init__(self, request: RequestFn) -> None:
        self._request = request


class QCOSClient:
    """Client for submitting and tracking QCOS jobs.

    ``api_key``/``base_url`` fall back to ``QCOS_API_KEY``/``QCOS_BASE_URL``.
    ``ledger_enabled``, ``tenant_id`` and ``project`` are sent with every
    submission; leaving tenant/project unset lets the server use the key's
    tenant and its default project. ``sleep`` is how the client waits between
    status polls and request retries (``time.sleep``).
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        ledger_enabled: bool = False,
        tenant_id: str | None = None,
        project: str | None = None,
        request_timeout: float = 30.0,
        max_retries: int = 3,
        retry_backoff: float = 0.25,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.api_key = api_key if api_key is not None else os.environ.get(ENV_API_KEY)
        url = base_url or os.environ.get(ENV_BASE_URL) or DEFAULT_BASE_URL
        self.base_url = url.rstrip("/")
        self.ledger_enabled = ledger_enabled
        self.tenant_id = tenant_id
        self.project = project
        self.request_timeout = request_timeout
        self.max_retries = max(0, max_retries)
        self.retry_backoff = retry_backoff
        self._session = session or requests.Session()
        # How the client waits between polls and retries (a test passes its own: patching
        # time.sleep would change it for every thread in the process).
        self._sleep = sleep
        self._session.headers["User-Agent"] = f"qcos-sdk/{__version__}"
        self._session.headers["Accept"] = "application/json"
        # Grouped endpoints (later: self.bench).
        self.ledger = Ledger(self._request)
        self.bench = Bench(self._request)

    # ------------------------------------------------------------------ jobs
    def execute(
        self,
        circuit: str,
        backend: str = "simulator",
        shots: int = 1024,
        tags: Mapping[str, str] | None = None,
        priority: str | None = None,
        wait: bool = True,
        timeout: float = 300.0,
        idempotency_key: str | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> Job:
        """Submit a circuit and (by default) wait for a terminal status.

        Returns the final :class:`Job`; FAILED/CANCELLED/REJECTED jobs are
        returned, not raised. Raises :class:`QCOSTimeoutError` (with
        ``job_id``) when ``timeout`` seconds pass first, counted from the
        start of this call.
        """
        deadline = time.monotonic() + timeout
        job = self.submit(
            circuit, backend=backend, shots=shots, tags=tags,
            priority=priority, idempotency_key=idempotency_key,
        )
        if on_progress is not None:
            on_progress(job)
        if not wait or job.is_terminal:
            return job
        return self._poll(job, deadline, timeout, on_progress)

    def submit(
        self,
        circuit: str,
        backend: str = "simulator",
        shots: int = 1024,
        tags: Mapping[str, str] | None = None,
        priority: str | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        """Submit a job without waiting; safe to retry with the same key."""
        check_not_a_path(circuit)
        ledger: dict[str, Any] = {"enabled": self.ledger_enabled}
        if self.tenant_id:
            ledger["tenant_id"] = self.tenant_id
        if self.project:
            ledger["project"] = self.project
        if tags:
            ledger["tags"] = {str(k): str(v) for k, v in tags.items()}
        body: dict[str, Any] = {
            "circuit": circuit, "backend": backend, "shots": shots, "ledger": ledger,
        }
        if priority:
            body["priority"] = priority
        key = idempotency_key or str(uuid.uuid4())
        data = self._request(
            "POST", "/jobs", json=body, headers={"Idempotency-Key": key}, retry=True
        )
        return Job(data)

    def wait_for_job(
        self,
        job_id: str,
        timeout: float = 300.0,
        on_progress: ProgressCallback | None = None,
    ) -> Job:
        """Poll an existing job until it is terminal or ``timeout`` elapses."""
        deadline = time.monotonic() + timeout
        job = self.get_job(job_id)
        if on_progress is not None:
            on_progress(job)
        if job.is_terminal:
            return job
        return self._poll(job, deadline, timeout, on_progress)

    def _poll(
        self,
        job: Job,
        deadline: float,
        timeout: float,
        on_progress: ProgressCallback | None,
    ) -> Job:
        # Short first interval: simulator jobs often finish in tens of ms;
        # growth caps the request rate for long hardware queues.
        delay = POLL_INITIAL_S
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise QCOSTimeoutError(
                    f"job {job.job_id} still {job.status} after {timeout:g}s",
                    job_id=job.job_id, last_status=job.status, timeout=timeout,
                )
            self._sleep(min(delay, remaining))
            job = self.get_job(job.job_id)
            if on_progress is not None:
                on_progress(job)
            if job.is_terminal:
                return job
            delay = min(delay * POLL_GROWTH, POLL_MAX_S)

    def estimate_cost(
        self, circuit: str, backend: str = "simulator", shots: int = 1024, priority: str | None = None
    ) -> CostEstimate:
        """Price a job before submitting it: ``cost_usd``, ``estimated_queue_minutes``, ``breakdown``
        (queue, compute, storage) and the price-sheet version used."""
        check_not_a_path(circuit)
        body: dict[str, Any] = {"circuit": circuit, "backend": backend, "shots": shots}
        if priority:
            body["priority"] = priority
        return CostEstimate(self._request("POST", "/estimates", json=body, retry=True))

    def check_budget(
        self, estimated_cost: Any, tenant_id: str | None = None, project: str | None = None
    ) -> BudgetCheck:
        """Would a job of ``estimated_cost`` USD be admitted now? ``can_proceed``, ``message``,
        ``remaining_usd``. Read-only: nothing is reserved, so a later submit can still be refused."""
        body: dict[str, Any] = {"estimated_cost": str(estimated_cost)}
        tenant = tenant_id or self.tenant_id
        if tenant:
            body["tenant_id"] = tenant
        if project:
            body["project"] = project
        return BudgetCheck(self._request("POST", "/budget/check", json=body, retry=True))

    def budget_status(self) -> dict[str, Any]:
        """The tenant's budget policies with this day's and month's limit, spent, reserved and
        remaining (decimal strings)."""
        return self._request("GET", "/budgets")

    def list_approvals(self) -> list[Job]:
        """Jobs of the tenant waiting for a decision (approvers and admins)."""
        return [Job(item) for item in self._request("GET", "/approvals")["results"]]

    def approve_job(self, job_id: str, reason: str = "") -> Job:
        """Approve a job waiting in PENDING_APPROVAL (not your own: four-eyes)."""
        return Job(self._request("POST", f"/jobs/{quote(job_id, safe='')}/approve", json={"reason": reason}))

    def reject_job(self, job_id: str, reason: str) -> Job:
        """Reject a job waiting in PENDING_APPROVAL; a reason is required."""
        return Job(self._request("POST", f"/jobs/{quote(job_id, safe='')}/reject", json={"reason": reason}))

    def get_job(self, job_id: str) -> Job:
        """Fetch one job by id."""
        return Job(self._request("GET", f"/jobs/{quote(job_id, safe='')}"))

    def cancel_job(self, job_id: str) -> Job:
        """Ask the server to cancel a job; raises ConflictError if it cannot."""
        return Job(self._request("POST", f"/jobs/{quote(job_id, safe='')}/cancel"))

    def list_jobs(
        self,
        *,
        status: str | None = None,
        project: str | None = None,
        backend: str | None = None,
        tag: str | Mapping[str, str] | list[str] | None = None,
        submitted_after: datetime | str | None = None,
        submitted_before: datetime | str | None = None,
        limit: int | None = None,
        offset: int | None = None,
        **extra: Any,
    ) -> Iterator[Job]:
        """Yield every matching job, fetching pages lazily by following ``next``.

        ``limit`` is the server's page size, not a cap on the total; wrap the
        iterator in ``itertools.islice`` to stop early. ``tag`` accepts
        ``"k=v"``, a list of those, or a dict (all must match). Unknown
        keyword filters are passed through for forward compatibility.
        """
        params: dict[str, Any] = {
            "status": status, "project": project, "backend": backend,
            "tag": _tag_params(tag),
            "submitted_after": _iso(submitted_after),
            "submitted_before": _iso(submitted_before),
            "limit": limit, "offset": offset, **extra,
        }
        params = {k: v for k, v in params.items() if v not in (None, [], "")}
        return self._iter_pages("/jobs", params)

    def _iter_pages(self, path: str, params: dict[str, Any]) -> Iterator[Job]:
        url: str | None = path
        page_params: dict[str, Any] | None = params
        while url:
            page = self._request("GET", url, params=page_params)
            for item in page.get("results", []):
                yield Job(item)
            nxt = page.get("next")
            url = self._same_origin(nxt) if nxt else None
            page_params = None  # ``next`` already carries the query string

    # --------------------------------------------------------------- plumbing
    def _url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return f"{self.base_url}{API_PREFIX}{path}"

    def _same_origin(self, url: str) -> str:
        """Resolve a pagination link, never sending the key to another host.

        Behind a proxy the server may build links with its internal host name;
        keep the path/query but use the origin the user configured.
        """
        absolute = urljoin(self.base_url + "/", url)
        target, base = urlsplit(absolute), urlsplit(self.base_url)
        if (target.scheme, target.netloc) == (base.scheme, base.netloc):
            return absolute
        return urlunsplit((base.scheme, base.netloc, target.path, target.query, ""))

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        retry: bool | None = None,
    ) -> Any:
        """Send one API call and return its decoded JSON body.

        ``path`` is relative to ``/api/v2.1`` (or an absolute URL). Retries
        connection failures and 502/503/504 when ``retry`` is true (default:
        GET only), with exponential backoff honouring ``Retry-After``.
        """
        if not self.api_key:
            raise ConfigurationError(
                "MISSING_API_KEY",
                f"no API key: pass api_key=... or set the {ENV_API_KEY} environment variable",
            )
        send_headers = {"Authorization": f"Bearer {self.api_key}", **(headers or {})}
        url = self._url(path)
        retryable = retry if retry is not None else method == "GET"
        attempts = 1 + (self.max_retries if retryable else 0)
        for attempt in range(attempts):
            last_try = attempt + 1 >= attempts
            try:
                response = self._session.request(
                    method, url, params=params, json=json, headers=send_headers,
                    timeout=self.request_timeout,
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                if last_try:
                    raise QCOSConnectionError(
                        message=f"cannot reach QCOS at {self.base_url}: {exc}"
                    ) from exc
                self._sleep(self._backoff(attempt, None))
                continue
            except requests.RequestException as exc:
                raise QCOSConnectionError(message=f"request to {url} failed: {exc}") from exc
            if response.status_code in RETRYABLE_STATUSES and not last_try:
                self._sleep(self._backoff(attempt, response))
                continue
            return _decode(response)
        raise AssertionError("unreachable")  # pragma: no cover

    def _backoff(self, attempt: int, response: requests.Response | None) -> float:
        retry_after = response.headers.get("Retry-After") if response is not None else None
        if retry_after and retry_after.strip().isdigit():
            return min(float(retry_after), MAX_BACKOFF_S)
        base = min(self.retry_backoff * (2**attempt), MAX_BACKOFF_S)
        return base * (0.5 + random.random() / 2)  # jitter spreads out retry storms

    def close(self) -> None:
        """Release pooled connections."""
        self._session.close()

    def __enter__(self) -> QCOSClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _decode(response: requests.Response) -> Any:
    try:
        body = response.json() if response.content else None
    except ValueError:
        body = None
        if response.ok:
            raise QCOSError(
                "INVALID_RESPONSE",
                f"server answered HTTP {response.status_code} with a non-JSON body",
                status_code=response.status_code,
            ) from None
    if response.ok:
        return body
    raise error_from_response(response.status_code, body, response.text, response.reason or "")


def _iso(value: datetime | str | None) -> str | None:
    return value.isoformat() if isinstance(value, datetime) else value


def _tag_params(tag: str | Mapping[str, str] | list[str] | None) -> list[str]:
    if tag is None:
        return []
    if isinstance(tag, str):
        return [tag]
    if isinstance(tag, Mapping):
        return [f"{k}={v}" for k, v in tag.items()]
    return list(tag)
