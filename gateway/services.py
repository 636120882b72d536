"""Which gateway serves a location, and the writers of the gateway settings (STYLE.md §4)."""

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.utils.module_loading import import_string

from gateway.base import Gateway
from gateway.models import Backend, LocationGateway, SimulatedEvse
from locations.models import Evse, Location

# Implementations by name; an OCPP central system is added here (and to Backend) without touching Commands.
BACKENDS: dict[str, str] = {
    Backend.SIMULATOR: "gateway.simulator.SimulatorGateway",
    Backend.WEBHOOK: "gateway.webhook.WebhookGateway",
}


def gateway_backend(name: str, *, webhook_url: str = "") -> Gateway:
    """An instance of the named implementation (ImproperlyConfigured for an unknown name)."""
    path = BACKENDS.get(name)
    if path is None:
        raise ImproperlyConfigured(f"Unknown gateway backend {name!r} (choose one of {', '.join(BACKENDS)})")
    cls = import_string(path)
    return cls(webhook_url=webhook_url) if name == Backend.WEBHOOK else cls()


def _own_location(location_id: str, country_code: str | None, party_id: str | None) -> Location | None:
    queryset = Location.objects.filter(partner__isnull=True, ocpi_id__iexact=location_id)
    if country_code and party_id:
        queryset = queryset.filter(country_code__iexact=country_code, party_id__iexact=party_id)
    return queryset.first()


def gateway_name_for(*, location_id: str, country_code: str | None = None, party_id: str | None = None) -> str:
    """The backend name serving a location: its LocationGateway row, else GATEWAY_DEFAULT_BACKEND."""
    location = _own_location(location_id, country_code, party_id)
    setting = LocationGateway.objects.filter(location=location).first() if location is not None else None
    return setting.backend if setting is not None else settings.GATEWAY_DEFAULT_BACKEND


def gateway_for(*, location_id: str, country_code: str | None = None, party_id: str | None = None) -> Gateway:
    """The gateway serving one of our own locations (see gateway.base.gateway_for)."""
    location = _own_location(location_id, country_code, party_id)
    setting = LocationGateway.objects.filter(location=location).first() if location is not None else None
    if setting is None:
        return gateway_backend(settings.GATEWAY_DEFAULT_BACKEND)
    return gateway_backend(setting.backend, webhook_url=setting.webhook_url)


def location_gateway_set(*, location: Location, backend: str, webhook_url: str = "") -> LocationGateway:
    """Choose the gateway of one of our own locations."""
    setting, _ = LocationGateway.objects.get_or_create(location=location, defaults={"backend": backend})
    setting.backend, setting.webhook_url = backend, webhook_url
    setting.full_clean()
    setting.save()
    return setting


def simulated_evse_set(*, evse: Evse, behaviour: str, power_kw: float | None = None) -> SimulatedEvse:
    """Configure how a simulated EVSE answers commands (accept, reject, fail, no answer) and the power it draws."""
    row, _ = SimulatedEvse.objects.get_or_create(evse=evse)
    row.behaviour = behaviour
    row.power_kw = power_kw  # type: ignore[assignment]
    row.full_clean()
    row.save()
    return row
