"""Platform API URLs for our own tokens, mounted at /api/tokens/ (config/urls.py)."""

from django.urls import re_path

from tokens.api.platform import TokenActionView, TokenListView, TokenView

_KEY = r"(?P<country_code>[^/]+)/(?P<party_id>[^/]+)/(?P<uid>[^/]+)"

urlpatterns = [
    re_path(r"^$", TokenListView.as_view(), name="platform-tokens"),
    re_path(rf"^{_KEY}/?$", TokenView.as_view(), name="platform-token"),
    re_path(rf"^{_KEY}/(?P<action>block|unblock|expire)/?$", TokenActionView.as_view(), name="platform-token-action"),
]
