"""Scoped reads of the protocol core's models."""

from django.db.models import QuerySet

from ocpi_core.constants import Role
from ocpi_core.exceptions import NotFound
from ocpi_core.models import Partner, Party
from ocpi_core.routing import Routing


def own_parties_for_request(*, routing: Routing, role: str | None) -> QuerySet[Party]:
    """The own parties of `role` (None: of any role) a request is addressed to (REFERENCE §2.10).

    With `OCPI-to-*` headers: exactly that party, which must be ours and have that role (404 otherwise: the request
    was routed to the wrong platform). Without them (a direct link, or a GET of all): every own party of the role.
    """
    parties = Party.objects.filter(partner__isnull=True)
    if role is not None:
        parties = parties.filter(role=role)
    if routing.has_to:
        parties = parties.filter(country_code__iexact=routing.to_country_code, party_id__iexact=routing.to_party_id)
        if not parties.exists():
            kind = f"{role} party" if role is not None else "party"
            raise NotFound(f"{routing.to_country_code}*{routing.to_party_id} is not a {kind} on this platform")
    return parties


def partner_owns_party(*, partner: Partner, country_code: str, party_id: str, role: str | None = None) -> bool:
    """Did the partner announce this (country_code, party_id) in its credentials roles? (CiString comparison)."""
    parties = partner.parties.filter(country_code__iexact=country_code, party_id__iexact=party_id)
    if role is not None:
        parties = parties.filter(role=role)
    return parties.exists()


def hub_relayed_party(*, partner: Partner, routing: Routing) -> tuple[str, str] | None:
    """The party a hub partner asks for (REFERENCE §2.10, via a hub: `OCPI-from-*` is the requesting party, not the
    hub), upper-cased; None when the request names no party or one of the hub's own (the hub asking for itself: it
    sees everything it relays). Only meaningful for a partner with a HUB role."""
    if not routing.has_from:
        return None
    asking = (routing.from_country_code.upper(), routing.from_party_id.upper())
    own = {(cc.upper(), pid.upper()) for cc, pid in partner.parties.values_list("country_code", "party_id")}
    return None if asking in own else asking


def partner_assert_owns(*, partner: Partner | None, country_code: str, party_id: str) -> None:
    """A partner writes only under its own parties (404 otherwise, REFERENCE §6.3, §9.2); a hub relays for others.

    `partner=None` is our own platform writing its own objects: always allowed.
    """
    if partner is None:
        return
    if partner.parties.filter(role=Role.HUB).exists():
        return
    if not partner_owns_party(partner=partner, country_code=country_code, party_id=party_id):
        raise NotFound(f"{country_code}/{party_id} is not a party of this partner")
