"""Platform API for CDRs (/api/cdrs/): the operator's own systems read every CDR (our own and partners'), the
tariff engine's breakdown of our own, the reconciliation of partners' (their cost recomputed from their tariff), and
issue credit CDRs.

JWT-authenticated staff users (REST_FRAMEWORK defaults), DRF's error answers (`{"detail": ...}`,
ocpi_core.exceptions.exception_handler). CDRs are returned as stored (OCPI JSON, digit for digit); they are never
changed: a correction is a credit CDR (POST .../credit), sent to the eMSP like the original.
"""

import orjson
from django.db.models import QuerySet
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.views import APIView

from cdrs.models import Cdr, Reconciliation
from cdrs.reconciliation import cdr_reconcile
from cdrs.services import cdr_credit
from ocpi_core.api.platform import json_text_response
from ocpi_core.api.schema import object_schema

TAG = "Platform API: CDRs"
_CDR = object_schema("CDR")
_ERRORS = {
    401: OpenApiResponse(description="No or an invalid JWT"),
    403: OpenApiResponse(description="Not a staff user"),
}
_NOT_FOUND = {404: OpenApiResponse(description="Unknown CDR")}
_PK = [OpenApiParameter("cdr_pk", int, OpenApiParameter.PATH, description="The CDR's number on this platform")]


class PlatformPagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = 500


def _item(cdr: Cdr) -> bytes:
    """A list entry: our number, who holds it, and the CDR."""
    head = orjson.dumps(
        {
            "pk": cdr.pk,
            "own": cdr.is_own,
            "partner": cdr.partner.name if cdr.partner else None,
            "reconciliation": cdr.reconciliation_status or None,
        }
    )
    return head[:-1] + b',"cdr":' + cdr.doc.encode() + b"}"


class CdrListView(APIView):
    """/api/cdrs/: every CDR, newest first, filtered by owner, party, credit and token uid."""

    def _queryset(self, request: Request) -> QuerySet[Cdr]:
        queryset = Cdr.objects.select_related("partner")
        params = request.query_params
        if params.get("owner") == "own":
            queryset = queryset.filter(partner__isnull=True)
        elif params.get("owner") == "partner":
            queryset = queryset.filter(partner__isnull=False)
        party = params.get("party")
        if party:
            country_code, _, party_id = party.replace("-", "*").partition("*")
            queryset = queryset.filter(country_code__iexact=country_code, party_id__iexact=party_id)
        if params.get("credit") in ("true", "false"):
            queryset = queryset.filter(credit=params["credit"] == "true")
        if params.get("token_uid"):
            queryset = queryset.filter(token_uid__iexact=params["token_uid"])
        if params.get("session_id"):
            queryset = queryset.filter(session_id__iexact=params["session_id"])
        if params.get("reconciliation") in Reconciliation.values:
            queryset = queryset.filter(reconciliation_status=params["reconciliation"])
        return queryset.order_by("-last_updated", "-pk")

    @extend_schema(
        operation_id="platform_cdrs_list",
        summary="List CDRs (our own and partners')",
        tags=[TAG],
        parameters=[
            OpenApiParameter("owner", str, enum=["own", "partner"], description="Only our own, or only partners'"),
            OpenApiParameter("party", str, description="Only this owner party, as `NL*ABC`"),
            OpenApiParameter("credit", str, enum=["true", "false"], description="Only credit CDRs, or none"),
            OpenApiParameter("token_uid", str, description="Only CDRs of this token uid"),
            OpenApiParameter("session_id", str, description="Only CDRs of this session"),
            OpenApiParameter(
                "reconciliation",
                str,
                enum=Reconciliation.values,
                description="Only partners' CDRs whose reconciliation has this outcome",
            ),
            OpenApiParameter("limit", {"type": "integer", "minimum": 1}, description="Page size (default 50, max 500)"),
            OpenApiParameter("offset", {"type": "integer", "minimum": 0}, description="Index of the first CDR"),
        ],
        responses={
            200: {
                "type": "object",
                "required": ["count", "results"],
                "properties": {
                    "count": {"type": "integer"},
                    "next": {"type": "string", "format": "uri", "nullable": True},
                    "previous": {"type": "string", "format": "uri", "nullable": True},
                    "results": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["pk", "own", "cdr"],
                            "properties": {
                                "pk": {"type": "integer"},
                                "own": {"type": "boolean"},
                                "partner": {"type": "string", "nullable": True},
                                "reconciliation": {
                                    "type": "string",
                                    "nullable": True,
                                    "enum": [*Reconciliation.values, None],
                                    "description": "Partners' CDRs: MATCH, MISMATCH or NOT_CHECKABLE",
                                },
                                "cdr": _CDR,
                            },
                        },
                    },
                },
            },
            **_ERRORS,
        },
    )
    def get(self, request: Request) -> HttpResponse:
        paginator = PlatformPagination()
        page = paginator.paginate_queryset(self._queryset(request), request, view=self) or []
        links = orjson.dumps(
            {"count": paginator.count, "next": paginator.get_next_link(), "previous": paginator.get_previous_link()}
        )
        return json_text_response(links[:-1] + b',"results":[' + b",".join(_item(cdr) for cdr in page) + b"]}")


class CdrView(APIView):
    """/api/cdrs/{cdr_pk}: one CDR as OCPI JSON."""

    @extend_schema(
        operation_id="platform_cdrs_get",
        summary="Get one CDR",
        tags=[TAG],
        parameters=_PK,
        responses={200: _CDR, **_ERRORS, **_NOT_FOUND},
    )
    def get(self, request: Request, cdr_pk: int) -> HttpResponse:
        return json_text_response(get_object_or_404(Cdr, pk=cdr_pk).doc)


class CdrPricingView(APIView):
    """/api/cdrs/{cdr_pk}/pricing: the tariff engine's breakdown of one of our own CDRs."""

    @extend_schema(
        operation_id="platform_cdrs_pricing",
        summary="The pricing breakdown of one of our own CDRs (tariff engine audit)",
        tags=[TAG],
        parameters=_PK,
        responses={
            200: {"type": "object", "additionalProperties": True, "description": "Amounts as exact decimal strings"},
            **_ERRORS,
            404: OpenApiResponse(description="Unknown CDR, or a partner's CDR (not priced here)"),
        },
    )
    def get(self, request: Request, cdr_pk: int) -> HttpResponse:
        cdr = get_object_or_404(Cdr, pk=cdr_pk, partner__isnull=True)
        return json_text_response(orjson.dumps(cdr.pricing or {}))


_RECONCILIATION = {
    "type": "object",
    "required": ["pk", "status", "reason"],
    "properties": {
        "pk": {"type": "integer"},
        "status": {"type": "string", "enum": Reconciliation.values},
        "reason": {"type": "string"},
        "checked_at": {"type": "string", "format": "date-time"},
        "tolerance": {"type": "string", "description": "OCPI_RECONCILE_TOLERANCE, currency units"},
        "currency": {"type": "string"},
        "tariff_id": {"type": "string"},
        "tariff_source": {"type": "string", "description": "embedded in the CDR, or the partner's stored tariff"},
        "time_zone": {"type": "string"},
        "time_zone_source": {"type": "string", "description": "the partner's location, or UTC assumed"},
        "theirs": {"type": "object", "additionalProperties": True, "description": "The CDR's totals"},
        "ours": {"type": "object", "additionalProperties": True, "description": "Our totals (exact decimal strings)"},
        "rows": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": "string"},
                    "vat": {"type": "string", "enum": ["excl_vat", "incl_vat"]},
                    "theirs": {"type": "string", "nullable": True},
                    "ours": {"type": "string", "nullable": True},
                    "difference": {"type": "string", "nullable": True},
                    "ok": {"type": "boolean", "nullable": True},
                },
            },
        },
        "notes": {"type": "array", "items": {"type": "string"}},
    },
    "additionalProperties": True,
}
_NOT_RECONCILED = {404: OpenApiResponse(description="Unknown CDR, or one of our own (priced here, not reconciled)")}


class CdrReconciliationView(APIView):
    """/api/cdrs/{cdr_pk}/reconciliation: a partner's CDR compared with our recomputation of its cost (GET), and
    computed again, e.g. after its tariff or location arrived (POST)."""

    @staticmethod
    def _answer(cdr: Cdr) -> HttpResponse:
        if not cdr.reconciliation_status:
            cdr_reconcile(cdr=cdr)  # received before reconciliation existed: computed on first read
        return json_text_response(orjson.dumps({"pk": cdr.pk, **(cdr.reconciliation or {})}))

    @extend_schema(
        operation_id="platform_cdrs_reconciliation",
        summary="The reconciliation of a partner's CDR (its cost recomputed from its tariff, compared)",
        tags=[TAG],
        parameters=_PK,
        responses={200: _RECONCILIATION, **_ERRORS, **_NOT_RECONCILED},
    )
    def get(self, request: Request, cdr_pk: int) -> HttpResponse:
        return self._answer(get_object_or_404(Cdr, pk=cdr_pk, partner__isnull=False))

    @extend_schema(
        operation_id="platform_cdrs_reconcile",
        summary="Recompute the reconciliation of a partner's CDR",
        tags=[TAG],
        parameters=_PK,
        request=None,
        responses={200: _RECONCILIATION, **_ERRORS, **_NOT_RECONCILED},
    )
    def post(self, request: Request, cdr_pk: int) -> HttpResponse:
        cdr = get_object_or_404(Cdr, pk=cdr_pk, partner__isnull=False)
        cdr_reconcile(cdr=cdr)
        return self._answer(cdr)


class CdrCreditView(APIView):
    """/api/cdrs/{cdr_pk}/credit: issue the credit CDR of one of our own CDRs."""

    @extend_schema(
        operation_id="platform_cdrs_credit",
        summary="Issue the credit CDR of one of our own CDRs (negated amounts; sent to the eMSP)",
        tags=[TAG],
        parameters=_PK,
        request=None,
        responses={
            201: _CDR,
            400: OpenApiResponse(description="A partner's CDR, a credit CDR, or a CDR already credited"),
            **_ERRORS,
            **_NOT_FOUND,
        },
    )
    def post(self, request: Request, cdr_pk: int) -> HttpResponse:
        credit = cdr_credit(cdr=get_object_or_404(Cdr, pk=cdr_pk))
        url = reverse("platform-cdr", kwargs={"cdr_pk": credit.pk})
        return json_text_response(credit.doc, status.HTTP_201_CREATED, headers={"Location": url})
