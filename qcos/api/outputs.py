"""Shapes of success answers, for the schema only: the views build these bodies themselves (plain
dicts, cheaper than serializing), and tests/api/test_openapi_schemathesis.py checks every answer
against them. Money is a decimal string (a JSON float would lose cents)."""

from __future__ import annotations

from rest_framework import serializers

from .serializers import JobOutput


def _money(help_text: str = "USD, a decimal string", **kwargs) -> serializers.CharField:
    return serializers.CharField(help_text=help_text, **kwargs)


class EstimateOutput(serializers.Serializer):
    cost_usd = _money()
    currency = serializers.CharField()
    breakdown = serializers.DictField(child=serializers.CharField(),
                                      help_text="compute (provider charge), queue (priority surcharge), storage")
    price_sheet_id = serializers.CharField()
    price_sheet_version = serializers.CharField()
    backend = serializers.CharField(help_text="the backend as priced")
    tier = serializers.CharField()
    inputs = serializers.DictField(help_text="what settlement recomputes the charge from")
    formula = serializers.CharField()
    estimated_queue_minutes = serializers.FloatField(allow_null=True, help_text="median of the backend's recent "
                                                                                "queue times; null without data")


class PriceSheetRef(serializers.Serializer):
    sheet_id = serializers.CharField()
    version = serializers.CharField()
    family = serializers.CharField()
    provider = serializers.CharField()


class BackendOutput(serializers.Serializer):
    name = serializers.CharField()
    provider = serializers.CharField()
    description = serializers.CharField()
    max_qubits = serializers.IntegerField()
    max_qubits_clifford = serializers.IntegerField()
    dev_mode = serializers.BooleanField()
    priced_as = serializers.CharField()
    price_sheet = PriceSheetRef()


class BackendList(serializers.Serializer):
    results = BackendOutput(many=True)


class PendingJobOutput(JobOutput):
    submitted_by = serializers.CharField()


class ApprovalList(serializers.Serializer):
    results = PendingJobOutput(many=True)


class BudgetStatusOutput(serializers.Serializer):
    tenant_id = serializers.CharField()
    policies = serializers.ListField(child=serializers.DictField(),
                                     help_text="each policy with its current day and month windows")


class LeafOutput(serializers.Serializer):
    bundle_id = serializers.CharField()
    leaf_index = serializers.IntegerField(allow_null=True, help_text="null until the registry sequences it")
    leaf_hash = serializers.CharField()
    registered_at = serializers.DateTimeField(allow_null=True)


class InclusionProofOutput(serializers.Serializer):
    leaf_index = serializers.IntegerField()
    tree_size = serializers.IntegerField()
    inclusion_proof = serializers.ListField(child=serializers.CharField(), help_text="hex hashes")
    root = serializers.CharField(help_text="hex")


class ConsistencyProofOutput(serializers.Serializer):
    first = serializers.IntegerField()
    second = serializers.IntegerField()
    consistency_proof = serializers.ListField(child=serializers.CharField(), help_text="hex hashes")


class ReportOutput(serializers.Serializer):
    id = serializers.CharField()
    report_type = serializers.CharField()
    tenant_id = serializers.CharField()
    start_date = serializers.DateField()
    end_date = serializers.DateField()
    group_by = serializers.ListField(child=serializers.CharField())
    format = serializers.CharField()
    status = serializers.CharField(help_text="PENDING, RUNNING, READY or FAILED")
    rows = serializers.IntegerField(allow_null=True, help_text="once READY")
    content_sha256 = serializers.CharField(allow_null=True)
    error = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True)
    download_url = serializers.CharField(allow_null=True, help_text="once READY")


class BenchmarkAccepted(serializers.Serializer):
    benchmark_id = serializers.UUIDField()
    status = serializers.CharField(help_text="queued")
    estimated_time_seconds = serializers.FloatField()
    message = serializers.CharField()
    warning = serializers.CharField(allow_null=True, help_text="set for DEV MODE backends")
    backend_id = serializers.CharField()
    workloads = serializers.ListField(child=serializers.CharField())
    shots = serializers.IntegerField()
    seed = serializers.IntegerField()
    dev_mode = serializers.BooleanField()
    estimated_cost_usd = _money()
    priced_as = serializers.CharField()
    report_url = serializers.CharField()
    download_url = serializers.CharField()
    evidence_url = serializers.CharField()
