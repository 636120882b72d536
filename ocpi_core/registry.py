"""Which OCPI interfaces this deployment serves: collected from the module apps, so version details never list an
interface that is not mounted (issue #2)."""

from dataclasses import dataclass
from functools import cache
from importlib import import_module
from importlib.util import find_spec

from django.apps import apps
from django.conf import settings
from django.urls import URLPattern, URLResolver, reverse

from ocpi_core.constants import OCPI_VERSION


@dataclass(frozen=True, slots=True)
class Interface:
    """One (module, role) endpoint: `url_name` is reversed under the `ocpi` namespace."""

    identifier: str
    role: str
    url_name: str


@cache
def interfaces() -> tuple[Interface, ...]:
    """Every interface the installed apps declare in `AppConfig.ocpi_interfaces`."""
    found: list[Interface] = []
    for config in apps.get_app_configs():
        for identifier, role, url_name in getattr(config, "ocpi_interfaces", ()):
            found.append(Interface(identifier, role, url_name))
    return tuple(found)


def module_url_patterns() -> list[URLPattern | URLResolver]:
    """URL patterns of the module apps (`<app>.api.urls.urlpatterns`), mounted under /ocpi/2.2.1/."""
    patterns: list[URLPattern | URLResolver] = []
    for config in apps.get_app_configs():
        if config.name == "ocpi_core" or not getattr(config, "ocpi_interfaces", ()):
            continue
        module_name = f"{config.name}.api.urls"
        if find_spec(module_name) is not None:
            patterns.extend(import_module(module_name).urlpatterns)
    return patterns


def absolute_url(path: str) -> str:
    """A path on this platform as partners must call it (scheme and host from OCPI_BASE_URL)."""
    return settings.OCPI_BASE_URL + path


def versions_url() -> str:
    return absolute_url(reverse("ocpi:versions"))


def version_details_url() -> str:
    return absolute_url(reverse("ocpi:version-details"))


def version_list() -> list[dict[str, str]]:
    """`data` of GET versions."""
    return [{"version": OCPI_VERSION, "url": version_details_url()}]


def version_details() -> dict[str, object]:
    """`data` of GET version details: one endpoint per mounted (module, role)."""
    return {
        "version": OCPI_VERSION,
        "endpoints": [
            {"identifier": i.identifier, "role": i.role, "url": absolute_url(reverse(i.url_name))} for i in interfaces()
        ],
    }
