"""``python manage.py apply_budget_policy FILE``: load a budget-policy.yaml (see finops.policy)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from finops.policy import policy_apply
from qcos.errors import QCOSError


class Command(BaseCommand):
    help = "Create or replace a tenant's (or project's) budget policy from a budget-policy.yaml file."

    def add_arguments(self, parser):
        parser.add_argument("file", help="path to the YAML file, or - for standard input")
        parser.add_argument("--json", action="store_true", help="print the applied policy as JSON")

    def handle(self, *args, **options):
        source = options["file"]
        try:
            text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"cannot read {source}: {exc.strerror}") from None
        try:
            policy = policy_apply(text=text)
        except QCOSError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from None
        summary = {
            "policy_id": policy.pk,
            "tenant": policy.tenant.slug,
            "project": policy.project.slug if policy.project_id else None,
            "monthly_limit_usd": _s(policy.monthly_limit_usd),
            "daily_limit_usd": _s(policy.daily_limit_usd),
            "per_job_limit_usd": _s(policy.per_job_limit_usd),
            "on_exceeded": policy.on_exceeded,
            "on_per_job_exceeded": policy.on_per_job_exceeded,
        }
        if options["json"]:
            self.stdout.write(json.dumps(summary))
        else:
            self.stdout.write(self.style.SUCCESS(f"applied budget policy {policy.pk} to {policy}"))


def _s(value):
    return None if value is None else str(value)
