"""Roles and what each may do.

A role is held per tenant (``Membership.role``): it is what the API enforces. Each role is also a
Django group carrying model permissions, so that staff users see the right parts of the Django
admin; the services keep a user's groups in step with their memberships.
"""

from __future__ import annotations

from django.db import models


class Role(models.TextChoices):
    ADMIN = "admin", "Admin"
    APPROVER = "approver", "Approver"
    RESEARCHER = "researcher", "Researcher"
    AUDITOR = "auditor", "Auditor"
    VIEWER = "viewer", "Viewer"


class Capability(models.TextChoices):
    """What a request may do inside its tenant."""

    SUBMIT_JOB = "submit_job"
    VIEW_JOBS = "view_jobs"
    CANCEL_ANY_JOB = "cancel_any_job"
    APPROVE_JOB = "approve_job"
    VIEW_AUDIT = "view_audit"
    MANAGE_TENANT = "manage_tenant"
    VIEW_COSTS = "view_costs"  # chargeback reports of the whole tenant


ROLE_CAPABILITIES: dict[str, frozenset[str]] = {
    Role.ADMIN: frozenset(Capability.values),
    Role.APPROVER: frozenset({Capability.VIEW_JOBS, Capability.APPROVE_JOB}),
    Role.RESEARCHER: frozenset({Capability.VIEW_JOBS, Capability.SUBMIT_JOB}),
    Role.AUDITOR: frozenset({Capability.VIEW_JOBS, Capability.VIEW_AUDIT, Capability.VIEW_COSTS}),
    Role.VIEWER: frozenset({Capability.VIEW_JOBS}),
}

# Django admin permissions per role group ("app_label.codename").
ROLE_GROUP_PERMISSIONS: dict[str, tuple[str, ...]] = {
    Role.ADMIN: (
        "tenancy.view_tenant",
        "tenancy.change_tenant",
        "tenancy.view_project",
        "tenancy.add_project",
        "tenancy.change_project",
        "tenancy.view_membership",
        "tenancy.add_membership",
        "tenancy.change_membership",
        "tenancy.delete_membership",
        "tenancy.view_apikey",
        "tenancy.add_apikey",
        "tenancy.change_apikey",
        "jobs.view_quantumjob",
        "jobs.change_quantumjob",
        "finops.view_budgetpolicy",
        "finops.add_budgetpolicy",
        "finops.change_budgetpolicy",
        "finops.view_budgetwindow",
        "finops.view_charge",
        "finops.view_pendingapproval",
        "finops.change_pendingapproval",
        "finops.view_approvaldecision",
        "finops.add_approvaldecision",
    ),
    Role.APPROVER: (
        "jobs.view_quantumjob", "jobs.change_quantumjob", "tenancy.view_project", "finops.view_pendingapproval",
        "finops.change_pendingapproval", "finops.view_approvaldecision", "finops.add_approvaldecision",
        "finops.view_budgetpolicy", "finops.view_budgetwindow",
    ),
    Role.RESEARCHER: ("jobs.view_quantumjob", "tenancy.view_project"),
    Role.AUDITOR: (
        "jobs.view_quantumjob", "tenancy.view_project", "tenancy.view_membership", "finops.view_approvaldecision",
        "finops.view_charge", "finops.view_budgetpolicy", "finops.view_budgetwindow",
    ),
    Role.VIEWER: ("jobs.view_quantumjob",),
}

# Roles whose holders get into the Django admin (is_staff).
STAFF_ROLES = frozenset({Role.ADMIN, Role.APPROVER, Role.AUDITOR})


def group_name(role: str) -> str:
    return f"qcos:{role}"


def capabilities_of(roles: set[str] | frozenset[str]) -> frozenset[str]:
    caps: set[str] = set()
    for role in roles:
        caps |= ROLE_CAPABILITIES.get(role, frozenset())
    return frozenset(caps)
