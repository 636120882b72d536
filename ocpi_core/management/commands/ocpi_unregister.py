"""`manage.py ocpi_unregister --partner NAME`: credentials DELETE from our side, then stop all traffic."""

from typing import Any

from ocpi_core.management.base import JsonCommand, partner_summary
from ocpi_core.services import partner_unregister


class Command(JsonCommand):
    help = "Unregister a partner (DELETE on its credentials endpoint); its tokens stop working here at once."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--partner", required=True, help="Partner name")

    def run(self, **options: Any) -> dict[str, Any]:
        partner = self.partner_by_name(options["partner"])
        remote_error = partner_unregister(partner=partner)
        return {"ok": True, "remote_error": remote_error, "partner": partner_summary(partner)}
