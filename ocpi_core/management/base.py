"""Base for the `ocpi_*` management commands: one JSON document on stdout, errors as JSON with exit code 1."""

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from ocpi_core.client import PartnerCallError
from ocpi_core.exceptions import OcpiError
from ocpi_core.models import Partner


class JsonCommand(BaseCommand):
    """Subclasses implement `run(**options)` returning what to print."""

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = self.run(**options)
        except (OcpiError, PartnerCallError) as exc:
            self.stdout.write(json.dumps({"ok": False, "error": exc.message}, indent=2))
            raise CommandError(exc.message) from exc
        self.stdout.write(json.dumps(result, indent=2, default=str))

    def run(self, **options: Any) -> Any:
        raise NotImplementedError

    @staticmethod
    def partner_by_name(name: str) -> Partner:
        partner = Partner.objects.filter(name=name).first()
        if partner is None:
            raise CommandError(f"No partner named {name!r}")
        return partner


def partner_summary(partner: Partner) -> dict[str, Any]:
    """A partner as the commands print it (never a token)."""
    return {
        "name": partner.name,
        "status": partner.status,
        "version": partner.version,
        "versions_url": partner.versions_url,
        "roles": [str(party) for party in partner.parties.all()],
        "endpoints": [{"identifier": e.identifier, "role": e.role, "url": e.url} for e in partner.endpoints.all()],
        "token_encoding": partner.token_encoding,
        "last_contact_at": partner.last_contact_at,
        "registered_at": partner.registered_at,
        "last_error": partner.last_error,
    }
