"""Back-office for HubClientInfo: what hubs report about their parties, read-only (the hub owns these objects)."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.safestring import SafeString

from hubclientinfo.models import ClientInfo, ConnectionStatus
from ocpi_core.admin import _BLUE, _GREEN, _GREY, _ORANGE, _RED, PartnerAdmin, PartnerReadOnlyInline, badge

_STATUS_COLOURS: dict[str, str] = {
    ConnectionStatus.CONNECTED: _GREEN,
    ConnectionStatus.OFFLINE: _ORANGE,
    ConnectionStatus.PLANNED: _BLUE,
    ConnectionStatus.SUSPENDED: _RED,
}
_STATUS_TITLES: dict[str, str] = {
    ConnectionStatus.CONNECTED: "Reachable: pushes go out",
    ConnectionStatus.OFFLINE: "Temporarily unreachable: pushes addressed to it are held until it is CONNECTED",
    ConnectionStatus.PLANNED: "Not connected yet: pushes addressed to it are held until it is CONNECTED",
    ConnectionStatus.SUSPENDED: "Gone: pushes addressed to it are held; settle open business outside OCPI",
}


def status_badge(obj: ClientInfo) -> SafeString:
    return badge(obj.status, _STATUS_COLOURS.get(obj.status, _GREY), _STATUS_TITLES.get(obj.status, ""))


@admin.register(ClientInfo)
class ClientInfoAdmin(admin.ModelAdmin):
    """Every ClientInfo a hub sent us. Read-only: only the hub changes them (PUT)."""

    list_display = ("party", "role", "connection_status", "partner", "last_updated", "updated_at")
    list_filter = ("status", "role", "partner")
    search_fields = ("country_code", "party_id", "partner__name")
    list_select_related = ("partner",)
    ordering = ("country_code", "party_id", "role")
    readonly_fields = ("partner", "country_code", "party_id", "role", "connection_status", "last_updated", "updated_at")
    fields = readonly_fields

    @admin.display(description="party", ordering="party_id")
    def party(self, obj: ClientInfo) -> str:
        return f"{obj.country_code}*{obj.party_id}"

    @admin.display(description="status", ordering="status")
    def connection_status(self, obj: ClientInfo) -> SafeString:
        return status_badge(obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ClientInfoInline(PartnerReadOnlyInline):
    """On a hub's partner page: the connection status of every party behind it."""

    model = ClientInfo
    fields = ("country_code", "party_id", "role", "connection_status", "last_updated")
    readonly_fields = fields
    verbose_name_plural = "parties behind this hub (hub client info)"

    @admin.display(description="status")
    def connection_status(self, obj: ClientInfo) -> SafeString:
        return status_badge(obj)

    def get_queryset(self, request: HttpRequest) -> Any:
        return super().get_queryset(request).order_by("country_code", "party_id", "role")


# The partner page is ocpi_core's; its parties' statuses are this app's, so the inline is added from here.
if ClientInfoInline not in PartnerAdmin.inlines:
    PartnerAdmin.inlines = (*PartnerAdmin.inlines, ClientInfoInline)  # type: ignore[assignment]
