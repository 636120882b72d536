"""`manage.py ocpi_invite --name NAME`: invite a partner; prints our versions URL and a fresh token A."""

from typing import Any

from ocpi_core.management.base import JsonCommand
from ocpi_core.registry import versions_url
from ocpi_core.services import partner_invite


class Command(JsonCommand):
    help = "Invite a partner: prints the versions URL and the token A to hand over out of band (shown once)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--name", required=True, help="Partner name (unique)")

    def run(self, **options: Any) -> dict[str, Any]:
        partner, token = partner_invite(name=options["name"])
        return {"ok": True, "partner": partner.name, "versions_url": versions_url(), "token": token}
