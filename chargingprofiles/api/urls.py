"""ChargingProfiles URLs, mounted under /ocpi/2.2.1/ (see ocpi_core.registry)."""

from django.urls import re_path

from chargingprofiles.api.views import ActiveProfileView, ChargingProfileReceiverView, ChargingProfileResultView
from ocpi_core.api.views import ocpi_not_found

urlpatterns = [
    re_path(r"^cpo/chargingprofiles/?$", ocpi_not_found, name="cpo-chargingprofiles"),
    re_path(r"^cpo/chargingprofiles/(?P<session_id>[^/]+)/?$", ChargingProfileReceiverView.as_view()),
    re_path(r"^emsp/chargingprofiles/?$", ocpi_not_found, name="emsp-chargingprofiles"),
    re_path(
        # any kind and token reach the view: an unknown one is a 404 envelope, other methods a 405 envelope
        r"^emsp/chargingprofiles/(?P<kind>[^/]+)/(?P<token>[^/]+)/?$",
        ChargingProfileResultView.as_view(),
        name="emsp-chargingprofiles-result",
    ),
    re_path(r"^emsp/chargingprofiles/(?P<session_id>[^/]+)/?$", ActiveProfileView.as_view()),
]
