"""``GET /api/v2.1/audit``: the audit query of the Ledger seed (tenant, dates, actions, limit)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import orjson
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ledger.audit import audit_verify
from ledger.models import AuditEntry
from ledger.selectors import audit_entries_for
from qcos.errors import TenantMismatch, ValidationFailed
from qcos.tenancy.roles import Capability

from .schema import error

MAX_LIMIT = 1000
MAX_CURSOR = 2**63 - 1  # entry ids are 64-bit


@extend_schema_field({"type": "string", "anyOf": [{"format": "date"}, {"format": "date-time"}]})
class MomentField(serializers.CharField):
    """An ISO 8601 date (``2026-01-31``) or date-time; parsed by ``_moment``."""

    def __init__(self, **kwargs):
        # Blank is passed on (and refused by ``_moment``) rather than taken for an absent date.
        super().__init__(required=False, allow_blank=True, **kwargs)


class AuditQuery(serializers.Serializer):
    tenant_id = serializers.CharField(required=False, allow_blank=True,
                                      help_text="the key's tenant (any other is TENANT_MISMATCH); blank: the key's")
    start_date = MomentField(help_text="ISO date or date-time (inclusive)")
    end_date = MomentField(help_text="ISO date (inclusive day) or date-time (exclusive)")
    actions = serializers.CharField(required=False, allow_blank=True,
                                    help_text="comma-separated, e.g. JOB_SUBMITTED,JOB_COMPLETED; blank: all")
    limit = serializers.IntegerField(required=False, min_value=1, max_value=MAX_LIMIT, default=100)
    cursor = serializers.IntegerField(required=False, min_value=0, max_value=MAX_CURSOR,
                                      help_text="the `next_cursor` of the previous page")

    def validate_start_date(self, value: str) -> datetime:
        return _moment(value, end=False)

    def validate_end_date(self, value: str) -> datetime:
        return _moment(value, end=True)


class AuditPage(serializers.Serializer):
    entries = serializers.ListField(child=serializers.DictField(), help_text="oldest first, with `seq` and "
                                                                             "`entry_hash` once sequenced")
    next_cursor = serializers.IntegerField(allow_null=True, help_text="pass as `cursor` for the next page")


def _moment(value: str, *, end: bool) -> datetime:
    """A date means the whole day (so ``end_date=2026-01-31`` includes the 31st); a date-time is exact.
    Moments that cannot be expressed in UTC (``9999-12-31`` as an end, whose next day is year
    10000) are refused, not left to overflow later."""
    try:
        if len(value) == 10:
            day = date.fromisoformat(value) + timedelta(days=1 if end else 0)
            return datetime.combine(day, time.min, tzinfo=UTC)
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        raise serializers.ValidationError("use an ISO 8601 date (2026-01-31) or date-time "
                                          "between years 1 and 9999") from None


class AuditListView(APIView):
    @extend_schema(
        summary="Query the audit log of the caller's tenant",
        parameters=[AuditQuery],
        responses={200: AuditPage, 400: error("INVALID_DATE_RANGE or VALIDATION_ERROR"),
                   403: error("PERMISSION_DENIED or TENANT_MISMATCH")},
    )
    def get(self, request: Request) -> Response:
        principal = request.auth
        principal.require(Capability.VIEW_AUDIT)
        query = AuditQuery(data=request.query_params)
        query.is_valid(raise_exception=True)
        params = query.validated_data
        if params.get("tenant_id") and params["tenant_id"] != principal.tenant.slug:
            raise TenantMismatch(
                f"this API key belongs to tenant {principal.tenant.slug!r}", details={"tenant_id": params["tenant_id"]}
            )
        start, end = params.get("start_date"), params.get("end_date")
        # The reports' code. ``end`` is exclusive by now (a date means its whole day), so "not after"
        # is what refuses a reversed range, however it is written.
        if start is not None and end is not None and end <= start:
            raise ValidationFailed("end_date must be after start_date", code="INVALID_DATE_RANGE", details={
                "start_date": query.initial_data["start_date"], "end_date": query.initial_data["end_date"]})
        actions = [a.strip() for a in params.get("actions", "").split(",") if a.strip()]
        limit = params["limit"]
        rows = list(
            audit_entries_for(
                principal=principal, start=params.get("start_date"), end=params.get("end_date"),
                actions=actions, after_id=params.get("cursor"),
            ).values_list("id", "seq", "entry_hash", "payload")[: limit + 1]
        )
        more = len(rows) > limit
        rows = rows[:limit]
        entries = [{**orjson.loads(payload), "seq": seq, "entry_hash": entry_hash or None} for _, seq, entry_hash, payload in rows]
        return Response({"entries": entries, "next_cursor": rows[-1][0] if more else None})


class AuditVerifyView(APIView):
    @extend_schema(summary="Sequence pending entries and verify the whole audit chain", request=None,
                   responses={200: dict, 403: error("PERMISSION_DENIED")})
    def post(self, request: Request) -> Response:
        principal = request.auth
        principal.require(Capability.VIEW_AUDIT)
        report = audit_verify().as_dict()
        bad = report["first_bad"]
        if bad and not AuditEntry.objects.filter(audit_id=bad["audit_id"], tenant_slug=principal.tenant.slug).exists():
            bad["audit_id"] = None  # another tenant's entry: say where, not whose
        return Response(report)
