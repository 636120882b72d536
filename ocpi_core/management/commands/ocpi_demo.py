"""`manage.py ocpi_demo`: our own demo parties (a CPO and an eMSP); module apps add their demo data here later."""

from typing import Any

from django.conf import settings

from ocpi_core.constants import Role
from ocpi_core.management.base import JsonCommand
from ocpi_core.services import own_party_ensure

DEMO_PARTIES = (
    ("NL", "DMC", Role.CPO, "Demo Charging (CPO)", "https://example.com/cpo"),
    ("NL", "DME", Role.EMSP, "Demo Mobility (eMSP)", "https://example.com/emsp"),
)


class Command(JsonCommand):
    help = "Load demo data: our own CPO and eMSP parties. Idempotent."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--country-code", default=None, help="Country code of the demo parties (default NL)")
        parser.add_argument("--party-prefix", default=None, help="Two letters prefixed to C/E for the party ids")

    def run(self, **options: Any) -> dict[str, Any]:
        parties = []
        for country_code, party_id, role, name, website in DEMO_PARTIES:
            cc = (options["country_code"] or country_code).upper()
            pid = (options["party_prefix"] + party_id[-1]) if options["party_prefix"] else party_id
            party = own_party_ensure(country_code=cc, party_id=pid.upper(), role=role, name=name, website=website)
            parties.append(str(party))
        return {"ok": True, "own_parties": parties, "base_url": settings.OCPI_BASE_URL}
