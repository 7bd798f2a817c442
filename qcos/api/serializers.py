"""Input parsing and output shapes for the v2.1 API (the Ledger seed's job body)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from qcos.jobs.models import QuantumJob
from qcos.jobs.states import JobStatus, Priority
from workers.providers.registry import get_backend

MAX_TAGS = 50


class StrictText(serializers.CharField):
    """Text given as a JSON string only: DRF's CharField would turn ``5`` or ``true`` into the text
    "5" or "True", which the schema (``type: string``) does not allow."""

    default_error_messages = {"invalid": "must be a JSON string."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBoolean(serializers.BooleanField):
    """``true`` or ``false`` only; DRF's BooleanField also takes 0, 1, "yes", "on", ..."""

    default_error_messages = {"invalid": "must be true or false."}

    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class StrictInteger(serializers.IntegerField):
    """A JSON integer only; DRF's IntegerField also takes "10" and 10.0 (and true as 1)."""

    default_error_messages = {"invalid": "must be a JSON integer."}

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class CircuitText(StrictText):
    """A circuit's program text (a number would otherwise be reported as a syntax error)."""

    default_error_messages = {"invalid": "must be OpenQASM program text (a JSON string)."}


@extend_schema_field({"type": "integer", "minimum": 1, "maximum": settings.QCOS["MAX_SHOTS"], "default": 1024})
class ShotsField(StrictInteger):
    """Shots: the range is the service's rule (``INVALID_SHOTS``, jobs.services.shots_check); the
    schema states it."""


@extend_schema_field({
    "type": "object", "maxProperties": MAX_TAGS,
    "additionalProperties": {"type": "string", "maxLength": 256},
    "description": f"At most {MAX_TAGS} tags; keys of 1-64 characters without '=' or ','.",
})
class TagsField(serializers.DictField):
    pass


class LedgerInput(serializers.Serializer):
    enabled = StrictBoolean(default=True)
    tenant_id = StrictText(required=False, max_length=63)
    project = StrictText(required=False, max_length=63)
    tags = TagsField(child=StrictText(max_length=256, allow_blank=True), required=False)

    def validate_tags(self, tags: dict[str, str]) -> dict[str, str]:
        if len(tags) > MAX_TAGS:
            raise serializers.ValidationError(f"at most {MAX_TAGS} tags")
        for key in tags:
            if not key or len(key) > 64 or "=" in key or "," in key:
                raise serializers.ValidationError(f"invalid tag key {key!r} (1-64 characters, no '=' or ',')")
        return tags


class JobSubmitInput(serializers.Serializer):
    """Only types are checked here; the service decides what is acceptable (and its error codes)."""

    circuit = CircuitText(trim_whitespace=False, allow_blank=True, help_text=(
        f"OpenQASM 2 or 3 program text, at most {settings.QCOS['MAX_CIRCUIT_BYTES']} bytes (CIRCUIT_TOO_LARGE)."))
    backend = StrictText(max_length=64)
    shots = ShotsField(default=1024)
    priority = serializers.ChoiceField(choices=Priority.choices, default=Priority.STANDARD)
    ledger = LedgerInput(required=False)


_SUBMIT_KEYS = frozenset({"circuit", "backend", "shots", "priority", "ledger"})
_LEDGER_KEYS = frozenset({"enabled", "tenant_id", "project", "tags"})
_PRIORITIES = frozenset(Priority.values)


def _plain_text(value: Any, *, max_length: int | None, trimmed: bool, allow_blank: bool) -> bool:
    """True when DRF's CharField would return ``value`` unchanged: a real str, no NUL or lone
    surrogate, already trimmed where the field trims, not blank where blanks are refused."""
    if type(value) is not str or "\x00" in value:
        return False
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return False
    if trimmed and value != value.strip():
        return False
    if not allow_blank and not value:
        return False
    return max_length is None or len(value) <= max_length


def submit_input_fast(data: Any) -> dict[str, Any] | None:
    """``JobSubmitInput(data=data).validated_data`` for a plainly well-formed body, or None.

    Validating through DRF's serializer costs more than the rest of the request's parsing
    (perf/pipeline.py); a body whose every value already has its final type and form (a str
    circuit, an int shots, a bool ``enabled``, trimmed names, valid tags) is taken as it is, with
    the serializer's defaults. Anything else -- a wrong type, a value DRF would convert, trim or
    refuse, an unknown key -- returns None, and the caller runs the serializer, which gives the
    same result or the usual VALIDATION_ERROR. tests/api/test_submit_input.py compares both.
    """
    if type(data) is not dict or not data.keys() <= _SUBMIT_KEYS:
        return None
    circuit, backend = data.get("circuit"), data.get("backend")
    if not _plain_text(circuit, max_length=None, trimmed=False, allow_blank=True):
        return None
    if not _plain_text(backend, max_length=64, trimmed=True, allow_blank=False):
        return None
    shots = data.get("shots", 1024)
    priority = data.get("priority", Priority.STANDARD)
    if type(shots) is not int or ("priority" in data and (type(priority) is not str or priority not in _PRIORITIES)):
        return None
    body: dict[str, Any] = {"circuit": circuit, "backend": backend, "shots": shots, "priority": priority}
    if "ledger" in data:
        ledger = data["ledger"]
        if type(ledger) is not dict or not ledger.keys() <= _LEDGER_KEYS:
            return None
        enabled = ledger.get("enabled", True)
        if type(enabled) is not bool:
            return None
        out: dict[str, Any] = {"enabled": enabled}
        for name in ("tenant_id", "project"):
            if name in ledger:
                if not _plain_text(ledger[name], max_length=63, trimmed=True, allow_blank=False):
                    return None
                out[name] = ledger[name]
        if "tags" in ledger:
            tags = ledger["tags"]
            if type(tags) is not dict or len(tags) > MAX_TAGS:
                return None
            for key, value in tags.items():
                if type(key) is not str or not key or len(key) > 64 or "=" in key or "," in key:
                    return None
                if not _plain_text(value, max_length=256, trimmed=True, allow_blank=True):
                    return None
            out["tags"] = dict(tags)
        body["ledger"] = out
    return body


class TimingsOutput(serializers.Serializer):
    submitted_at = serializers.DateTimeField()
    started_at = serializers.DateTimeField(allow_null=True)
    completed_at = serializers.DateTimeField(allow_null=True)
    queue_ms = serializers.FloatField(allow_null=True, help_text="Submitted → started (last attempt).")
    execution_ms = serializers.FloatField(allow_null=True, help_text="As reported by the backend.")
    execution_ms_source = serializers.CharField(allow_null=True)
    total_ms = serializers.FloatField(allow_null=True, help_text="Submitted → completed.")


class JobErrorOutput(serializers.Serializer):
    code = serializers.CharField()
    message = serializers.CharField()


class CostBreakdownOutput(serializers.Serializer):
    queue = serializers.DecimalField(max_digits=18, decimal_places=6,
                                     help_text="Priority surcharge: compute × (tier multiplier − 1).")
    compute = serializers.DecimalField(max_digits=18, decimal_places=6,
                                       help_text="The provider's charge by the price sheet's formula.")
    storage = serializers.DecimalField(max_digits=18, decimal_places=6,
                                       help_text="Evidence storage fee of the price sheet.")


class JobOutput(serializers.Serializer):
    job_id = serializers.CharField()
    status = serializers.ChoiceField(choices=JobStatus.choices)
    tenant_id = serializers.CharField()
    project = serializers.CharField()
    backend = serializers.CharField()
    shots = serializers.IntegerField()
    priority = serializers.ChoiceField(choices=Priority.choices)
    tags = serializers.DictField(child=serializers.CharField())
    ledger_enabled = serializers.BooleanField()
    circuit_hash = serializers.CharField()
    num_qubits = serializers.IntegerField()
    depth = serializers.IntegerField()
    counts = serializers.DictField(child=serializers.IntegerField(), allow_null=True)
    attempts = serializers.IntegerField()
    provenance_id = serializers.CharField(allow_null=True)
    estimated_cost_usd = serializers.DecimalField(max_digits=18, decimal_places=6, allow_null=True,
                                                  help_text="Reserved at submit (USD).")
    cost_usd = serializers.DecimalField(max_digits=18, decimal_places=6, allow_null=True,
                                        help_text="Settled cost once COMPLETED (USD).")
    cost_breakdown = CostBreakdownOutput(allow_null=True)
    price_sheet = serializers.CharField(allow_null=True, help_text="sheet_id@version that priced the job.")
    error = JobErrorOutput(allow_null=True)
    timings = TimingsOutput()
    warning = serializers.CharField(allow_null=True, help_text="Set for DEV MODE backends: hardware names "
                                                                "simulated locally, whose results are not measured.")

    def to_representation(self, job: QuantumJob) -> dict[str, Any]:
        return job_representation(job)


def _ms(start, end) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds() * 1000.0, 3)


def _money(value) -> str | None:
    """USD as a decimal string with six places, like DRF's DecimalField and the estimates
    endpoint: a JSON float would lose cents (the SDK turns these into ``Decimal``)."""
    return None if value is None else f"{value:.6f}"


def _breakdown(breakdown: dict[str, str]) -> dict[str, str]:
    return {part: breakdown.get(part, "0.000000") for part in ("queue", "compute", "storage")}


def _provenance_id(job: QuantumJob) -> str | None:
    if job.status != JobStatus.COMPLETED:
        return None
    provenance = getattr(job, "provenance", None)
    return provenance.provenance_id if provenance else None


def job_representation(job: QuantumJob) -> dict[str, Any]:
    result = getattr(job, "result", None) if job.status == JobStatus.COMPLETED else None
    return {
        "job_id": job.id,
        "status": job.status,
        "tenant_id": job.tenant.slug,
        "project": job.project.slug,
        "backend": job.backend,
        "shots": job.shots,
        "priority": job.priority,
        "tags": job.tags,
        "ledger_enabled": job.ledger_enabled,
        "circuit_hash": job.circuit_hash,
        "num_qubits": job.num_qubits,
        "depth": job.depth,
        "counts": result.counts if result else None,
        "attempts": job.attempts,
        "provenance_id": _provenance_id(job),
        "estimated_cost_usd": _money(job.estimated_cost_usd),
        "cost_usd": _money(job.cost_usd),
        "cost_breakdown": _breakdown(job.cost_breakdown) if job.cost_usd is not None else None,
        "price_sheet": job.price_sheet or None,
        "error": {"code": job.error_code, "message": job.error_message}
        if job.status == JobStatus.FAILED
        else None,
        "timings": {
            "submitted_at": job.submitted_at.isoformat().replace("+00:00", "Z"),
            "started_at": job.started_at.isoformat().replace("+00:00", "Z") if job.started_at else None,
            "completed_at": job.completed_at.isoformat().replace("+00:00", "Z") if job.completed_at else None,
            "queue_ms": _ms(job.submitted_at, job.started_at),
            "execution_ms": round(result.execution_ms, 3) if result else None,
            "execution_ms_source": result.execution_ms_source if result else None,
            "total_ms": _ms(job.submitted_at, job.completed_at),
        },
        "warning": _warning(job.backend),
    }


def _warning(backend: str) -> str | None:
    spec = get_backend(backend)
    return (spec.warning or None) if spec else None
