"""Settled charges made directly (the reports read charges, not how they were settled)."""

from __future__ import annotations

import itertools
from datetime import datetime

from finops.models import Charge, ChargeStatus, usd

_ids = itertools.count(1)


def charge(actor_or_tenant, *, project=None, backend="ibm_brisbane", shots=1000, micros=1_500_000,
           settled_at: datetime, status=ChargeStatus.SETTLED, tags=None) -> Charge:
    """One charge of ``micros`` settled at ``settled_at`` (or held/released with ``status``)."""
    tenant = getattr(actor_or_tenant, "tenant", actor_or_tenant)
    if project is None:
        project = tenant.projects.get(slug="quantum-ml") if tenant.projects.filter(slug="quantum-ml").exists() \
            else tenant.projects.first()
    elif isinstance(project, str):
        from qcos.tenancy import services

        project, _ = services.project_get_or_create(tenant=tenant, slug=project)
    n = next(_ids)
    settled = status == ChargeStatus.SETTLED
    return Charge.objects.create(
        tenant=tenant, project=project, resource_type="quantum_job", resource_id=f"job-test{n:08d}",
        backend=backend, shots=shots, tags=tags or {}, price_sheet_id="test", price_sheet_version="1",
        estimate={}, estimated_micros=micros, reserved_micros=0 if settled else micros,
        settled_micros=micros if settled else None, status=status,
        settled_at=settled_at if settled else None,
        breakdown={"queue": "0", "compute": str(usd(micros)), "storage": "0"} if settled else {},
    )
