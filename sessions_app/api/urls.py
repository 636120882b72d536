"""Sessions URLs, mounted under /ocpi/2.2.1/ (see ocpi_core.registry)."""

from django.urls import re_path

from ocpi_core.api.views import ocpi_not_found
from sessions_app.api.views import SessionChargingPreferencesView, SessionReceiverView, SessionSenderListView

_ID = r"[^/]+"  # CiString(36): longer ids reach the view and are answered there (404 or 2001)

urlpatterns = [
    re_path(r"^cpo/sessions/?$", SessionSenderListView.as_view(), name="cpo-sessions"),
    re_path(rf"^cpo/sessions/(?P<session_id>{_ID})/charging_preferences/?$", SessionChargingPreferencesView.as_view()),
    re_path(r"^emsp/sessions/?$", ocpi_not_found, name="emsp-sessions"),
    re_path(
        rf"^emsp/sessions/(?P<country_code>[^/]+)/(?P<party_id>[^/]+)/(?P<session_id>{_ID})/?$",
        SessionReceiverView.as_view(),
    ),
]
