"""Platform API URLs for our own tariffs, mounted at /api/tariffs/ (config/urls.py).

Object paths are served with and without a trailing slash, like the OCPI endpoints.
"""

from django.urls import re_path

from tariffs.api.platform import TariffListView, TariffPriceView, TariffView

urlpatterns = [
    re_path(r"^$", TariffListView.as_view(), name="platform-tariffs"),
    re_path(
        r"^(?P<country_code>[^/]+)/(?P<party_id>[^/]+)/(?P<tariff_id>[^/]+)/price/?$",
        TariffPriceView.as_view(),
        name="platform-tariff-price",
    ),
    re_path(
        r"^(?P<country_code>[^/]+)/(?P<party_id>[^/]+)/(?P<tariff_id>[^/]+)/?$",
        TariffView.as_view(),
        name="platform-tariff",
    ),
]
