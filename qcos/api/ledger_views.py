"""Ledger endpoints: evidence bundles, public keys, bundle verification, the registry."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ledger import registry
from ledger.crypto.bundle import BundleFormatError, EvidenceBundle
from ledger.evidence import bundle_document
from ledger.keys import keyring
from ledger.models import BundleRecord, RegistryLeaf
from qcos.errors import NotFound, ValidationFailed
from qcos.jobs import selectors
from qcos.tenancy.roles import Capability

from .negotiation import answers_with
from .outputs import ConsistencyProofOutput, InclusionProofOutput, LeafOutput
from .schema import error
from .serializers import StrictBoolean, StrictText

VIEW_ERRORS = {403: error("PERMISSION_DENIED")}


def query_choice(request: Request, name: str, choices: tuple[str, ...]) -> str:
    """An optional query parameter with a fixed set of values (the first is the default); any
    other value is refused rather than silently taken for the default."""
    value = request.query_params.get(name, choices[0])
    if value not in choices:
        raise ValidationFailed(f"{name} must be one of {', '.join(choices)}",
                               details={"fields": {name: [f"not one of {', '.join(choices)}"]}})
    return value


def _viewer(request: Request):
    principal = request.auth
    principal.require(Capability.VIEW_JOBS)
    return principal


class JobEvidenceView(APIView):
    content_negotiation_class = answers_with("application/zip")

    @extend_schema(
        summary="The job's signed evidence bundle (JSON, or the seed's directory layout as a zip)",
        parameters=[OpenApiParameter("format", str, enum=["json", "zip"], default="json")],
        responses={(200, "application/json"): dict,
                   (200, "application/zip"): OpenApiResponse(OpenApiTypes.BINARY, description="?format=zip"),
                   400: error("VALIDATION_ERROR (an unknown format)"), **VIEW_ERRORS,
                   404: error("NOT_FOUND: no such job in the tenant, or it has no evidence bundle yet")},
    )
    def get(self, request: Request, job_id: str):
        as_zip = query_choice(request, "format", ("json", "zip")) == "zip"
        job = selectors.job_get(principal=_viewer(request), job_id=job_id)
        record = BundleRecord.objects.filter(job=job).first()
        if record is None:
            raise NotFound(f"job {job_id} has no evidence bundle (it is {job.status})", details={"job_id": job_id})
        document = bundle_document(record)
        if not as_zip:
            return Response(document)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "bundle.zip"
            EvidenceBundle(document).to_zip(path)
            response = HttpResponse(path.read_bytes(), content_type="application/zip")
        response["Content-Disposition"] = f"attachment; filename={record.bundle_id}.zip"
        return response


class PublicKeysView(APIView):
    @extend_schema(summary="The ledger's and workers' public keys with validity windows",
                   responses={200: dict, **VIEW_ERRORS})
    def get(self, request: Request) -> Response:
        _viewer(request)
        return Response(keyring().to_dict())


class BundleVerifyInput(serializers.Serializer):
    bundle_id = StrictText(required=False)
    bundle = serializers.DictField(required=False)
    check_registry = StrictBoolean(default=False)

    def validate(self, attrs):
        if bool(attrs.get("bundle_id")) == bool(attrs.get("bundle")):
            raise serializers.ValidationError("give exactly one of bundle_id or bundle")
        return attrs


class BundleVerifyView(APIView):
    @extend_schema(summary="Verify a bundle (stored or given) and, optionally, its registration",
                   request=BundleVerifyInput, responses={
                       200: dict, 400: error("VALIDATION_ERROR or VERIFICATION_FAILED (not an evidence bundle)"),
                       **VIEW_ERRORS, 404: error("NOT_FOUND: no such bundle in the tenant")})
    def post(self, request: Request) -> Response:
        principal = _viewer(request)
        data = BundleVerifyInput(data=request.data)
        data.is_valid(raise_exception=True)
        params = data.validated_data
        ring = keyring()
        if params.get("bundle_id"):
            record = BundleRecord.objects.filter(bundle_id=params["bundle_id"], tenant_slug=principal.tenant.slug).first()
            if record is None:
                raise NotFound(f"bundle {params['bundle_id']} not found", details={"bundle_id": params["bundle_id"]})
            document = bundle_document(record, ring=ring)
        else:
            document = params["bundle"]
        try:
            report = EvidenceBundle(document).verify(keyring=ring)
        except BundleFormatError as exc:
            raise ValidationFailed(f"not an evidence bundle: {exc}", code="VERIFICATION_FAILED") from None
        body = {"bundle_id": document.get("bundle_id"), **_report(report)}
        if params["check_registry"]:
            body.update(registry.registration_status(document))
        return Response(body)


def _report(report) -> dict[str, Any]:
    return {
        "is_valid": report.is_valid, "signatures_valid": report.signatures_valid, "hashes_valid": report.hashes_valid,
        "chain_valid": report.chain_valid, "registry_valid": report.registry_valid, "keys_pinned": report.keys_pinned,
        "failures": list(report.failures), "warnings": list(report.warnings),
    }


class CheckpointView(APIView):
    content_negotiation_class = answers_with("text/plain")

    @extend_schema(summary="The latest signed registry checkpoint (C2SP signed note)", responses={
        (200, "text/plain"): OpenApiResponse(OpenApiTypes.STR, description="the signed note"), **VIEW_ERRORS,
        404: error("NOT_FOUND: the registry has no checkpoint yet")})
    def get(self, request: Request) -> HttpResponse:
        _viewer(request)
        checkpoint = registry.latest_checkpoint()
        if checkpoint is None:
            raise NotFound("the registry has no checkpoint yet")
        return HttpResponse(checkpoint.note, content_type="text/plain; charset=utf-8")


NON_NEGATIVE = {"type": "integer", "minimum": 0}


def _int(request: Request, name: str) -> int:
    try:
        value = int(request.query_params[name])
    except (KeyError, ValueError):
        raise ValidationFailed(f"{name} must be a non-negative integer", details={"field": name}) from None
    if value < 0:
        raise ValidationFailed(f"{name} must be a non-negative integer", details={"field": name})
    return value


class InclusionProofView(APIView):
    @extend_schema(summary="RFC 9162 inclusion proof of a leaf in a tree of the given size", responses={
        200: InclusionProofOutput, 400: error("VALIDATION_ERROR: need leaf_index < tree_size <= the registry's size"), **VIEW_ERRORS},
                   parameters=[OpenApiParameter("leaf_index", NON_NEGATIVE, required=True),
                               OpenApiParameter("tree_size", NON_NEGATIVE, required=True)])
    def get(self, request: Request) -> Response:
        _viewer(request)
        index, size = _int(request, "leaf_index"), _int(request, "tree_size")
        if not index < size <= registry.tree_size():
            raise ValidationFailed("need leaf_index < tree_size <= the registry's size",
                                   details={"tree_size_now": registry.tree_size()})
        proof = registry.inclusion_proof(index, size)
        root = registry.root_at(size)
        return Response({"leaf_index": index, "tree_size": size, "inclusion_proof": [h.hex() for h in proof],
                         "root": root.hex()})


class ConsistencyProofView(APIView):
    @extend_schema(summary="RFC 9162 consistency proof between two tree sizes", responses={
        200: ConsistencyProofOutput, 400: error("VALIDATION_ERROR: need 0 < first <= second <= the registry's size"), **VIEW_ERRORS},
                   parameters=[OpenApiParameter("first", NON_NEGATIVE, required=True),
                               OpenApiParameter("second", NON_NEGATIVE, required=True)])
    def get(self, request: Request) -> Response:
        _viewer(request)
        first, second = _int(request, "first"), _int(request, "second")
        if not 0 < first <= second <= registry.tree_size():
            raise ValidationFailed("need 0 < first <= second <= the registry's size",
                                   details={"tree_size_now": registry.tree_size()})
        proof = registry.consistency_proof(first, second)
        return Response({"first": first, "second": second, "consistency_proof": [h.hex() for h in proof]})


class LeafView(APIView):
    @extend_schema(summary="A bundle's registry leaf", responses={
        200: LeafOutput, **VIEW_ERRORS, 404: error("NOT_FOUND: no such bundle in the tenant")})
    def get(self, request: Request, bundle_id: str) -> Response:
        principal = _viewer(request)
        leaf = RegistryLeaf.objects.filter(bundle_id=bundle_id, bundle__tenant_slug=principal.tenant.slug).first()
        if leaf is None:
            raise NotFound(f"bundle {bundle_id} not found", details={"bundle_id": bundle_id})
        return Response({
            "bundle_id": bundle_id, "leaf_index": leaf.leaf_index, "leaf_hash": leaf.leaf_hash,
            "registered_at": leaf.registered_at.isoformat().replace("+00:00", "Z") if leaf.registered_at else None,
        })
