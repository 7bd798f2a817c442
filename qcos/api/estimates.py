"""``POST /api/v2.1/estimates``: the cost of a job before it is submitted (the Ledger seed's
``client.estimate_cost``), priced with the price-sheet version in force (database) and the cost
tiers of the caller's tenant policy. Backends are those jobs can be submitted to and, to compare
providers before choosing, every backend the price catalogue covers."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from finops import estimates as finops_estimates
from finops import windows
from finops.catalog import BACKENDS as PRICED_BACKENDS
from finops.sheets import sheet_current
from qcos.errors import UnknownBackend
from qcos.jobs import selectors
from qcos.jobs import services as job_services
from qcos.jobs.states import Priority
from qcos.tenancy.roles import Capability
from workers.providers.registry import BACKENDS, get_backend

from .outputs import BackendList, EstimateOutput
from .schema import error
from .serializers import CircuitText, ShotsField, StrictText
from .views import BELL


class EstimateInput(serializers.Serializer):
    circuit = CircuitText(trim_whitespace=False)
    backend = StrictText(max_length=64)
    shots = ShotsField(default=1024)  # its range is the submit's: jobs.services.shots_check
    priority = serializers.ChoiceField(choices=Priority.choices, default=Priority.STANDARD)


class EstimateView(APIView):
    @extend_schema(summary="Estimate a job's cost before submitting it", request=EstimateInput, examples=[
        OpenApiExample("A Bell pair on IonQ Forte", request_only=True,
                       value={"circuit": BELL, "backend": "ionq_forte", "shots": 1000, "priority": "standard"})],
                   responses={
        200: EstimateOutput,
        400: error("INVALID_CIRCUIT, CIRCUIT_TOO_LARGE, UNKNOWN_BACKEND, INVALID_SHOTS, PRICING_ERROR, "
                   "MALFORMED_REQUEST or VALIDATION_ERROR"),
        403: error("PERMISSION_DENIED"),
    })
    def post(self, request: Request) -> Response:
        request.auth.require(Capability.VIEW_JOBS)
        data = EstimateInput(data=request.data)
        data.is_valid(raise_exception=True)
        params = data.validated_data
        job_services.shots_check(params["shots"])
        # Any backend jobs can run on, or that the catalogue prices (to compare before choosing).
        if get_backend(params["backend"]) is None and params["backend"] not in PRICED_BACKENDS:
            raise UnknownBackend(f"unknown backend {params['backend']!r}", details={
                "backend": params["backend"], "available": sorted(set(BACKENDS) | set(PRICED_BACKENDS))})
        # The parser's limits apply, before it runs; a backend's qubit limits do not (docs/circuits.md).
        circuit, _scan = job_services.circuit_parse(params["circuit"])
        policies = windows.policies_for(tenant=request.auth.tenant, project=None)
        tiers = finops_estimates.cost_tiers_for(policies)
        priced = finops_estimates.price_estimate(circuit=circuit, backend=params["backend"], shots=params["shots"],
                                                 tier=params["priority"], tier_multipliers=tiers)
        body = priced.as_dict()
        body["estimated_queue_minutes"] = selectors.backend_queue_minutes(backend=params["backend"])
        return Response(body)


class BackendListView(APIView):
    @extend_schema(summary="The backends jobs can run on, each with its provider and price sheet",
                   responses={200: BackendList, 403: error("PERMISSION_DENIED")})
    def get(self, request: Request) -> Response:
        request.auth.require(Capability.VIEW_JOBS)
        rows = []
        for name, spec in sorted(BACKENDS.items()):
            priced = finops_estimates.pricing_backend(name)
            entry = PRICED_BACKENDS[priced]
            sheet = sheet_current(entry.sheet_id)
            rows.append({
                "name": name,
                "provider": spec.provider,
                "description": spec.description,
                "max_qubits": spec.max_qubits,
                "max_qubits_clifford": spec.max_qubits_clifford,
                "dev_mode": spec.dev_mode,
                "priced_as": priced,
                "price_sheet": {"sheet_id": sheet.sheet_id, "version": sheet.version, "family": sheet.family,
                                "provider": entry.provider},
            })
        return Response({"results": rows})
