"""Shared fixtures: the named cast (alice the researcher, bob the approver, carol of another
tenant, vera the viewer) and an API client per person.

Under ``CI=true`` the suite must run on PostgreSQL and integration tests must not skip.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

def pytest_configure(config):
    if os.environ.get("CI", "").lower() == "true" and not os.environ.get("QCOS_TEST_EMBEDDED"):
        from django.conf import settings

        engine = settings.DATABASES["default"]["ENGINE"]
        if "postgresql" not in engine:
            raise pytest.UsageError(f"CI=true needs DATABASE_URL on PostgreSQL; got {engine}")


@dataclass
class Actor:
    user: object
    tenant: object
    key: str
    client: object


def _actor(tenant_slug: str, email: str, role: str, project: str = "quantum-ml") -> Actor:
    from rest_framework.test import APIClient

    from qcos.tenancy import services

    tenant, _ = services.tenant_get_or_create(slug=tenant_slug)
    services.project_get_or_create(tenant=tenant, slug=project)
    user, _ = services.user_get_or_create(email=email)
    services.membership_set(tenant=tenant, user=user, role=role)
    issued = services.api_key_create(tenant=tenant, user=user)
    client = APIClient()
    client.credentials(HTTP_X_API_KEY=issued.plaintext)
    return Actor(user=user, tenant=tenant, key=issued.plaintext, client=client)


@pytest.fixture
def alice(db) -> Actor:
    return _actor("research-alpha", "alice@alpha.example", "researcher")


@pytest.fixture
def bob(db) -> Actor:
    return _actor("research-alpha", "bob@alpha.example", "approver")


@pytest.fixture
def vera(db) -> Actor:
    return _actor("research-alpha", "vera@alpha.example", "viewer")


@pytest.fixture
def adam(db) -> Actor:
    return _actor("research-alpha", "adam@alpha.example", "admin")


@pytest.fixture
def carol(db) -> Actor:
    return _actor("research-beta", "carol@beta.example", "researcher")


@pytest.fixture(autouse=True)
def _forget_registered_signing_keys():
    """pytest-django empties tables between tests; the per-process memo of registered keys must
    not outlive the rows it remembers."""
    from ledger import keys

    keys._registered.clear()
    yield
    keys._registered.clear()


@pytest.fixture(autouse=True)
def _fresh_audit_checkpoint_dir():
    """Published audit checkpoints live outside the database, so emptying the tables between tests
    does not remove them; a checkpoint left by an earlier test would (rightly) fail verification of
    the next test's shorter log. (The audit table itself may be TRUNCATEd because test databases
    are named test_*: see migration 0006.)"""
    import shutil

    from django.conf import settings

    shutil.rmtree(settings.QCOS["AUDIT_CHECKPOINT_DIR"], ignore_errors=True)
    yield
    shutil.rmtree(settings.QCOS["AUDIT_CHECKPOINT_DIR"], ignore_errors=True)


@pytest.fixture(autouse=True)
def _forget_cached_price_sheets():
    """Published price-sheet versions are cached per process; a flushed or rolled-back table must
    not leave a test pricing with another test's version."""
    from finops.sheets import sheets_forget

    sheets_forget()
    yield
    sheets_forget()
