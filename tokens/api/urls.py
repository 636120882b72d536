"""Tokens URLs, mounted under /ocpi/2.2.1/ (see ocpi_core.registry)."""

from django.urls import re_path

from ocpi_core.api.views import ocpi_not_found
from tokens.api.views import TokenAuthorizeView, TokenReceiverView, TokenSenderListView

_ID = r"[^/]+"  # CiString(36): longer ids reach the view and are answered there (404 or 2001)

urlpatterns = [
    re_path(r"^emsp/tokens/?$", TokenSenderListView.as_view(), name="emsp-tokens"),
    re_path(rf"^emsp/tokens/(?P<token_uid>{_ID})/authorize/?$", TokenAuthorizeView.as_view()),
    re_path(r"^cpo/tokens/?$", ocpi_not_found, name="cpo-tokens"),
    re_path(
        rf"^cpo/tokens/(?P<country_code>[^/]+)/(?P<party_id>[^/]+)/(?P<token_uid>{_ID})/?$",
        TokenReceiverView.as_view(),
    ),
]
