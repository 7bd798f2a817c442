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
    was signed. The row alone does not protect against someone who can also delete rows: every
    checkpoint is also published outside the database (``ledger.checkpoints``), and verification
    compares the chain with those.
    """

    seq = models.BigIntegerField(unique=True)
    head_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField()
    note = models.TextField(default="", help_text="C2SP signed note: origin, seq, head hash, ledger signature")
    # When the note was published outside the database (ledger.checkpoints); NULL until then.
    published_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-seq"]
        indexes = [models.Index(fields=["seq"], name="audit_checkpoint_unpublished",
                                condition=models.Q(published_at__isnull=True))]

    def __str__(self) -> str:
        return f"checkpoint @{self.seq}"


class SigningKey(models.Model):
    """A public key the ledger or a worker signs with, and its validity window.

    Private keys never enter the database: they live in files (``QCOS_KEY_DIR``), the environment,
    or AWS KMS. Rows are never deleted, so bundles signed by a retired key keep verifying.
    """

    ROLE_CHOICES = [("ledger", "ledger"), ("worker", "worker")]
    STATUS_CHOICES = [("active", "active"), ("retired", "retired"), ("revoked", "revoked")]

    key_id = models.CharField(primary_key=True, max_length=64)
    role = models.CharField(max_length=16, choices=ROLE_CHOICES)
    backend = models.CharField(max_length=16, default="local")
    host = models.CharField(max_length=200, blank=True, help_text="for worker keys: the host that holds it")
    public_key_der = models.BinaryField()
    kms_key_arn = models.CharField(max_length=300, blank=True)
    not_before = models.DateTimeField()
    not_after = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=STATUS_CHOICES, default="active")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["role", "-not_before"]

    def __str__(self) -> str:
        return f"{self.role} {self.key_id[:16]} ({self.status})"


class Provenance(models.Model):
    """The provenance record of a completed job (the Ledger seed's fields), immutable."""

    provenance_id = models.CharField(primary_key=True, max_length=48)
    job = models.OneToOneField("jobs.QuantumJob", on_delete=models.PROTECT, related_name="provenance")
    payload = models.TextField(help_text="RFC 8785 JSON of the record")
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.provenance_id


class BundleRecord(models.Model):
    """A signed evidence bundle, stored as the exact JSON text that was signed: a job's, or a
    benchmark run's (Bench V3). Either way it is entered in the transparency registry."""

    bundle_id = models.CharField(primary_key=True, max_length=48)
    job = models.OneToOneField("jobs.QuantumJob", null=True, blank=True, on_delete=models.PROTECT,
                               related_name="bundle")
    benchmark = models.OneToOneField("bench.BenchmarkRun", null=True, blank=True, on_delete=models.PROTECT,
                                     related_name="bundle_record")
    tenant_slug = models.CharField(max_length=63)
    body = models.TextField()
    merkle_root = models.CharField(max_length=64)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(job__isnull=False, benchmark__isnull=True)
                | models.Q(job__isnull=True, benchmark__isnull=False),
                name="bundle_of_a_job_or_a_benchmark",
            ),
        ]

    def __str__(self) -> str:
        return self.bundle_id


class RegistryLeaf(models.Model):
    """A bundle registered in the transparency log. Appended unsequenced (no lock on the job's
    path); the registry sequencer gives it ``leaf_index`` and the log's perfect-subtree nodes."""

    bundle = models.OneToOneField(BundleRecord, on_delete=models.PROTECT, related_name="leaf")
    leaf_hash = models.CharField(max_length=64)
    leaf_index = models.BigIntegerField(null=True, blank=True, unique=True)
    registered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["id"], name="registry_unsequenced", condition=models.Q(leaf_index__isnull=True))]


class RegistryNode(models.Model):
    """The hash of the perfect subtree ``[index·2^level, (index+1)·2^level)`` (RFC 9162)."""

    level = models.PositiveSmallIntegerField()
    index = models.BigIntegerField()
    hash = models.CharField(max_length=64)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["level", "index"], name="registry_node_unique")]


class RegistryCheckpoint(models.Model):
    """A signed tree head of the registry, in the C2SP tlog-checkpoint signed-note format."""

    tree_size = models.BigIntegerField(unique=True)
    root = models.CharField(max_length=64)
    note = models.TextField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["-tree_size"]

    def __str__(self) -> str:
        return f"registry checkpoint @{self.tree_size}"
