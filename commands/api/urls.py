"""Commands URLs, mounted under /ocpi/2.2.1/ (see ocpi_core.registry)."""

from django.urls import re_path

from commands.api.views import CommandReceiverView, CommandResultReceiverView
from ocpi_core.api.views import ocpi_not_found

urlpatterns = [
    re_path(r"^cpo/commands/?$", ocpi_not_found, name="cpo-commands"),
    re_path(r"^cpo/commands/(?P<command>[^/]+)/?$", CommandReceiverView.as_view()),
    re_path(r"^emsp/commands/?$", ocpi_not_found, name="emsp-commands"),
    re_path(
        r"^emsp/commands/(?P<command>[^/]+)/(?P<uid>[^/]+)/?$",
        CommandResultReceiverView.as_view(),
        name="emsp-commands-result",
    ),
]
