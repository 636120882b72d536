"""URLs under /ocpi/: versions, version details, credentials, the module apps, and a catch-all 404 envelope."""

from django.urls import include, re_path

from ocpi_core.api.views import CredentialsView, VersionDetailsView, VersionsView, ocpi_not_found
from ocpi_core.registry import module_url_patterns

# Endpoint URLs are published without a trailing slash; both forms are served (REFERENCE §2.9).
urlpatterns = [
    re_path(r"^versions/?$", VersionsView.as_view(), name="versions"),
    re_path(r"^2\.2\.1/?$", VersionDetailsView.as_view(), name="version-details"),
    re_path(r"^2\.2\.1/credentials/?$", CredentialsView.as_view(), name="credentials"),
    re_path(r"^2\.2\.1/", include(module_url_patterns())),
    re_path(r"^.*$", ocpi_not_found),
]
