"""The job a status poll asks for, in one precompiled statement.

``GET /api/v2.1/jobs/{id}`` is what every waiting client polls. ``selectors.job_get`` answers it
through the ORM, which spends more CPU building the SQL for the job and its four related rows
(tenant, project, result, provenance) and then the instances than PostgreSQL spends running it
(perf/pipeline.py: ~1 ms of compiling against ~0.2 ms of executing). This module gives the same
answer -- the caller's tenant's job without its circuit text, with those four relations loaded,
``NotFound`` for another tenant's job exactly as for a missing one -- from a statement built once
per process from the models' metadata, so fields added to these models are loaded too
(``rowload``). ``tests/jobs/test_job_detail.py``
compares it with ``selectors.job_get``.
"""

from __future__ import annotations

from functools import cache

from django.db import connection, connections

from ledger.models import Provenance
from qcos.errors import NotFound
from qcos.tenancy.models import Project, Tenant
from qcos.tenancy.principal import Principal

from .models import JobResult, QuantumJob
from qcos.rowload import Shape, load_row

# (alias, model, relation on QuantumJob, inner join?) -- the ORM's select_related of jobs_for().
_PARTS = (
    ("t", Tenant, "tenant", True),
    ("p", Project, "project", True),
    ("r", JobResult, "result", False),
    ("v", Provenance, "provenance", False),
)
_DEFERRED = frozenset({"circuit"})  # like jobs_for(): the circuit text is never sent back


class _Plan:
    def __init__(self, alias: str) -> None:
        conn = connections[alias]
        quote = conn.ops.quote_name
        self.main = Shape(conn, QuantumJob, "j", exclude=_DEFERRED)
        columns = list(self.main.columns)
        joins = []
        self.related = []
        for table_alias, model, name, inner in _PARTS:
            shape = Shape(conn, model, table_alias)
            relation = QuantumJob._meta.get_field(name)
            columns += shape.columns
            if inner:  # forward foreign key: job.<fk> = related.pk
                on = f"{table_alias}.{quote(model._meta.pk.column)} = j.{quote(relation.column)}"
            else:  # reverse one-to-one: related.job_id = job.id
                on = f"{table_alias}.{quote(relation.field.column)} = j.{quote(QuantumJob._meta.pk.column)}"
            joins.append(f"{'INNER' if inner else 'LEFT OUTER'} JOIN {quote(model._meta.db_table)} {table_alias} ON {on}")
            self.related.append((relation, shape))
        self.sql = (
            f"SELECT {', '.join(columns)} FROM {quote(QuantumJob._meta.db_table)} j {' '.join(joins)} "
            f"WHERE j.{quote(QuantumJob._meta.pk.column)} = %s AND j.{quote(QuantumJob._meta.get_field('tenant').column)} = %s"
        )


@cache
def _plan(alias: str, vendor: str) -> _Plan:
    return _Plan(alias)


def job_detail(*, principal: Principal, job_id: str) -> QuantumJob:
    """``selectors.job_get(principal=..., job_id=...)`` in one precompiled statement."""
    plan = _plan(connection.alias, connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(plan.sql, [job_id, principal.tenant.pk])
        row = cursor.fetchone()
    if row is None:
        raise NotFound(f"job {job_id} not found", details={"job_id": job_id})
    return load_row(connection, row, plan.main, plan.related)
