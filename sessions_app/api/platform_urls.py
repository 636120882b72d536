"""Platform API URLs for sessions, mounted at /api/sessions/ (config/urls.py)."""

from django.urls import re_path

from sessions_app.api.platform import SessionChargingPreferencesView, SessionListView, SessionStopView, SessionView

_KEY = r"(?P<country_code>[^/]+)/(?P<party_id>[^/]+)/(?P<session_id>[^/]+)"

urlpatterns = [
    re_path(r"^$", SessionListView.as_view(), name="platform-sessions"),
    re_path(rf"^{_KEY}/?$", SessionView.as_view(), name="platform-session"),
    re_path(rf"^{_KEY}/stop/?$", SessionStopView.as_view(), name="platform-session-stop"),
    re_path(
        rf"^{_KEY}/charging_preferences/?$",
        SessionChargingPreferencesView.as_view(),
        name="platform-session-charging-preferences",
    ),
]
