"""The EVSE status history in the back-office: read-only (written by the status hook), linked from each EVSE's page
(`?evse__id__exact=<pk>`)."""

from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from dashboard.models import EvseStatusChange
from locations.admin import evse_status_badge


@admin.register(EvseStatusChange)
class EvseStatusChangeAdmin(admin.ModelAdmin):
    list_display = ("since", "evse_link", "status_badge")
    list_filter = ("status",)
    search_fields = ("evse__uid", "evse__evse_id", "evse__location__ocpi_id")
    date_hierarchy = "since"
    list_select_related = ("evse", "evse__location")
    ordering = ("-since", "-pk")
    show_full_result_count = False
    list_per_page = 100
    fields = ("evse_link", "status_badge", "since")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the availability rollup is kept from the history: never edited by hand

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: EvseStatusChange) -> SafeString:
        return evse_status_badge(obj.status)

    @admin.display(description="EVSE", ordering="evse__uid")
    def evse_link(self, obj: EvseStatusChange) -> SafeString:
        return format_html(
            '<a href="{}">{} ({})</a>',
            reverse("admin:locations_evse_change", args=[obj.evse_id]),
            obj.evse.uid,
            obj.evse.location.ocpi_id,
        )
