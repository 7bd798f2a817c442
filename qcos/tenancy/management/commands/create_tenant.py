"""``manage.py create_tenant SLUG --project P --user EMAIL --role ROLE --api-key --json``

Creates or reuses the tenant, project, user and membership; with ``--api-key`` issues a new key
(shown once). Safe to run again: only the key is new each time.
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError
from django.core.validators import validate_email
from django.core.exceptions import ValidationError
from django.db import transaction

from qcos.tenancy import services
from qcos.tenancy.models import slug_validator
from qcos.tenancy.roles import Role


class Command(BaseCommand):
    help = "Create (or reuse) a tenant, project, user and membership; optionally issue an API key."

    def add_arguments(self, parser):
        parser.add_argument("slug", help="tenant id, e.g. research-alpha")
        parser.add_argument("--name", help="display name of the tenant")
        parser.add_argument("--project", default="default", help="project slug (default: default)")
        parser.add_argument("--user", dest="email", help="user email (login name)")
        parser.add_argument("--role", choices=Role.values, default=Role.RESEARCHER)
        parser.add_argument("--api-key", action="store_true", help="issue an API key for the user")
        parser.add_argument("--key-name", default="", help="a label for the key")
        parser.add_argument("--password", help="set the user's password (for the admin login)")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args, **options):
        slug, project_slug, email = options["slug"], options["project"], options["email"]
        try:
            slug_validator(slug)
            slug_validator(project_slug)
            if email:
                validate_email(email)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        if options["api_key"] and not email:
            raise CommandError("--api-key needs --user")
        with transaction.atomic():
            tenant, tenant_created = services.tenant_get_or_create(slug=slug, name=options["name"])
            project, _ = services.project_get_or_create(tenant=tenant, slug=project_slug)
            out = {"tenant_id": tenant.slug, "tenant_created": tenant_created, "project": project.slug}
            if email:
                user, _ = services.user_get_or_create(email=email)
                if options["password"]:
                    user.set_password(options["password"])
                    user.save(update_fields=["password"])
                membership = services.membership_set(tenant=tenant, user=user, role=options["role"])
                out.update(user=user.username, role=membership.role)
                if options["api_key"]:
                    issued = services.api_key_create(tenant=tenant, user=user, name=options["key_name"])
                    out.update(api_key=issued.plaintext, api_key_prefix=issued.api_key.prefix)
        if options["json"]:
            self.stdout.write(json.dumps(out))
        else:
            for key, value in out.items():
                self.stdout.write(f"{key}: {value}")
