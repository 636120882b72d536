"""`manage.py ocpi_rotate --partner NAME`: credentials update (PUT) from our side; both tokens are replaced."""

from typing import Any

from ocpi_core.management.base import JsonCommand, partner_summary
from ocpi_core.services import partner_rotate


class Command(JsonCommand):
    help = "Rotate the credentials tokens with a registered partner and re-read its endpoints."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--partner", required=True, help="Partner name")

    def run(self, **options: Any) -> dict[str, Any]:
        partner = partner_rotate(partner=self.partner_by_name(options["partner"]))
        return {"ok": True, "partner": partner_summary(partner)}
