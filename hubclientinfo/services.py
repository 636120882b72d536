"""HubClientInfo services: the only writers of ClientInfo (STYLE.md §4), and the push hold check.

Receiver interface (REFERENCE §13.1): the hub (the data owner) PUTs ClientInfo objects and may GET them back to
verify its copy. Only a partner that announced a HUB role may do either (others: 403). The body's country_code and
party_id must be those of the URL (2001); an older `last_updated` never overwrites newer data; a rejected request
changes nothing.

Behaviour (REFERENCE §13.3): nothing is sent to a party the hub reports OFFLINE, PLANNED or SUSPENDED. Deliveries
addressed to such a party are held (ocpi_core.push hold check) and released when the hub reports it CONNECTED again.
"""

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Q

from hubclientinfo.models import UNREACHABLE, ClientInfo, ConnectionStatus
from ocpi_core.constants import Role
from ocpi_core.db import retry_on_conflict
from ocpi_core.envelope import parse_datetime
from ocpi_core.exceptions import InvalidParameters, NotFound, OcpiError
from ocpi_core.models import Delivery, Partner
from ocpi_core.push import outbox_release
from ocpi_core.routing import Routing
from ocpi_core.validation import validate


class NotAHub(OcpiError):
    """The caller is not a hub: ClientInfo is owned and sent by hubs only (REFERENCE §13)."""

    http_status = 403
    default_message = "Only a hub sends ClientInfo (the calling partner announced no HUB role)"


@dataclass(frozen=True)
class PutResult:
    """What a PUT did: `created` (answer 201) or `ignored` (older than what we hold: acknowledged, not applied)."""

    client_info: ClientInfo
    created: bool = False
    ignored: bool = False


def partner_is_hub(partner: Partner) -> bool:
    """Did the partner announce a HUB role in its credentials?"""
    return partner.parties.filter(role=Role.HUB).exists()


def _assert_hub(partner: Partner) -> None:
    if not partner_is_hub(partner):
        raise NotAHub()


def _check_url_key(country_code: str, party_id: str) -> None:
    errors = []
    if not (len(country_code) == 2 and country_code.isascii() and country_code.isalpha()):
        errors.append("country_code (URL): must be a 2-letter country code")
    if not (len(party_id) == 3 and party_id.isascii() and party_id.isalnum()):
        errors.append("party_id (URL): must be 3 letters or digits")
    if errors:
        raise InvalidParameters("; ".join(errors))


def _of_party(country_code: str, party_id: str) -> Q:
    return Q(country_code__lower=country_code.lower(), party_id__lower=party_id.lower())


def clientinfo_render(client_info: ClientInfo) -> dict[str, Any]:
    """The ClientInfo object as OCPI JSON (REFERENCE §13.4), fields in spec order."""
    return {
        "party_id": client_info.party_id,
        "country_code": client_info.country_code,
        "role": client_info.role,
        "status": client_info.status,
        "last_updated": client_info.last_updated,
    }


def clientinfo_get(*, partner: Partner, country_code: str, party_id: str) -> ClientInfo:
    """Receiver GET: the hub's ClientInfo of one party as we hold it (the latest of its roles); 404 when unknown."""
    _assert_hub(partner)
    _check_url_key(country_code, party_id)
    found = (
        ClientInfo.objects.filter(_of_party(country_code, party_id), partner=partner)
        .order_by("-last_updated", "-pk")
        .first()
    )
    if found is None:
        raise NotFound(f"Unknown ClientInfo {country_code}/{party_id}")
    return found


@retry_on_conflict
@transaction.atomic
def clientinfo_put(*, partner: Partner, country_code: str, party_id: str, data: Any) -> PutResult:
    """Receiver PUT: create or replace the hub's ClientInfo of one party (keyed by its role as well).

    A party turning CONNECTED releases the push deliveries held for it (after the commit, with the row).
    """
    _assert_hub(partner)
    _check_url_key(country_code, party_id)
    validate("ClientInfo", data)
    mismatched = [
        f"{name}: {data[name]!r} does not match the URL's {value!r}"
        for name, value in (("country_code", country_code), ("party_id", party_id))
        if str(data[name]).lower() != value.lower()
    ]
    if mismatched:
        raise InvalidParameters("; ".join(mismatched))
    last_updated = parse_datetime(data["last_updated"])
    current = (
        ClientInfo.objects.select_for_update()
        .filter(_of_party(country_code, party_id), partner=partner, role=data["role"])
        .first()
    )
    if current is not None and current.last_updated >= last_updated:
        return PutResult(current, ignored=True)
    was_connected = current is not None and current.status == ConnectionStatus.CONNECTED
    client_info = current or ClientInfo(partner=partner, role=data["role"])
    client_info.country_code = data["country_code"]
    client_info.party_id = data["party_id"]
    client_info.status = data["status"]
    client_info.last_updated = last_updated
    client_info.full_clean(validate_constraints=False)  # the key was looked up under the row lock above
    client_info.save()
    if client_info.status == ConnectionStatus.CONNECTED and not was_connected:
        clientinfo_release(country_code=client_info.country_code, party_id=client_info.party_id)
    return PutResult(client_info, created=current is None)


def clientinfo_release(*, country_code: str, party_id: str) -> int:
    """Send now what was held for this party: held deliveries of every partner that may address it."""
    partners = Partner.objects.filter(
        Q(parties__country_code__iexact=country_code, parties__party_id__iexact=party_id)
        | Q(client_infos__country_code__iexact=country_code, client_infos__party_id__iexact=party_id)
    ).distinct()
    return outbox_release(partners=partners)


def clientinfo_unreachable(*, country_code: str, party_id: str) -> ClientInfo | None:
    """The latest hub report saying this party must not be sent anything (OFFLINE, PLANNED, SUSPENDED), or None.

    Only the most recent report per party counts: one hub saying CONNECTED after another said OFFLINE wins.
    """
    latest = (
        ClientInfo.objects.select_related("partner")
        .filter(_of_party(country_code, party_id))
        .order_by("-last_updated", "-pk")
        .first()
    )
    return latest if latest is not None and latest.status in UNREACHABLE else None


def clientinfo_hold_check(*, delivery: Delivery, routing: Routing, **kwargs: Any) -> str | None:
    """ocpi_core.push hold check: hold a delivery addressed (OCPI-to-*) to a party a hub reports unreachable."""
    if not routing.has_to:
        return None
    report = clientinfo_unreachable(country_code=routing.to_country_code, party_id=routing.to_party_id)
    if report is None:
        return None
    return f"{report.country_code}*{report.party_id} is {report.status} (hub client info from {report.partner})"
