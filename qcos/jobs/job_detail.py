"""The job a status poll asks for, in one precompiled statement.

``GET /api/v2.1/jobs/{id}`` is what every waiting client polls. ``selectors.job_get`` answers it
through the ORM, which spends more CPU building the SQL for the job and its four related rows
(tenant, project, result, provenance) and then the instances than PostgreSQL spends running it
(perf/pipeline.py: ~1 ms of compiling against ~0.2 ms of executing). This module gives the same
answer -- the caller's tenant's job without its circuit text, with those four relations loaded,
``NotFound`` for another tenant's job exactly as for a missing one -- from a statement built once
per process from the models' metadata, so fields added to these models are loaded too. The
values go through the same database converters the ORM applies. ``tests/jobs/test_job_detail.py``
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
        self.job_fields = [f for f in QuantumJob._meta.concrete_fields if f.attname not in _DEFERRED]
        columns = [f"j.{quote(f.column)}" for f in self.job_fields]
        joins = []
        self.parts = []
        for table_alias, model, relation, inner in _PARTS:
            fields = list(model._meta.concrete_fields)
            columns += [f"{table_alias}.{quote(f.column)}" for f in fields]
            descriptor_field = QuantumJob._meta.get_field(relation)
            if inner:  # forward foreign key: job.<fk> = related.pk
                on = f"{table_alias}.{quote(model._meta.pk.column)} = j.{quote(descriptor_field.column)}"
            else:  # reverse one-to-one: related.job_id = job.id
                on = f"{table_alias}.{quote(descriptor_field.field.column)} = j.{quote(QuantumJob._meta.pk.column)}"
            joins.append(f"{'INNER' if inner else 'LEFT OUTER'} JOIN {quote(model._meta.db_table)} {table_alias} ON {on}")
            pk_index = [f.primary_key for f in fields].index(True)
            self.parts.append((model, descriptor_field, [f.attname for f in fields], pk_index))
        self.sql = (
            f"SELECT {', '.join(columns)} FROM {quote(QuantumJob._meta.db_table)} j {' '.join(joins)} "
            f"WHERE j.{quote(QuantumJob._meta.pk.column)} = %s AND j.{quote(QuantumJob._meta.get_field('tenant').column)} = %s"
        )
        self.job_names = [f.attname for f in self.job_fields]
        all_fields = list(self.job_fields)
        for _, model, _, _ in _PARTS:
            all_fields += model._meta.concrete_fields
        self.converters = []
        for index, field in enumerate(all_fields):
            col = field.get_col("x")
            found = conn.ops.get_db_converters(col) + col.get_db_converters(conn)
            if found:
                self.converters.append((index, found, col))


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
    values = list(row)
    for index, converters, col in plan.converters:
        for converter in converters:
            values[index] = converter(values[index], col, connection)
    db = connection.alias
    offset = len(plan.job_names)
    job = QuantumJob.from_db(db, plan.job_names, values[:offset])
    for model, relation, names, pk_index in plan.parts:
        chunk = values[offset: offset + len(names)]
        offset += len(names)
        related = None if chunk[pk_index] is None else model.from_db(db, names, chunk)
        # Forward (tenant, project) and reverse one-to-one (result, provenance) alike; a missing
        # result or provenance caches None ("no such row"), as select_related does.
        relation.set_cached_value(job, related)
        if related is not None and not relation.many_to_one:
            relation.field.set_cached_value(related, job)
    return job
