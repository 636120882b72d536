"""Top-level URLs (DESIGN.md, URLs)."""

from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from ocpi_core.api.platform import (
    PlatformRootView,
    PlatformTokenObtainView,
    PlatformTokenRefreshView,
    platform_not_found,
)
from ocpi_core.api.views import ocpi_not_found
from ocpi_core.health import healthz, readyz
from ocpi_core.metrics import metrics_view

urlpatterns = [
    path("ocpi/", include(("ocpi_core.api.urls", "ocpi"))),
    path("", include("dashboard.urls")),  # /admin/dashboard/ and /api/dashboard/ (before the admin)
    path("admin/", admin.site.urls),
    path("api/", PlatformRootView.as_view(), name="platform-root"),
    path("api/locations/", include("locations.api.platform_urls")),
    path("api/tariffs/", include("tariffs.api.platform_urls")),
    path("api/tokens/", include("tokens.api.platform_urls")),
    path("api/cdrs/", include("cdrs.api.platform_urls")),
    path("api/commands/", include("commands.api.platform_urls")),
    path("api/chargingprofiles/", include("chargingprofiles.api.platform_urls")),
    path("api/sessions/", include("sessions_app.api.platform_urls")),
    path("api/token/", PlatformTokenObtainView.as_view(), name="jwt-obtain"),
    path("api/token/refresh/", PlatformTokenRefreshView.as_view(), name="jwt-refresh"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("ocpi", ocpi_not_found),
    re_path(r"^api/", platform_not_found),  # last: any other URL under /api/ is a JSON 404, never an HTML page
]

handler500 = "ocpi_core.api.platform.server_error"
