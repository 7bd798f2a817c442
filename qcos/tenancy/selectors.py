"""Reads for tenancy."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import connection

from qcos.errors import TenantMismatch, UnknownProject

from .keys import matches, parse_prefix
from .models import ApiKey, Membership, Project, Tenant

# Every API request runs this lookup. Written as SQL because building the equivalent ORM query
# (select_related + role subquery) cost more CPU than running it (perf/pipeline.py); the rows are
# turned back into model instances with ``from_db``, so callers see ordinary objects.
_KEY_SQL = """
SELECT k.id, k.tenant_id, k.user_id, k.name, k.prefix, k.key_hash, k.created_at, k.last_used_at, k.revoked_at,
       t.slug, t.name, t.created_at,
       u.username, u.email, u.is_active, u.is_staff, u.is_superuser,
       m.role
FROM tenancy_apikey k
JOIN tenancy_tenant t ON t.id = k.tenant_id
JOIN {user_table} u ON u.id = k.user_id
LEFT JOIN tenancy_membership m ON m.user_id = k.user_id AND m.tenant_id = k.tenant_id
WHERE k.prefix = %s AND k.revoked_at IS NULL AND u.is_active
"""

_KEY_FIELDS = ["id", "tenant_id", "user_id", "name", "prefix", "key_hash", "created_at", "last_used_at", "revoked_at"]


def api_key_lookup(*, plaintext: str) -> ApiKey | None:
    """The active key matching ``plaintext``, with its tenant, user and the user's role in that
    tenant (``member_role``, None when no longer a member) loaded in one query; None otherwise."""
    prefix = parse_prefix(plaintext)
    if prefix is None:
        return None
    user_model = get_user_model()
    with connection.cursor() as cursor:
        cursor.execute(_KEY_SQL.format(user_table=connection.ops.quote_name(user_model._meta.db_table)), [prefix])
        row = cursor.fetchone()
    if row is None:
        return None
    key_values = list(row[:9])
    if connection.vendor == "sqlite":  # raw SQL skips the ORM's conversions of datetimes
        key_values[6:9] = [_sqlite_datetime(v) for v in key_values[6:9]]
    api_key = _from_db(ApiKey, dict(zip(_KEY_FIELDS, key_values, strict=True)))
    if not matches(plaintext, api_key.key_hash):
        return None
    tenant_created = _sqlite_datetime(row[11]) if connection.vendor == "sqlite" else row[11]
    api_key.tenant = _from_db(Tenant, {"id": row[1], "slug": row[9], "name": row[10], "created_at": tenant_created})
    api_key.user = _from_db(user_model, {
        "id": row[2], "username": row[12], "email": row[13], "is_active": bool(row[14]),
        "is_staff": bool(row[15]), "is_superuser": bool(row[16]),
    })
    api_key.member_role = row[17]
    return api_key


def _from_db(model, values: dict):
    """``Model.from_db`` with the values named: from_db assigns a partial row by the model's
    concrete field order, not by the order of the names it is given, so the values are put in
    that order here (a mismatch once loaded a user's e-mail into ``is_superuser``)."""
    fields = [f.attname for f in model._meta.concrete_fields if f.attname in values]
    if len(fields) != len(values):
        raise ValueError(f"{model.__name__} has no fields {sorted(set(values) - set(fields))}")
    return model.from_db(connection.alias, fields, [values[name] for name in fields])


def _sqlite_datetime(value):
    """SQLite gives raw queries naive UTC datetimes (or text): make them aware, as the ORM does."""
    from datetime import UTC

    from django.utils.dateparse import parse_datetime

    moment = parse_datetime(value) if isinstance(value, str) else value
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment


def roles_of(*, user, tenant) -> frozenset[str]:
    return frozenset(Membership.objects.filter(user=user, tenant=tenant).values_list("role", flat=True))


def project_resolve(*, principal, tenant_slug: str | None, project_slug: str | None,
                    default: str | None = "default") -> Project | None:
    """The project a request names, in the caller's tenant: ``TENANT_MISMATCH`` when the request
    names another tenant (whether or not it exists), ``UNKNOWN_PROJECT`` when the tenant has no
    such project. Without a project slug: the ``default`` project, or None when ``default`` is None."""
    slug = project_slug_for(principal=principal, tenant_slug=tenant_slug, project_slug=project_slug, default=default)
    return None if slug is None else project_send(principal=principal, slug=slug)()


def project_slug_for(*, principal, tenant_slug: str | None, project_slug: str | None,
                     default: str | None = "default") -> str | None:
    """``project_resolve``'s checks that need no database: the slug to look up, or None."""
    if tenant_slug and tenant_slug != principal.tenant.slug:
        raise TenantMismatch(
            f"this API key belongs to tenant {principal.tenant.slug!r}; it cannot act for {tenant_slug!r}",
            details={"tenant_id": tenant_slug},
        )
    return project_slug or default


_PROJECT_SQL: dict[str, tuple] = {}


def project_send(*, principal, slug: str):
    """The read of the caller's tenant's project ``slug``, sent now; the returned callable gives
    the project or raises ``UNKNOWN_PROJECT``. In a pipeline (``qcos.rowload.pipeline``) the reads
    sent after it share its round trip."""
    # One statement written once per process: on every submit the ORM's query building cost more
    # than the query (perf/pipeline.py).
    from qcos.rowload import Pending, Shape

    if connection.vendor not in _PROJECT_SQL:
        shape = Shape(connection, Project, "p")
        _PROJECT_SQL[connection.vendor] = (
            f"SELECT {', '.join(shape.columns)} FROM {Project._meta.db_table} p WHERE p.tenant_id = %s AND p.slug = %s",
            shape,
        )
    sql, shape = _PROJECT_SQL[connection.vendor]
    pending = Pending(connection, sql, [principal.tenant.pk, slug])

    def project() -> Project:
        row = pending.fetchone()
        if row is None:
            raise UnknownProject(f"tenant {principal.tenant.slug!r} has no project {slug!r}", details={"project": slug})
        return shape.load(connection, row)

    return project
