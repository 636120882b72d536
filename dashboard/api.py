"""Platform API of the dashboard (/api/dashboard/): the page's figures as JSON, and the energy CSV. JWT-authenticated
staff users (REST_FRAMEWORK defaults); an unusable parameter is a 400 `{"detail": ...}`."""

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from dashboard.services import Filters, InvalidFilter, dashboard_figures, filters_parse
from dashboard.views import csv_response

TAG = "Platform API: dashboard"
PARAMETERS = [
    OpenApiParameter("from", OpenApiTypes.DATE, description="First day (UTC), default: 29 days before `to`"),
    OpenApiParameter("to", OpenApiTypes.DATE, description="Last day (UTC, inclusive), default: today"),
    OpenApiParameter("location", str, description="Only this location id"),
    OpenApiParameter("partner", int, description="Only this partner (its sessions as CPO, its tokens' sessions)"),
]
ERRORS = {
    400: OpenApiResponse(description='An unusable parameter: `{"detail": ...}`'),
    401: OpenApiResponse(description="No or an invalid JWT"),
    403: OpenApiResponse(description="Not a staff user"),
}


def _filters(request: Request) -> Filters:
    try:
        return filters_parse(request.query_params)
    except InvalidFilter as exc:
        raise ValidationError({"detail": str(exc)}) from exc


class DashboardView(APIView):
    """Energy per day (total, by own location, by partner), sessions per day with average energy and duration, EVSE
    availability per day, renewable share and CO2 of the delivered energy, push and sync health."""

    @extend_schema(
        operation_id="dashboard",
        summary="The dashboard's figures: energy, sessions, availability, renewable share, push and sync health",
        tags=[TAG],
        parameters=PARAMETERS,
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT, description="The dashboard's figures"), **ERRORS},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response(dashboard_figures(_filters(request)))


class DashboardEnergyCsvView(APIView):
    """Energy per day as CSV: a `total` row per day, then each own location's and each partner's kWh per day."""

    @extend_schema(
        operation_id="dashboard_energy_csv",
        summary="Energy and sessions per day as CSV",
        tags=[TAG],
        parameters=PARAMETERS,
        responses={(200, "text/csv"): OpenApiResponse(OpenApiTypes.STR, description="CSV"), **ERRORS},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Any:
        return csv_response(dashboard_figures(_filters(request)))
