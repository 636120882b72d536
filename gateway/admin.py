"""Back-office for the charge point gateway: which backend serves each of our locations, how simulated EVSEs answer
commands, and the sessions the simulator is running."""

from django.contrib import admin
from django.http import HttpRequest

from gateway.models import LocationGateway, SimulatedEvse, SimulatedSession


@admin.register(LocationGateway)
class LocationGatewayAdmin(admin.ModelAdmin):
    """Per-location override of GATEWAY_DEFAULT_BACKEND."""

    list_display = ("location", "backend", "webhook_url", "updated_at")
    list_filter = ("backend",)
    search_fields = ("location__ocpi_id", "location__name", "webhook_url")
    list_select_related = ("location",)
    raw_id_fields = ("location",)


@admin.register(SimulatedEvse)
class SimulatedEvseAdmin(admin.ModelAdmin):
    """How each simulated EVSE answers commands (accept, reject, fail, no answer) and the power it draws."""

    list_display = ("evse", "location", "behaviour", "power_kw")
    list_editable = ("behaviour", "power_kw")
    list_filter = ("behaviour",)
    search_fields = ("evse__uid", "evse__evse_id", "evse__location__ocpi_id")
    list_select_related = ("evse__location",)
    raw_id_fields = ("evse",)

    @admin.display(description="location", ordering="evse__location__ocpi_id")
    def location(self, obj: SimulatedEvse) -> str:
        return obj.evse.location.ocpi_id


@admin.register(SimulatedSession)
class SimulatedSessionAdmin(admin.ModelAdmin):
    """Sessions and reservations on simulated chargers (read-only: commands drive them)."""

    list_display = ("session_id", "kind", "location_id", "evse_uid", "power_kw", "kwh", "active", "last_tick_at")
    list_filter = ("active", "kind")
    search_fields = ("session_id", "location_id", "evse_uid")
    readonly_fields = [f.name for f in SimulatedSession._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
