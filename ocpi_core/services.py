"""Partners and the Credentials handshake, both as receiver and as initiator (REFERENCE §4-5).

Services are the only writers of Partner, PartnerToken, PartnerEndpoint and Party. Every network call to the partner
happens before the database transaction that stores its outcome, so a failed step leaves nothing half-stored.
"""

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ocpi_core.authentication import PartnerAuth
from ocpi_core.client import OcpiClient, PartnerCallError, PartnerRefused, url_check
from ocpi_core.constants import OCPI_VERSION, ModuleID, VersionNumber
from ocpi_core.crypto import token_encrypt, token_generate, token_hash, token_hint
from ocpi_core.exceptions import (
    InvalidParameters,
    MethodNotAllowed,
    NoMatchingEndpoints,
    OcpiError,
    ServerError,
    UnableToUseClientApi,
    UnsupportedVersion,
)
from ocpi_core.models import Partner, PartnerEndpoint, PartnerToken, Party
from ocpi_core.registry import versions_url
from ocpi_core.validation import validate, validation_errors

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PartnerVersion:
    """What a partner's versions + version details told us for the version we use."""

    version: str
    details_url: str
    endpoints: list[dict[str, str]]

    def url(self, identifier: str, role: str | None = None) -> str | None:
        for endpoint in self.endpoints:
            if endpoint["identifier"] == identifier and (role is None or endpoint["role"] == role):
                return endpoint["url"]
        return None


class RegistrationError(OcpiError):
    """The handshake we started with a partner failed; the message says at which step."""

    status_code, http_status = 3000, 502


# --- reading ---------------------------------------------------------------------------------------------------------


def own_parties() -> list[Party]:
    """Our own parties, as announced in Credentials.roles."""
    return list(Party.objects.filter(partner__isnull=True).order_by("country_code", "party_id", "role"))


def our_credentials(*, token: str) -> dict[str, Any]:
    """Our Credentials object, carrying `token` (the token the partner must use towards us)."""
    roles = [party.credentials_role() for party in own_parties()]
    if not roles:
        raise ServerError("No own party is configured (run `manage.py ocpi_demo` or add one in the admin)")
    return {"token": token, "url": versions_url(), "roles": roles}


def credentials_validate(data: Any) -> dict[str, Any]:
    """A Credentials object from a partner: field rules, and each (role, party_id, country_code) once."""
    validate("Credentials", data)
    seen: set[tuple[str, str, str]] = set()
    for index, role in enumerate(data["roles"]):
        key = (role["role"], role["party_id"].upper(), role["country_code"].upper())
        if key in seen:
            raise InvalidParameters(f"roles[{index}]: duplicate role {key[0]} {key[2]}*{key[1]}")
        seen.add(key)
    return data


def partner_version_fetch(
    *, versions_url: str, token: str, encoding: str, partner: Partner | None = None
) -> PartnerVersion:
    """GET the partner's versions and the details of 2.2.1 with `token` (3001 / 3002 / 3003 on failure)."""
    client = OcpiClient(token=token, partner=partner, encoding=encoding)
    try:
        versions = client.get(versions_url).data
    except PartnerCallError as exc:
        raise UnableToUseClientApi(f"Could not GET the versions endpoint: {exc.message}") from exc
    if not isinstance(versions, list) or not versions:
        raise UnableToUseClientApi("The versions endpoint did not answer a list of versions")
    known = set(VersionNumber.values)
    for index, version in enumerate(versions):
        if isinstance(version, dict) and isinstance(version.get("version"), str) and version["version"] not in known:
            continue  # a version we do not know (a newer OCPI): ignored, tolerant reading (REFERENCE §17)
        errors = validation_errors("Version", version)
        if errors:
            raise UnableToUseClientApi(f"versions[{index}]: " + "; ".join(errors))
    details_url = next((v["url"] for v in versions if v["version"] == OCPI_VERSION), None)
    if details_url is None:
        offered = ", ".join(str(v["version"]) for v in versions)
        raise UnsupportedVersion(
            f"No mutually supported version: we speak {OCPI_VERSION}, the partner offers {offered}"
        )
    try:
        details = client.get(details_url).data
    except PartnerCallError as exc:
        raise UnableToUseClientApi(f"Could not GET the version details endpoint: {exc.message}") from exc
    if isinstance(details, dict) and isinstance(details.get("endpoints"), list):
        # Custom modules (prefixed ids such as `nltnm-tokens`, REFERENCE §4.2) are not ours to call: ignored.
        modules = set(ModuleID.values)

        def custom(e: Any) -> bool:
            return isinstance(e, dict) and isinstance(e.get("identifier"), str) and e["identifier"] not in modules

        details["endpoints"] = [e for e in details["endpoints"] if not custom(e)]
    errors = validation_errors("VersionDetails", details)
    if errors:
        raise UnableToUseClientApi("Invalid version details: " + "; ".join(errors))
    if details["version"] != OCPI_VERSION:
        raise UnsupportedVersion(f"Version details are for {details['version']}, expected {OCPI_VERSION}")
    endpoints = [{"identifier": e["identifier"], "role": e["role"], "url": e["url"]} for e in details["endpoints"]]
    identifiers = {e["identifier"] for e in endpoints}
    missing = [m for m in [ModuleID.CREDENTIALS, *settings.OCPI_REQUIRED_PARTNER_MODULES] if m not in identifiers]
    if missing:
        raise NoMatchingEndpoints(f"The partner lacks required endpoints: {', '.join(missing)}")
    for endpoint in endpoints:
        try:
            url_check(endpoint["url"])
        except PartnerCallError as exc:
            raise UnableToUseClientApi(f"Endpoint {endpoint['identifier']} cannot be used: {exc.message}") from exc
    return PartnerVersion(version=OCPI_VERSION, details_url=details_url, endpoints=endpoints)


# --- writing -------------------------------------------------------------------------------------------------------


def _store_connection(*, partner: Partner, fetched: PartnerVersion, roles: list[dict[str, Any]]) -> None:
    """Replace the partner's endpoints and parties by what the handshake returned (inside a transaction)."""
    partner.endpoints.all().delete()
    # Credentials lists the credentials endpoint's role as meaningless; keep each (identifier, role) once.
    unique = {(e["identifier"], e["role"]): e["url"] for e in fetched.endpoints}
    PartnerEndpoint.objects.bulk_create(
        PartnerEndpoint(partner=partner, identifier=identifier, role=role, url=url)
        for (identifier, role), url in unique.items()
    )
    partner.parties.all().delete()
    Party.objects.bulk_create(
        Party(
            partner=partner,
            country_code=role["country_code"],
            party_id=role["party_id"],
            role=role["role"],
            name=role["business_details"]["name"],
            website=role["business_details"].get("website") or "",
            logo=role["business_details"].get("logo"),
        )
        for role in roles
    )


def _token_add(*, partner: Partner, kind: str) -> str:
    token = token_generate()
    PartnerToken.objects.create(partner=partner, token_hash=token_hash(token), kind=kind, hint=token_hint(token))
    return token


def partner_invite(*, name: str) -> tuple[Partner, str]:
    """Invite a partner: a new Partner with a fresh token A (versions and credentials only). Returns the clear token
    A, which is shown once and stored only as a hash."""
    name = name.strip()
    if not name:
        raise InvalidParameters("A partner needs a name")
    with transaction.atomic():
        partner, _ = Partner.objects.select_for_update().get_or_create(name=name)
        if partner.status == Partner.Status.REGISTERED:
            raise InvalidParameters(f"Partner {name} is registered already; unregister it first")
        partner.tokens.filter(kind=PartnerToken.Kind.REGISTRATION).delete()
        partner.endpoints.all().delete()  # a re-invited (unregistered) partner's old endpoints are stale
        partner.status = Partner.Status.INVITED
        partner.version = ""
        partner.save(update_fields=["status", "version", "updated_at"])
        token = _token_add(partner=partner, kind=PartnerToken.Kind.REGISTRATION)
    logger.info("Partner invited", extra={"partner": partner.name})
    return partner, token


def credentials_register_inbound(*, auth: PartnerAuth, data: Any) -> dict[str, Any]:
    """Credentials POST: the partner registers with us using token A (REFERENCE §5.3 steps 6-7)."""
    partner = auth.partner
    if auth.token.kind == PartnerToken.Kind.CREDENTIALS or partner.status == Partner.Status.REGISTERED:
        raise MethodNotAllowed("Already registered: use PUT to update or DELETE to unregister")
    credentials = credentials_validate(data)
    fetched = partner_version_fetch(
        versions_url=credentials["url"], token=credentials["token"], encoding=partner.token_encoding, partner=partner
    )
    with transaction.atomic():
        partner = Partner.objects.select_for_update().get(pk=partner.pk)
        if partner.status == Partner.Status.REGISTERED or not PartnerToken.objects.filter(pk=auth.token.pk).exists():
            raise MethodNotAllowed("Already registered: use PUT to update or DELETE to unregister")
        _store_connection(partner=partner, fetched=fetched, roles=credentials["roles"])
        partner.tokens.all().delete()  # token A (and anything pending) dies here
        token_c = _token_add(partner=partner, kind=PartnerToken.Kind.CREDENTIALS)
        partner.versions_url = credentials["url"]
        partner.version = fetched.version
        partner.token_out_encrypted = token_encrypt(credentials["token"])
        partner.token_out_hint = token_hint(credentials["token"])
        partner.status = Partner.Status.REGISTERED
        partner.registered_at = timezone.now()
        partner.last_error = ""
        partner.save()
        response = our_credentials(token=token_c)
    logger.info("Partner registered with us", extra={"partner": partner.name})
    return response


def credentials_update_inbound(*, auth: PartnerAuth, data: Any) -> dict[str, Any]:
    """Credentials PUT: the partner updates its credentials; we re-fetch its endpoints and issue a new token."""
    partner = auth.partner
    if auth.token.kind != PartnerToken.Kind.CREDENTIALS or partner.status != Partner.Status.REGISTERED:
        raise MethodNotAllowed("Not registered: use POST to register")
    credentials = credentials_validate(data)
    fetched = partner_version_fetch(
        versions_url=credentials["url"], token=credentials["token"], encoding=partner.token_encoding, partner=partner
    )
    with transaction.atomic():
        partner = Partner.objects.select_for_update().get(pk=partner.pk)
        if partner.status != Partner.Status.REGISTERED:
            raise MethodNotAllowed("Not registered: use POST to register")
        _store_connection(partner=partner, fetched=fetched, roles=credentials["roles"])
        partner.tokens.filter(kind=PartnerToken.Kind.CREDENTIALS).delete()  # the old token stops working
        token_c = _token_add(partner=partner, kind=PartnerToken.Kind.CREDENTIALS)
        partner.versions_url = credentials["url"]
        partner.version = fetched.version
        partner.token_out_encrypted = token_encrypt(credentials["token"])
        partner.token_out_hint = token_hint(credentials["token"])
        partner.last_error = ""
        partner.save()
        response = our_credentials(token=token_c)
    logger.info("Partner updated its credentials", extra={"partner": partner.name})
    return response


def credentials_delete_inbound(*, auth: PartnerAuth) -> None:
    """Credentials DELETE: the partner unregisters; its token and ours stop working."""
    if auth.token.kind != PartnerToken.Kind.CREDENTIALS or auth.partner.status != Partner.Status.REGISTERED:
        raise MethodNotAllowed("Not registered")
    _partner_mark_unregistered(partner=auth.partner)
    logger.info("Partner unregistered itself", extra={"partner": auth.partner.name})


def _partner_mark_unregistered(*, partner: Partner) -> None:
    with transaction.atomic():
        locked = Partner.objects.select_for_update().get(pk=partner.pk)
        locked.tokens.all().delete()
        locked.status = Partner.Status.UNREGISTERED
        locked.token_out_encrypted = ""
        locked.token_out_hint = ""
        locked.save()
    partner.refresh_from_db()


def _record_error(partner: Partner, message: str) -> None:
    """Keep the last failure on the partner, where operators look (admin list, ocpi_partners)."""
    Partner.objects.filter(pk=partner.pk).update(last_error=message[:2000])
    partner.last_error = message[:2000]


def _name_from_url(url: str) -> str:
    return (urlsplit(url).hostname or "partner")[:80]


def partner_register(
    *, versions_url: str, token: str, name: str | None = None, encoding: str = Partner.TokenEncoding.BASE64
) -> Partner:
    """Register with a partner from our side (we are the handshake's Sender, REFERENCE §5.3 steps 2-5, 8).

    `token` is the token A the partner gave us out of band. We offer a token B that the partner uses, during our
    POST, to read our versions; it is stored as PENDING first and only becomes the credentials token on success.
    """
    token = token.strip()
    if not token or len(token) > 64 or not all(0x21 <= ord(ch) <= 0x7E for ch in token):
        raise InvalidParameters("The token must be 1-64 printable ASCII characters without spaces")
    url_check(versions_url)
    name = (name or _name_from_url(versions_url)).strip()
    existing = Partner.objects.filter(name=name).first()
    if existing is not None and existing.status == Partner.Status.REGISTERED:
        raise InvalidParameters(f"Partner {name} is registered already")
    try:
        fetched = partner_version_fetch(versions_url=versions_url, token=token, encoding=encoding, partner=existing)
    except OcpiError as exc:
        raise RegistrationError(f"Reading the partner's versions failed: {exc.message}") from exc
    credentials_url = fetched.url(ModuleID.CREDENTIALS)
    assert credentials_url is not None  # partner_version_fetch requires it  # noqa: S101

    with transaction.atomic():
        partner, created = Partner.objects.get_or_create(
            name=name, defaults={"status": Partner.Status.REGISTERING, "token_encoding": encoding}
        )
        token_b = _token_add(partner=partner, kind=PartnerToken.Kind.PENDING)
    try:
        result = OcpiClient(token=token, partner=partner, encoding=encoding).post(
            credentials_url, json=our_credentials(token=token_b)
        )
        credentials = credentials_validate(result.data)
    except (PartnerCallError, OcpiError) as exc:
        message = exc.message if isinstance(exc, PartnerCallError | OcpiError) else str(exc)
        with transaction.atomic():
            PartnerToken.objects.filter(token_hash=token_hash(token_b)).delete()
            if created:
                partner.delete()
        raise RegistrationError(f"The partner refused our registration: {message}") from exc

    with transaction.atomic():
        partner = Partner.objects.select_for_update().get(pk=partner.pk)
        _store_connection(partner=partner, fetched=fetched, roles=credentials["roles"])
        partner.tokens.exclude(token_hash=token_hash(token_b)).delete()
        partner.tokens.filter(token_hash=token_hash(token_b)).update(kind=PartnerToken.Kind.CREDENTIALS)
        partner.versions_url = versions_url
        partner.version = fetched.version
        partner.token_encoding = encoding
        partner.token_out_encrypted = token_encrypt(credentials["token"])
        partner.token_out_hint = token_hint(credentials["token"])
        partner.status = Partner.Status.REGISTERED
        partner.registered_at = timezone.now()
        partner.last_error = ""
        partner.save()
    logger.info("Registered with partner", extra={"partner": partner.name})
    return partner


def partner_rotate(*, partner: Partner) -> Partner:
    """Credentials PUT from our side: re-read the partner's endpoints, give it a new token, take its new token."""
    if partner.status != Partner.Status.REGISTERED:
        raise InvalidParameters(f"Partner {partner} is not registered")
    client = OcpiClient.for_partner(partner)
    try:
        fetched = partner_version_fetch(
            versions_url=partner.versions_url, token=client.token, encoding=partner.token_encoding, partner=partner
        )
    except OcpiError as exc:
        _record_error(partner, f"Rotate: reading the partner's versions failed: {exc.message}")
        raise RegistrationError(f"Reading the partner's versions failed: {exc.message}") from exc
    credentials_url = fetched.url(ModuleID.CREDENTIALS)
    token_new = _token_add(partner=partner, kind=PartnerToken.Kind.PENDING)
    try:
        result = client.put(credentials_url or "", json=our_credentials(token=token_new))
        credentials = credentials_validate(result.data)
    except (PartnerCallError, OcpiError) as exc:
        PartnerToken.objects.filter(token_hash=token_hash(token_new)).delete()
        _record_error(partner, f"Rotate: the partner refused the credentials update: {exc.message}")
        raise RegistrationError(f"The partner refused the credentials update: {exc.message}") from exc
    with transaction.atomic():
        locked = Partner.objects.select_for_update().get(pk=partner.pk)
        _store_connection(partner=locked, fetched=fetched, roles=credentials["roles"])
        locked.tokens.exclude(token_hash=token_hash(token_new)).delete()  # our old token B stops working
        locked.tokens.filter(token_hash=token_hash(token_new)).update(kind=PartnerToken.Kind.CREDENTIALS)
        locked.token_out_encrypted = token_encrypt(credentials["token"])
        locked.token_out_hint = token_hint(credentials["token"])
        locked.version = fetched.version
        locked.last_error = ""
        locked.save()
    logger.info("Rotated credentials with partner", extra={"partner": partner.name})
    partner.refresh_from_db()
    return partner


def partner_unregister(*, partner: Partner) -> str:
    """Credentials DELETE from our side, then stop talking to the partner whatever it answered.

    Returns '' when the partner confirmed, otherwise what went wrong remotely (the local unregistration stands:
    an operator who unregisters a partner wants the traffic to stop).
    """
    remote_error = ""
    credentials_url = partner.endpoint_url(ModuleID.CREDENTIALS)
    if partner.status == Partner.Status.REGISTERED and credentials_url and partner.token_out_encrypted:
        try:
            OcpiClient.for_partner(partner).delete(credentials_url)
        except PartnerRefused as exc:
            remote_error = "" if exc.http_status == 405 else exc.message  # 405: it had forgotten us already
        except PartnerCallError as exc:
            remote_error = exc.message
    _partner_mark_unregistered(partner=partner)
    if remote_error:
        Partner.objects.filter(pk=partner.pk).update(last_error=f"Unregister: {remote_error}")
    logger.info("Unregistered partner", extra={"partner": partner.name, "remote_error": remote_error})
    return remote_error


def partner_endpoints_refresh(*, partner: Partner) -> Partner:
    """Re-read the partner's versions and version details with our current token and store its endpoints."""
    if partner.status != Partner.Status.REGISTERED:
        raise InvalidParameters(f"Partner {partner} is not registered")
    try:
        fetched = partner_version_fetch(
            versions_url=partner.versions_url,
            token=partner.token_out(),
            encoding=partner.token_encoding,
            partner=partner,
        )
    except OcpiError as exc:
        _record_error(partner, f"Re-fetch endpoints: {exc.message}")
        raise
    with transaction.atomic():
        locked = Partner.objects.select_for_update().get(pk=partner.pk)
        locked.endpoints.all().delete()
        unique = {(e["identifier"], e["role"]): e["url"] for e in fetched.endpoints}
        PartnerEndpoint.objects.bulk_create(
            PartnerEndpoint(partner=locked, identifier=i, role=r, url=u) for (i, r), u in unique.items()
        )
        locked.version = fetched.version
        locked.save(update_fields=["version", "updated_at"])
    partner.refresh_from_db()
    return partner


def own_party_ensure(*, country_code: str, party_id: str, role: str, name: str, website: str = "") -> Party:
    """Create or update one of our own parties (demo data, admin)."""
    party = Party.objects.filter(
        partner__isnull=True, country_code__iexact=country_code, party_id__iexact=party_id, role=role
    ).first()
    if party is None:
        party = Party(partner=None, country_code=country_code, party_id=party_id, role=role)
    party.name = name
    party.website = website
    party.full_clean(validate_constraints=False)
    party.save()
    return party
