"""Platform API URLs for our own locations, mounted at /api/locations/ (config/urls.py).

Object paths are served with and without a trailing slash, like the OCPI endpoints.
"""

from django.urls import re_path

from locations.api.platform import ConnectorView, EvseStatusView, EvseView, LocationListView, LocationView

_LOCATION = r"(?P<country_code>[^/]+)/(?P<party_id>[^/]+)/(?P<location_id>[^/]+)"
_EVSE = _LOCATION + r"/evses/(?P<evse_uid>[^/]+)"

urlpatterns = [
    re_path(r"^$", LocationListView.as_view(), name="platform-locations"),
    re_path(rf"^{_LOCATION}/?$", LocationView.as_view(), name="platform-location"),
    re_path(rf"^{_EVSE}/?$", EvseView.as_view(), name="platform-evse"),
    re_path(rf"^{_EVSE}/status/?$", EvseStatusView.as_view(), name="platform-evse-status"),
    re_path(rf"^{_EVSE}/connectors/(?P<connector_id>[^/]+)/?$", ConnectorView.as_view(), name="platform-connector"),
]
