"""``manage.py demo``: the embedded default's first run. Creates the demo tenant, an admin login
and an API key, then runs one tracked Bell job through the real submit path and prints it."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from qcos.api.serializers import job_representation
from qcos.jobs import selectors, services
from qcos.tenancy import services as tenancy
from qcos.tenancy.principal import Principal
from qcos.tenancy.selectors import roles_of

BELL = """OPENQASM 3.0;
include "stdgates.inc";
qubit[2] q;
bit[2] c;
h q[0];
cx q[0], q[1];
c = measure q;
"""


class Command(BaseCommand):
    help = "Create the demo tenant, admin login and API key, and run one Bell job."

    def add_arguments(self, parser):
        parser.add_argument("--admin-email", default="admin@example.com")

    def handle(self, *args, **options):
        User = get_user_model()
        email = options["admin_email"]
        tenant, _ = tenancy.tenant_get_or_create(slug="demo", name="Demo tenant")
        project, _ = tenancy.project_get_or_create(tenant=tenant, slug="quantum-ml")
        admin_user = User.objects.filter(username=email).first()
        password = None
        if admin_user is None:
            password = secrets.token_urlsafe(12)
            admin_user = User.objects.create_superuser(username=email, email=email, password=password)
        tenancy.membership_set(tenant=tenant, user=admin_user, role="admin")
        issued = tenancy.api_key_create(tenant=tenant, user=admin_user, name="demo")
        principal = Principal(
            user=admin_user, tenant=tenant, roles=roles_of(user=admin_user, tenant=tenant), api_key=issued.api_key
        )
        submission = services.job_submit(
            principal=principal, circuit=BELL, backend="simulator", shots=1024,
            project_slug=project.slug, tags={"experiment": "bell-demo"}, render=job_representation,
        )
        job = job_representation(selectors.job_get(principal=principal, job_id=submission.job.id))
        self.stdout.write(self.style.SUCCESS("QCOS demo is ready."))
        self.stdout.write(f"  tenant:       {tenant.slug} (project {project.slug})")
        self.stdout.write(f"  admin login:  {email} / {password or '(unchanged; set with manage.py changepassword)'}")
        self.stdout.write(f"  API key:      {issued.plaintext}")
        self.stdout.write(f"  Bell job:     {job['job_id']} {job['status']} counts={job['counts']} "
                          f"circuit_hash={job['circuit_hash']}")
