"""``POST /api/v2.1/estimates``: the cost of a job before it is submitted (the Ledger seed's
``client.estimate_cost``), priced with the current price sheet of the backend's family."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from finops.catalog import BACKENDS as PRICED_BACKENDS
from finops.formulas import PricingError
from finops.pricing import estimate
from qcos.errors import InvalidCircuit, QCOSError, UnknownBackend
from qcos.jobs import circuits, selectors
from qcos.jobs.states import Priority
from qcos.tenancy.roles import Capability


class EstimateInput(serializers.Serializer):
    circuit = serializers.CharField(trim_whitespace=False)
    backend = serializers.CharField(max_length=64)
    shots = serializers.IntegerField(min_value=1, max_value=100_000, default=1024)
    priority = serializers.ChoiceField(choices=Priority.choices, default=Priority.STANDARD)


class EstimateView(APIView):
    @extend_schema(summary="Estimate a job's cost before submitting it", request=EstimateInput,
                   responses={200: dict})
    def post(self, request: Request) -> Response:
        request.auth.require(Capability.VIEW_JOBS)
        data = EstimateInput(data=request.data)
        data.is_valid(raise_exception=True)
        params = data.validated_data
        if params["backend"] not in PRICED_BACKENDS:
            raise UnknownBackend(f"unknown backend {params['backend']!r}",
                                 details={"backend": params["backend"], "available": sorted(PRICED_BACKENDS)})
        try:
            circuit = circuits.parse_circuit(params["circuit"])
        except circuits.CircuitError as exc:
            raise InvalidCircuit(str(exc), details={"line": exc.line, "column": exc.column}) from None
        try:
            priced = estimate(circuit, params["backend"], params["shots"], tier=params["priority"])
        except PricingError as exc:
            raise QCOSError(str(exc), code="PRICING_ERROR") from None
        body = priced.as_dict()
        body["estimated_queue_minutes"] = selectors.backend_queue_minutes(backend=params["backend"])
        return Response(body)
