"""Platform API URLs for charging profiles, mounted at /api/chargingprofiles/ (config/urls.py)."""

from django.urls import re_path

from chargingprofiles.api.platform import ChargingProfileListView, ChargingProfileView

urlpatterns = [
    re_path(r"^$", ChargingProfileListView.as_view(), name="platform-chargingprofiles"),
    re_path(r"^(?P<pk>\d+)/?$", ChargingProfileView.as_view(), name="platform-chargingprofile"),
]
