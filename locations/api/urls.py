"""Locations URLs, mounted under /ocpi/2.2.1/ (see ocpi_core.registry)."""

from django.urls import re_path

from locations.api.views import (
    ConnectorReceiverView,
    ConnectorSenderObjectView,
    EvseReceiverView,
    EvseSenderObjectView,
    LocationReceiverView,
    LocationSenderListView,
    LocationSenderObjectView,
)
from ocpi_core.api.views import ocpi_not_found

_ID = r"[^/]+"  # CiString(36): longer ids reach the view and are answered there (404 or 2001)

urlpatterns = [
    re_path(r"^cpo/locations/?$", LocationSenderListView.as_view(), name="cpo-locations"),
    re_path(rf"^cpo/locations/(?P<location_id>{_ID})/?$", LocationSenderObjectView.as_view()),
    re_path(rf"^cpo/locations/(?P<location_id>{_ID})/(?P<evse_uid>{_ID})/?$", EvseSenderObjectView.as_view()),
    re_path(
        rf"^cpo/locations/(?P<location_id>{_ID})/(?P<evse_uid>{_ID})/(?P<connector_id>{_ID})/?$",
        ConnectorSenderObjectView.as_view(),
    ),
    re_path(r"^emsp/locations/?$", ocpi_not_found, name="emsp-locations"),
    re_path(
        rf"^emsp/locations/(?P<country_code>[^/]+)/(?P<party_id>[^/]+)/(?P<location_id>{_ID})/?$",
        LocationReceiverView.as_view(),
    ),
    re_path(
        rf"^emsp/locations/(?P<country_code>[^/]+)/(?P<party_id>[^/]+)/(?P<location_id>{_ID})"
        rf"/(?P<evse_uid>{_ID})/?$",
        EvseReceiverView.as_view(),
    ),
    re_path(
        rf"^emsp/locations/(?P<country_code>[^/]+)/(?P<party_id>[^/]+)/(?P<location_id>{_ID})"
        rf"/(?P<evse_uid>{_ID})/(?P<connector_id>{_ID})/?$",
        ConnectorReceiverView.as_view(),
    ),
]
