"""HubClientInfo URLs, mounted under /ocpi/2.2.1/ (see ocpi_core.registry): one Receiver endpoint for all our roles."""

from django.urls import re_path

from hubclientinfo.api.views import ClientInfoReceiverView
from ocpi_core.api.views import ocpi_not_found

urlpatterns = [
    re_path(r"^hubclientinfo/?$", ocpi_not_found, name="hubclientinfo"),
    re_path(r"^hubclientinfo/(?P<country_code>[^/]+)/(?P<party_id>[^/]+)/?$", ClientInfoReceiverView.as_view()),
]
