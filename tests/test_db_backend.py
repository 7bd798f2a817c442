"""qcos.db.postgresql: the per-request health check reads the socket instead of running SELECT 1."""

from __future__ import annotations

import time

import psycopg
import pytest
from django.db import connection

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the PostgreSQL backend's health check"),
]


def _statements(monkeypatch) -> list[str]:
    """Everything psycopg sends, Django's own SELECT 1 included (it bypasses Django's cursors)."""
    sent: list[str] = []
    raw = connection.connection
    original = raw.cursor

    def cursor(*args, **kwargs):
        cur = original(*args, **kwargs)
        execute = cur.execute

        def traced(query, *a, **k):
            sent.append(str(query))
            return execute(query, *a, **k)

        cur.execute = traced
        return cur

    monkeypatch.setattr(raw, "cursor", cursor)
    return sent


@pytest.fixture
def persistent(monkeypatch):
    """A persistent, health-checked connection, as in production (the test settings use 0)."""
    monkeypatch.setitem(connection.settings_dict, "CONN_MAX_AGE", 60)
    monkeypatch.setitem(connection.settings_dict, "CONN_HEALTH_CHECKS", True)
    connection.close()
    connection.ensure_connection()
    assert connection.health_check_enabled and connection.close_at is not None
    yield
    connection.close()


def test_a_healthy_connection_is_checked_without_a_round_trip(persistent, monkeypatch):
    assert connection.settings_dict["ENGINE"] == "qcos.db.postgresql"
    pid = connection.connection.info.backend_pid
    sent = _statements(monkeypatch)
    connection.close_if_unusable_or_obsolete()  # what every request and task start does
    with connection.cursor() as cursor:
        cursor.execute("SELECT 42")
        assert cursor.fetchone() == (42,)
    assert sent == ["SELECT 42"]  # no SELECT 1 before it
    assert connection.connection.info.backend_pid == pid  # and the connection was kept


def test_a_connection_left_in_a_transaction_gets_the_real_check(persistent, monkeypatch):
    connection.connection.execute("BEGIN")
    sent = _statements(monkeypatch)
    connection.health_check_done = False
    connection.close_if_health_check_failed()
    assert sent == ["SELECT 1"]  # Django's check ran (and the connection is still usable)
    connection.connection.execute("ROLLBACK")


def test_a_connection_the_server_closed_is_replaced_before_use(persistent):
    old_pid = connection.connection.info.backend_pid
    with psycopg.connect(**{k: v for k, v in connection.get_connection_params().items()
                            if k in {"host", "port", "user", "password", "dbname"}}, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", [old_pid])
    time.sleep(0.1)
    connection.close_if_unusable_or_obsolete()
    with connection.cursor() as cursor:  # the health check finds the closed socket and reconnects
        cursor.execute("SELECT pg_backend_pid()")
        new_pid = cursor.fetchone()[0]
    assert new_pid != old_pid
