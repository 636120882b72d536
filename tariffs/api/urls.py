"""Tariffs URLs, mounted under /ocpi/2.2.1/ (see ocpi_core.registry)."""

from django.urls import re_path

from ocpi_core.api.views import ocpi_not_found
from tariffs.api.views import TariffReceiverView, TariffSenderListView

_ID = r"[^/]+"  # CiString(36): longer ids reach the view and are answered there (404 or 2001)

urlpatterns = [
    re_path(r"^cpo/tariffs/?$", TariffSenderListView.as_view(), name="cpo-tariffs"),
    re_path(r"^emsp/tariffs/?$", ocpi_not_found, name="emsp-tariffs"),
    re_path(
        rf"^emsp/tariffs/(?P<country_code>[^/]+)/(?P<party_id>[^/]+)/(?P<tariff_id>{_ID})/?$",
        TariffReceiverView.as_view(),
    ),
]
