"""Job states and the transitions between them (ARCHITECTURE.md, "States")."""

from __future__ import annotations

from django.db import models


class JobStatus(models.TextChoices):
    PENDING_APPROVAL = "PENDING_APPROVAL"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"


TERMINAL = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.REJECTED})

# to-state → the states it may be entered from. RUNNING → QUEUED only when a lease expires or a
# transient provider failure leaves attempts to spare; services enforce the "only when".
TRANSITIONS: dict[str, frozenset[str]] = {
    JobStatus.QUEUED: frozenset({JobStatus.PENDING_APPROVAL, JobStatus.RUNNING}),
    JobStatus.REJECTED: frozenset({JobStatus.PENDING_APPROVAL}),
    JobStatus.RUNNING: frozenset({JobStatus.QUEUED}),
    JobStatus.COMPLETED: frozenset({JobStatus.RUNNING}),
    JobStatus.FAILED: frozenset({JobStatus.RUNNING, JobStatus.QUEUED}),
    JobStatus.CANCELLED: frozenset({JobStatus.PENDING_APPROVAL, JobStatus.QUEUED}),
}


def can_transition(from_status: str, to_status: str) -> bool:
    return from_status in TRANSITIONS.get(to_status, frozenset())


class Priority(models.TextChoices):
    STANDARD = "standard"
    PRIORITY = "priority"
    URGENT = "urgent"
