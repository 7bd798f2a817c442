"""Model instances from hand-written SQL, for the few statements on every job's path.

Building a query through the ORM costs more CPU than PostgreSQL spends running it when the query
joins a few tables and returns one row (perf/pipeline.py). The hot reads and claims write their SQL
once per process from the models' metadata -- so fields added to a model are selected too -- and
turn rows back into instances here, through the same database converters the ORM applies, with
the related instances cached as ``select_related`` caches them.
"""

from __future__ import annotations

from contextlib import contextmanager, nullcontext
from typing import Any

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper


class Shape:
    """The concrete columns of ``model`` (less ``exclude``) under a table alias, and how to load them."""

    def __init__(self, conn: BaseDatabaseWrapper, model: type[models.Model], alias: str, exclude: frozenset[str] = frozenset()):
        self.model = model
        self.fields = [f for f in model._meta.concrete_fields if f.attname not in exclude]
        self.names = [f.attname for f in self.fields]
        self.pk_index = [f.primary_key for f in self.fields].index(True)
        quote = conn.ops.quote_name
        self.columns = [f"{alias}.{quote(f.column)}" for f in self.fields]
        self.converters = []
        for index, field in enumerate(self.fields):
            col = field.get_col(alias)
            found = conn.ops.get_db_converters(col) + col.get_db_converters(conn)
            if found:
                self.converters.append((index, found, col))

    def __len__(self) -> int:
        return len(self.fields)

    def load(self, conn: BaseDatabaseWrapper, values: list[Any] | tuple[Any, ...]) -> models.Model | None:
        """An instance from this shape's slice of a row; None for an outer join's missing row."""
        if values[self.pk_index] is None:
            return None
        if self.converters:
            values = list(values)
            for index, converters, col in self.converters:
                for converter in converters:
                    values[index] = converter(values[index], col, conn)
        return self.model.from_db(conn.alias, self.names, values)


def load_row(conn: BaseDatabaseWrapper, row, main: Shape, related: list[tuple[Any, Shape]]) -> models.Model:
    """The main instance from the row's first columns, each ``(relation, shape)`` after it, in order.

    ``relation`` is the field (forward foreign key) or reverse one-to-one relation on the main
    model, as ``Model._meta.get_field`` returns it; a missing reverse row caches None ("none"),
    as ``select_related`` does.
    """
    offset = len(main)
    instance = main.load(conn, row[:offset])
    for relation, shape in related:
        other = shape.load(conn, row[offset: offset + len(shape)])
        offset += len(shape)
        relation.set_cached_value(instance, other)
        if other is not None and not relation.many_to_one:
            relation.field.set_cached_value(other, instance)
    return instance


class _Insert:
    def __init__(self, conn: BaseDatabaseWrapper, model: type[models.Model], names: tuple[str, ...]) -> None:
        quote = conn.ops.quote_name
        self.fields = [model._meta.get_field(name) for name in names]
        columns = ", ".join(quote(f.column) for f in self.fields)
        self.sql = (f"INSERT INTO {quote(model._meta.db_table)} ({columns}) "
                    f"VALUES ({', '.join(['%s'] * len(self.fields))})")

    def params(self, conn: BaseDatabaseWrapper, instance: models.Model) -> list[Any]:
        return [f.get_db_prep_save(f.pre_save(instance, True), conn) for f in self.fields]


_inserts: dict[tuple[str, type[models.Model], tuple[str, ...]], _Insert] = {}


def _plan(conn: BaseDatabaseWrapper, model: type[models.Model], names: tuple[str, ...]) -> _Insert:
    key = (conn.alias, model, names)
    plan = _inserts.get(key)
    if plan is None:
        plan = _inserts[key] = _Insert(conn, model, names)
    return plan


def insert_row(conn: BaseDatabaseWrapper, instance: models.Model, names: tuple[str, ...]) -> None:
    """INSERT ``instance``'s ``names`` fields (attnames) as the ORM would -- each value through its
    field's ``pre_save`` and ``get_db_prep_save`` -- without building the query each time. Fields
    not named get their column's default (NULL); the instance is marked saved."""
    insert_rows(conn, [(instance, names)])


def insert_rows(conn: BaseDatabaseWrapper, rows: list[tuple[models.Model, tuple[str, ...]]]) -> None:
    """``insert_row`` for several instances, in order, in one round trip on PostgreSQL: one
    multi-statement query with client-side binding, or psycopg 3's pipeline mode with server-side
    binding (``QCOS_DB_PREPARED_STATEMENTS``), where each INSERT is also a prepared statement."""
    statements = []
    for instance, names in rows:
        plan = _plan(conn, type(instance), names)
        statements.append((plan.sql, plan.params(conn, instance)))
    with conn.cursor() as cursor:
        if len(statements) > 1 and conn.vendor == "postgresql" and _client_side_binding(cursor):
            cursor.execute("; ".join(sql for sql, _ in statements), [p for _, params in statements for p in params])
        else:
            with pipeline(conn):
                for sql, params in statements:
                    cursor.execute(sql, params)
    for instance, _ in rows:
        instance._state.adding = False
        instance._state.db = conn.alias


def _client_side_binding(cursor) -> bool:
    from psycopg import ClientCursor

    return isinstance(cursor.cursor, ClientCursor)


def pipeline(conn: BaseDatabaseWrapper):
    """psycopg 3's pipeline mode on PostgreSQL (a no-op elsewhere, or when already in it).

    Inside it, a statement whose result nobody reads does not wait for the server: it travels
    with the next one, and all of them with the next statement whose rows are fetched, or with
    the block's end. Errors surface there too, and still abort the transaction. Statements keep
    their order; reads see the writes queued before them.
    """
    if conn.vendor != "postgresql":
        return nullcontext()
    conn.ensure_connection()
    from psycopg import pq

    if conn.connection.pgconn.pipeline_status != pq.PipelineStatus.OFF:
        return nullcontext()
    return _pipeline(conn)


@contextmanager
def _pipeline(conn: BaseDatabaseWrapper):
    # The errors of pipelined statements surface when the block ends (psycopg syncs there):
    # they reach the caller as Django's exceptions (IntegrityError…), like any statement's.
    with conn.wrap_database_errors, conn.connection.pipeline():
        yield


def commit_with_pipeline(conn: BaseDatabaseWrapper) -> bool:
    """Queue the COMMIT of the enclosing outermost ``transaction.atomic()`` block in the active
    pipeline, so that it travels with the block's last statements (one round trip instead of
    two). Call it last in the block, after every check that could still roll it back. Django's
    own COMMIT at the block's end then finds the connection idle and psycopg sends nothing; its
    on-commit hooks run as usual. If a statement before it fails, PostgreSQL skips the COMMIT and
    the block rolls back as always. A condition the writes depend on must then be checked by the
    server (``qcos_fence``, migration jobs 0003), not by reading a result in Python.

    False (and nothing queued) where Django must commit itself: off PostgreSQL, outside a
    pipeline, in a nested block, or when the block is already marked for rollback.
    """
    if conn.vendor != "postgresql" or not conn.in_atomic_block or conn.savepoint_ids or not conn.commit_on_exit:
        return False
    if conn.needs_rollback or len(conn.atomic_blocks) != 1:
        return False
    from psycopg import pq

    raw = conn.connection
    if raw is None or raw.pgconn.pipeline_status == pq.PipelineStatus.OFF:
        return False
    raw.cursor().execute("COMMIT", prepare=False)
    return True


class Pending:
    """A statement sent now whose rows are read later. Inside ``pipeline`` the statements sent
    one after another travel together, and the first read waits for all of them: reads that do
    not depend on each other's rows cost one round trip. Elsewhere the rows are read at once
    (a SQLite cursor steps lazily and would see rows written after the statement)."""

    def __init__(self, conn: BaseDatabaseWrapper, sql: str, params: list[Any]) -> None:
        self._cursor = conn.cursor()
        self._cursor.execute(sql, params)
        self._rows: list[tuple] | None = None
        if conn.vendor != "postgresql":
            self._rows = self._cursor.fetchall()
            self._cursor.close()

    def fetchall(self) -> list[tuple]:
        if self._rows is None:
            try:
                self._rows = self._cursor.fetchall()
            finally:
                self._cursor.close()
        return self._rows

    def fetchone(self) -> tuple | None:
        rows = self.fetchall()
        return rows[0] if rows else None
