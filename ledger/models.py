"""The audit log: append-only rows, sequenced into a hash chain with signed checkpoints."""

from __future__ import annotations

from django.db import models


class AuditEntry(models.Model):
    """One recorded state change, in the Ledger seed's shape.

    ``payload`` holds the entry's exact RFC 8785 bytes (as text): it is what is hashed, what the
    API returns, and what the indexed columns beside it must agree with. Appending is a plain
    INSERT with ``seq`` NULL, so writers never wait on each other; the sequencer later gives each
    entry its place in the chain (``seq``, ``prev_hash``, ``entry_hash``), once. PostgreSQL
    triggers refuse every other UPDATE, every DELETE and TRUNCATE.
    """

    id = models.BigAutoField(primary_key=True)
    audit_id = models.CharField(max_length=40, unique=True)
    timestamp = models.DateTimeField()
    tenant_slug = models.CharField(max_length=63, blank=True)
    action = models.CharField(max_length=64)
    resource_type = models.CharField(max_length=64, blank=True)
    resource_id = models.CharField(max_length=128, blank=True)
    outcome = models.CharField(max_length=16)
    payload = models.TextField()
    seq = models.BigIntegerField(null=True, blank=True, unique=True)
    prev_hash = models.CharField(max_length=64, blank=True)
    entry_hash = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "audit entries"
        indexes = [
            models.Index(fields=["tenant_slug", "timestamp"], name="audit_tenant_time"),
            models.Index(fields=["resource_type", "resource_id"], name="audit_resource"),
            models.Index(fields=["id"], name="audit_unsequenced", condition=models.Q(seq__isnull=True)),
        ]

    def __str__(self) -> str:
        return f"{self.audit_id} {self.action}"


class AuditCheckpoint(models.Model):
    """A signed statement of the chain head after a sequencing run: ``seq`` and ``head_hash``.

    Anyone holding the ledger's public keys can check that the chain up to ``seq`` is the one that
    was signed, so a rewrite by someone with database access (who can disable triggers and
    recompute hashes) is still detected: they do not hold the signing key.
    """

    seq = models.BigIntegerField(unique=True)
    head_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    key_id = models.CharField(max_length=64, blank=True)
    signature = models.TextField(blank=True)

    class Meta:
        ordering = ["-seq"]

    def __str__(self) -> str:
        return f"checkpoint @{self.seq}"
