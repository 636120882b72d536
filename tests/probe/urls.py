"""A test-only URLconf: config.urls plus probe endpoints under /ocpi/2.2.1/, mounted before the /ocpi/ catch-all.

Tests opt in with `@pytest.mark.urls("tests.probe.urls")`. The probes stand in for functional modules that do not
exist yet, so the protocol core (auth on functional modules, routing headers, pagination, the 500 envelope) can be
proven through real HTTP.
"""

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import re_path
from rest_framework.request import Request

from config.urls import urlpatterns as config_urlpatterns
from ocpi_core.api.base import OcpiAPIView
from ocpi_core.envelope import OcpiResponse
from ocpi_core.models import Party
from ocpi_core.pagination import paginate

PROBE_COUNTRY = "ZZ"  # the probe lists only the Party rows tests create under this country code
PROBE_ERROR_MESSAGE = "probe-secret-detail: this text must never reach a partner"


def probe_object(party: Party) -> dict[str, Any]:
    """How the probe renders one listed Party."""
    return {"pk": party.pk, "party_id": party.party_id, "last_updated": party.updated_at}


class ProbeSenderView(OcpiAPIView):
    """A functional Sender list (module `locations`): Party rows paginated on `updated_at`."""

    ocpi_module = "locations"

    def get(self, request: Request) -> OcpiResponse:
        page = paginate(
            Party.objects.filter(country_code=PROBE_COUNTRY),
            request.query_params,
            request.path,
            date_field="updated_at",
        )
        return OcpiResponse([probe_object(party) for party in page.objects], headers=page.headers)

    def post(self, request: Request) -> OcpiResponse:
        return OcpiResponse(request.data)


class ProbeErrorView(OcpiAPIView):
    """A functional endpoint whose view fails unexpectedly."""

    ocpi_module = "locations"

    def get(self, request: Request) -> OcpiResponse:
        raise RuntimeError(PROBE_ERROR_MESSAGE)


def probe_plain_error(request: HttpRequest) -> HttpResponse:
    """A plain Django view under /ocpi/ that fails outside DRF (the middleware must still answer an envelope)."""
    raise RuntimeError(PROBE_ERROR_MESSAGE)


urlpatterns = [
    re_path(r"^ocpi/2\.2\.1/probe/?$", ProbeSenderView.as_view(), name="probe"),
    re_path(r"^ocpi/2\.2\.1/probe-error/?$", ProbeErrorView.as_view(), name="probe-error"),
    re_path(r"^ocpi/2\.2\.1/probe-plain-error/?$", probe_plain_error, name="probe-plain-error"),
    *config_urlpatterns,
]
