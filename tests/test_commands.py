import json
import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from qcos.jobs.models import QuantumJob
from qcos.tenancy.models import ApiKey, Membership, Tenant
from qcos.tenancy.selectors import api_key_lookup

ROOT = Path(__file__).resolve().parent.parent


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_create_tenant_prints_json_and_reuses_what_exists():
    args = ["create_tenant", "research-alpha", "--project", "quantum-ml", "--user", "a@x.org", "--role", "researcher"]
    first = json.loads(run(*args, "--api-key", "--json"))
    assert {"tenant_id", "project", "user", "api_key"} <= set(first)
    assert first["tenant_id"] == "research-alpha" and first["project"] == "quantum-ml" and first["user"] == "a@x.org"
    assert api_key_lookup(plaintext=first["api_key"]).tenant.slug == "research-alpha"
    second = json.loads(run(*args[:-1], "approver", "--api-key", "--json"))
    assert second["api_key"] != first["api_key"] and second["tenant_created"] is False
    assert Tenant.objects.count() == 1 and Membership.objects.get().role == "approver"
    assert ApiKey.objects.count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args",
    [["Bad Slug"], ["ok", "--user", "not-an-email"], ["ok", "--api-key"], ["ok", "--project", "Nope!"]],
)
def test_create_tenant_refuses_bad_input_and_writes_nothing(args):
    with pytest.raises(CommandError):
        run("create_tenant", *args)
    assert Tenant.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_demo_creates_tenant_admin_key_and_runs_a_bell_job(caplog):
    with caplog.at_level("WARNING"):
        out = run("demo")
    assert "API key:      qcos_" in out and "COMPLETED" in out
    # A first run on the embedded default is quiet: no warning (e.g. kombu's "No hostname was
    # supplied" for a broker URL without a host) that would make a new user think it failed.
    assert [r.getMessage() for r in caplog.records if r.levelno >= 30] == []
    job = QuantumJob.objects.get()
    assert job.status == "COMPLETED" and set(job.result.counts) <= {"00", "11"}


def _manage(*args, env_overrides):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")} | env_overrides
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True)


def test_deploy_check_is_clean_with_production_settings():
    done = _manage(
        "check", "--deploy", "--fail-level", "WARNING",
        env_overrides={"DEBUG": "false", "SECRET_KEY": "x" * 64 + "-Yq3!vP9#", "ALLOWED_HOSTS": "qcos.example.org"},
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_deploy_check_refuses_the_development_secret_key():
    done = _manage("check", "--deploy", env_overrides={"DEBUG": "false", "ALLOWED_HOSTS": "qcos.example.org"})
    assert done.returncode != 0 and "qcos.E001" in done.stderr


def test_migrations_match_the_models():
    done = _manage("makemigrations", "--check", "--dry-run", env_overrides={})
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_broker_with_sqlite_is_refused_by_a_system_check():
    done = _manage("check", env_overrides={"CELERY_BROKER_URL": "redis://127.0.0.1:1/0", "DATABASE_URL": "sqlite:////tmp/x.db"})
    assert done.returncode != 0 and "qcos.E002" in done.stderr
