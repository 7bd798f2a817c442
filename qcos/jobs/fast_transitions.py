"""The worker's two state changes as one statement each on PostgreSQL.

``job_claim`` makes a conditional UPDATE that must match exactly one row and then needs the job
with its tenant and project. Through the ORM that is an UPDATE and a SELECT, each compiled per
call. On PostgreSQL the UPDATE's ``RETURNING`` row, joined to its tenant and project in a
data-modifying CTE, gives both in one round trip; the UPDATE, its WHERE clause and so the
guarantees (one winner, fencing by attempt) are unchanged. Other databases (SQLite in the
embedded mode) keep the ORM path: they return ``NotImplemented`` here.

The claim also writes its ``JOB_STARTED`` audit entry in the same statement (a second
data-modifying CTE that inserts only if the UPDATE matched), so a claim is one autocommitted
round trip instead of UPDATE, INSERT and COMMIT. The entry's payload is the canonical JSON that
``audit_append`` would have written: ``ledger.audit.audit_payload_parts`` leaves holes for the two
values only the UPDATE knows (the attempt number and the tenant's slug), and SQL fills them.

``job_complete`` already has the job (from the claim) when it completes it, and sends its
writes and COMMIT behind the UPDATE without reading its result: the UPDATE is fenced on the
server instead (``qcos_fence``, jobs migration 0003), so a lost attempt aborts the transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from functools import cache
from typing import Any

from django.db import connection, connections

from ledger.audit import AUDIT_INSERT, audit_payload_parts
from qcos.rowload import Pending, Shape, load_row
from qcos.tenancy.models import Project, Tenant

from .models import QuantumJob
from .states import JobStatus


#: What the claim's audit entry leaves for the database to fill (``ledger.audit.Hole``): the
#: attempt number the UPDATE just counted, and the job's tenant.
_HOLE_SQL = {"attempt": "j.attempts::text", "tenant": "to_json(t.slug::text)::text"}


class _Statement:
    def __init__(self, alias: str, set_clause: str, where_clause: str, with_project: bool,
                 audit_holes: tuple[str, ...] | None = None) -> None:
        conn = connections[alias]
        quote = conn.ops.quote_name
        job_table = quote(QuantumJob._meta.db_table)
        self.main = Shape(conn, QuantumJob, "j")
        self.related = [(QuantumJob._meta.get_field("tenant"), Shape(conn, Tenant, "t"))]
        joins = [f"JOIN {quote(Tenant._meta.db_table)} t ON t.{quote(Tenant._meta.pk.column)} = "
                 f"j.{quote(QuantumJob._meta.get_field('tenant').column)}"]
        if with_project:
            self.related.append((QuantumJob._meta.get_field("project"), Shape(conn, Project, "p")))
            joins.append(f"JOIN {quote(Project._meta.db_table)} p ON p.{quote(Project._meta.pk.column)} = "
                         f"j.{quote(QuantumJob._meta.get_field('project').column)}")
        columns = self.main.columns + [c for _, shape in self.related for c in shape.columns]
        audit = ""
        if audit_holes is not None:
            # The entry's canonical JSON: Python's texts (parameters) around the holes' SQL values.
            payload = " || ".join(["%s", *(f"{_HOLE_SQL[hole]} || %s" for hole in audit_holes)])
            audit = (
                f", a AS (INSERT INTO {AUDIT_INSERT} SELECT %s, %s, t.slug, %s, %s, j.id, %s, {payload}, '', '' "
                f"FROM j {joins[0]})"
            )
        self.sql = (
            f"WITH j AS (UPDATE {job_table} SET {set_clause} WHERE {where_clause} RETURNING {job_table}.*){audit} "
            f"SELECT {', '.join(columns)} FROM j {' '.join(joins)}"
        )

    def run(self, params: list) -> QuantumJob | None:
        return self.send(params)()

    def send(self, params: list) -> Callable[[], QuantumJob | None]:
        """Send the statement; the returned callable reads the job (see ``rowload.Pending``)."""
        pending = Pending(connection, self.sql, params)

        def job() -> QuantumJob | None:
            row = pending.fetchone()
            return None if row is None else load_row(connection, row, self.main, self.related)

        return job


@cache
def _claim_statement(alias: str, audit_holes: tuple[str, ...]) -> _Statement:
    return _Statement(
        alias,
        "status = %s, attempts = attempts + 1, claimed_by = %s, lease_expires_at = %s, started_at = %s, "
        "updated_at = %s",
        "id = %s AND status = %s AND attempts < %s",
        with_project=True,  # the completion's evidence names the project
        audit_holes=audit_holes,
    )


def claim(*, job_id: str, worker: str, now: datetime, lease_until: datetime, max_attempts: int,
          entry: dict[str, Any]):
    """QUEUED → RUNNING for ``worker`` and its audit ``entry`` (an ``audit_payload`` whose
    attempt and tenant are ``Hole``s), in one statement: the job (tenant and project loaded),
    None if not claimable (then nothing is written), or NotImplemented off PostgreSQL."""
    sent = claim_send(job_id=job_id, worker=worker, now=now, lease_until=lease_until, max_attempts=max_attempts,
                      entry=entry)
    return sent if sent is NotImplemented else sent()


def claim_send(*, job_id: str, worker: str, now: datetime, lease_until: datetime, max_attempts: int,
               entry: dict[str, Any]):
    """``claim``, sent now and read when the returned callable is called (in a pipeline, the
    statements sent after it share its round trip); NotImplemented off PostgreSQL."""
    if connection.vendor != "postgresql":
        return NotImplemented
    texts, holes = audit_payload_parts(entry)
    audit = [entry["audit_id"], now, entry["action"], entry["resource"]["type"], entry["outcome"], *texts]
    return _claim_statement(connection.alias, tuple(holes)).send(
        [JobStatus.RUNNING, worker, lease_until, now, now, job_id, JobStatus.QUEUED, max_attempts, *audit]
    )


def complete_send(*, job_id: str, attempt: int, now: datetime, cost_usd, cost_breakdown: str | None):
    """RUNNING (this attempt) → COMPLETED, with its settled cost, sent now. Fenced on the server: if
    the attempt no longer holds the job the statement fails with ``qcos_fence``'s ``QC001``
    (``LOST_ATTEMPT``), aborting the transaction, so the writes sent after it and a pipelined
    COMMIT (``rowload.commit_with_pipeline``) are never kept. NotImplemented off PostgreSQL."""
    if connection.vendor != "postgresql":
        return NotImplemented
    Pending(connection, _COMPLETE_SQL, [JobStatus.COMPLETED, now, now, cost_usd, cost_breakdown, job_id,
                                        JobStatus.RUNNING, attempt, LOST_ATTEMPT])


#: ``qcos_fence``'s SQLSTATE when a completing attempt has lost its job (jobs migration 0003).
LOST_ATTEMPT = "QC001"

_COMPLETE_SQL = (
    f"WITH u AS (UPDATE {QuantumJob._meta.db_table} SET status = %s, completed_at = %s, lease_expires_at = NULL, "
    "updated_at = %s, cost_usd = %s, cost_breakdown = %s WHERE id = %s AND status = %s AND attempts = %s RETURNING id) "
    "SELECT qcos_fence(count(*) = 1, %s) FROM u"
)
