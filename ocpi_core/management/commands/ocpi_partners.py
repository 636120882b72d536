"""`manage.py ocpi_partners`: every partner with its status, roles and endpoints (JSON)."""

from typing import Any

from ocpi_core.management.base import JsonCommand, partner_summary
from ocpi_core.models import Partner


class Command(JsonCommand):
    help = "List partners with their status, roles and endpoints."

    def run(self, **options: Any) -> dict[str, Any]:
        partners = Partner.objects.prefetch_related("parties", "endpoints").order_by("name")
        return {"ok": True, "partners": [partner_summary(p) for p in partners]}
