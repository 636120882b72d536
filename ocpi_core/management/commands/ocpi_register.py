"""`manage.py ocpi_register --versions-url URL --token TOKEN [--name NAME]`: register with a partner (we initiate)."""

from typing import Any

from ocpi_core.management.base import JsonCommand, partner_summary
from ocpi_core.models import Partner
from ocpi_core.services import partner_register


class Command(JsonCommand):
    help = "Register with a partner from our side, using the versions URL and token A it gave us."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--versions-url", required=True)
        parser.add_argument("--token", required=True, help="The partner's token A (plain, not Base64)")
        parser.add_argument("--name", help="Partner name (default: the host of the versions URL)")
        parser.add_argument(
            "--raw-token", action="store_true", help="Send the token un-encoded (partners on OCPI 2.1.1/2.2)"
        )

    def run(self, **options: Any) -> dict[str, Any]:
        encoding = Partner.TokenEncoding.RAW if options["raw_token"] else Partner.TokenEncoding.BASE64
        partner = partner_register(
            versions_url=options["versions_url"], token=options["token"], name=options["name"], encoding=encoding
        )
        return {"ok": True, "partner": partner_summary(partner)}
