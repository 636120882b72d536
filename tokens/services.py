"""Tokens services: the only writers of Token and Authorization (STYLE.md §4).

Receiver side (partners' tokens, REFERENCE §10.2): PUT creates or replaces, PATCH merges and needs `last_updated`,
URL ids must match body ids (2001), a token is keyed by uid *and* type (RFID when the URL gives none), a partner writes
only under its own parties (404), an older last_updated never overwrites newer data, a rejected request changes
nothing. Own side (our eMSP tokens: admin, platform API): the same writes, plus an outbox row per CPO partner in the
same transaction (PUT for new or replaced tokens, PATCH for `valid` and `whitelist` changes, REFERENCE §10.1).

Real-time authorization (REFERENCE §10.3, §15): `token_authorize_as_emsp` answers partner CPOs asking about our own
tokens; `authorize_token` (contract C5) decides, as CPO, for a token at one of our locations: our own tokens locally,
partners' tokens by the whitelist rules from the local copy or by asking the eMSP in real time. Every authorization is
recorded in the Authorization log.
"""

import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

import orjson
from django.conf import settings
from django.db import transaction
from django.db.models import Exists, F, OuterRef, QuerySet
from django.utils import timezone

from ocpi_core.client import OcpiClient, PartnerBadResponse, PartnerCallError, PartnerRefused, PartnerUnreachable
from ocpi_core.constants import InterfaceRole, ModuleID, Role, StatusCode
from ocpi_core.db import retry_on_conflict
from ocpi_core.envelope import format_datetime_up, own_stamp, parse_datetime
from ocpi_core.exceptions import InvalidParameters, NotEnoughInformation, NotFound, OcpiError, UnknownToken
from ocpi_core.mapping import OcpiMapper
from ocpi_core.models import Delivery, Partner, Party
from ocpi_core.push import PushModule, outbox_add, push_module_register
from ocpi_core.routing import Routing
from ocpi_core.selectors import partner_assert_owns
from ocpi_core.sync import PullModule, pull_module_register
from ocpi_core.validation import enum_values, validate, validation_errors
from tokens.models import AllowedType, Authorization, Token, TokenType, WhitelistType

logger = logging.getLogger(__name__)

TOKEN = OcpiMapper("Token")
_IDS = ("country_code", "party_id", "uid", "type")
# Own-token changes a PATCH carries to CPO partners (anything else is pushed as a PUT of the whole token).
PATCHABLE_FIELDS = frozenset({"valid", "whitelist"})
_LANGUAGE = "en"


@dataclass(frozen=True)
class Key:
    """Where a token lives: its owner party, its uid and its type (CiStrings compared case-insensitively)."""

    country_code: str
    party_id: str
    uid: str
    type: str = TokenType.RFID

    @property
    def path(self) -> str:
        """The outbox object path: the uid (URL-encoded) and the type query (REFERENCE §10.2 pitfall)."""
        return f"{quote(self.uid, safe='')}?type={self.type}"

    @classmethod
    def from_path(cls, country_code: str, party_id: str, path: str) -> "Key":
        uid, _, token_type = path.partition("?type=")
        return cls(country_code, party_id, unquote(uid), token_type or TokenType.RFID)

    def ids(self) -> tuple[str, str, str, str]:
        """Upper-cased (CiString) identity, as the pull sync compares keys."""
        return (self.country_code.upper(), self.party_id.upper(), self.uid.upper(), self.type)


@dataclass(frozen=True)
class WriteResult:
    """What a PUT/PATCH did: `created` (answer 201) or `ignored` (older than what we hold: acknowledged)."""

    token: Token
    created: bool = False
    ignored: bool = False


@dataclass(frozen=True)
class AuthorizationOutcome:
    """The answer to "may this token charge here?" (REFERENCE §10.1, §15).

    `allowed` is an AllowedType value; `token` the OCPI Token dict (None when the token is unknown); `location` the
    LocationReferences with the EVSEs where charging is allowed (None when not given); `info` a DisplayText for the
    driver; `source` says who decided: "cache" (our copy of a partner's token, whitelist rules), "realtime" (the
    eMSP's authorize endpoint), "own" (one of our own eMSP tokens). `authorization_reference` goes into the Session
    and CDR; it is None for a local decision on a partner's token (the eMSP gave none).
    """

    allowed: str
    token: dict[str, Any] | None
    authorization_reference: str | None
    info: dict[str, Any] | None
    location: dict[str, Any] | None
    source: str

    @property
    def is_allowed(self) -> bool:
        return self.allowed == AllowedType.ALLOWED


# --- rendering and lookups ---


def token_render(token: Token) -> dict[str, Any]:
    """The token as OCPI JSON (a dict), fields in spec order."""
    return TOKEN.to_ocpi(token)


def token_doc(token: Token) -> str:
    """The cached OCPI JSON text of a token (rendered when the cache is empty)."""
    return token.doc or orjson.dumps(token_render(token)).decode()


def token_type_param(value: str | None) -> str:
    """The `type` query parameter of a Tokens URL: a TokenType, RFID when absent (REFERENCE §10.2)."""
    if value is None or value == "":
        return TokenType.RFID
    if value not in enum_values("TokenType"):
        raise InvalidParameters(f"type: {value!r} is not a TokenType ({', '.join(sorted(TokenType.values))})")
    return value


def token_find(key: Key, *, lock: bool = False) -> Token | None:
    """A token by owner, uid (case-insensitive) and type."""
    queryset = Token.objects.filter(
        country_code__lower=key.country_code.lower(),
        party_id__lower=key.party_id.lower(),
        uid__lower=key.uid.lower(),
        type=key.type,
    )
    if lock:
        queryset = queryset.select_for_update()
    return queryset.first()


def token_get(*, partner: Partner | None, key: Key) -> str:
    """GET of a stored token as OCPI JSON text: a partner's (Receiver) or our own (`partner=None`). 404 + 2004."""
    partner_assert_owns(partner=partner, country_code=key.country_code, party_id=key.party_id)
    token = token_find(key)
    if token is None or token.partner_id != (partner.pk if partner else None):
        raise UnknownToken(f"Unknown token {key.uid} of type {key.type}")
    return token_doc(token)


def tokens_own(*, parties: QuerySet[Party]) -> QuerySet[Token]:
    """Our own tokens under the given own eMSP parties (CiString comparison of the owner)."""
    owner = parties.filter(country_code__iexact=OuterRef("country_code"), party_id__iexact=OuterRef("party_id"))
    return Token.objects.filter(Exists(owner), partner__isnull=True)


# --- validation ---


def _same(a: Any, b: str) -> bool:
    return isinstance(a, str) and a.lower() == b.lower()


def _check_ids(key: Key, data: dict[str, Any], *, partial: bool) -> None:
    """URL ids equal to body ids (REFERENCE §10.2); in a PATCH only the ids that are present."""
    for name in _IDS:
        if partial and name not in data:
            continue
        url_value = getattr(key, name)
        matches = data.get(name) == url_value if name == "type" else _same(data.get(name), url_value)
        if not matches:
            where = "the type query parameter (RFID when absent)" if name == "type" else "the URL"
            raise InvalidParameters(f"{name}: {data.get(name)!r} in the body does not match {url_value!r} in {where}")


def _check_rules(data: dict[str, Any]) -> None:
    """What the field table cannot say: ISO 639-1 language (2 lower-case letters)."""
    language = data.get("language")
    if language is not None and not (len(language) == 2 and language.isascii() and language.isalpha()):
        raise InvalidParameters("language: must be an ISO 639-1 code of 2 letters, e.g. en")


def token_validate(*, key: Key, data: Any) -> dict[str, Any]:
    """Every check a Token PUT body must pass (2001 naming the field): the spec's field table and URL ids."""
    validate("Token", data)
    _check_ids(key, data, partial=False)
    _check_rules(data)
    return data


def _assert_own_party(key: Key) -> None:
    own = Party.objects.filter(
        partner__isnull=True, role=Role.EMSP, country_code__iexact=key.country_code, party_id__iexact=key.party_id
    )
    if not own.exists():
        raise InvalidParameters(
            f"country_code/party_id: {key.country_code}*{key.party_id} is not one of our eMSP parties"
        )


# --- writing ---


def _push(token: Token, method: str, fields: Sequence[str] = ()) -> None:
    """Queue a change of an own token for every partner with a tokens RECEIVER (same transaction)."""
    outbox_add(
        module=ModuleID.TOKENS,
        country_code=token.country_code,
        party_id=token.party_id,
        object_path=Key(token.country_code, token.party_id, token.uid, token.type).path,
        method=method,
        fields=fields,
    )


def _owned(token: Token | None, partner: Partner | None) -> bool:
    return token is not None and token.partner_id == (partner.pk if partner else None)


@retry_on_conflict
@transaction.atomic
def token_put(*, partner: Partner | None, key: Key, data: Any) -> WriteResult:
    """PUT of a Token: create or replace. `partner=None` is one of our own tokens (pushed to CPO partners).

    A body older than the stored token is acknowledged and ignored (`ignored`); the answer is 201 when `created`.
    """
    partner_assert_owns(partner=partner, country_code=key.country_code, party_id=key.party_id)
    data = token_validate(key=key, data=data)
    if partner is None:
        _assert_own_party(key)
    token = token_find(key, lock=True)
    if token is not None and not _owned(token, partner):
        raise NotFound(f"Token {key.uid} belongs to another platform")
    if token is not None and parse_datetime(data["last_updated"]) < token.last_updated:
        return WriteResult(token, ignored=True)
    created = token is None
    if token is None:
        token = Token(partner=partner)
    for name, value in TOKEN.from_ocpi(data).items():
        setattr(token, name, value)
    token.doc = orjson.dumps(token_render(token)).decode()  # one write: row and cached JSON together
    token.save()
    if partner is None:
        _push(token, Delivery.Method.PUT)
    return WriteResult(token, created=created)


@retry_on_conflict
@transaction.atomic
def token_patch(*, partner: Partner | None, key: Key, data: Any) -> WriteResult:
    """PATCH of a Token: only the fields sent change; `last_updated` is required (2001); unknown → 404 + 2004."""
    partner_assert_owns(partner=partner, country_code=key.country_code, party_id=key.party_id)
    errors = validation_errors("Token", data, partial=True)
    if isinstance(data, dict) and data.get("last_updated") is None:
        errors.insert(0, "last_updated: required in every PATCH (REFERENCE §2.5)")
    if errors:
        raise InvalidParameters("; ".join(errors))
    _check_ids(key, data, partial=True)
    _check_rules(data)
    token = token_find(key, lock=True)
    if not _owned(token, partner):
        raise UnknownToken(f"Unknown token {key.uid} of type {key.type}")
    assert token is not None  # noqa: S101 (for mypy: _owned checked it)
    if parse_datetime(data["last_updated"]) < token.last_updated:
        return WriteResult(token, ignored=True)
    for name, value in TOKEN.from_ocpi(data, partial=True).items():
        if name not in _IDS:
            setattr(token, name, value)
    token.doc = orjson.dumps(token_render(token)).decode()
    token.save()
    if partner is None:
        changed = sorted(set(data) - {"last_updated", *_IDS})
        if set(changed) <= PATCHABLE_FIELDS:
            _push(token, Delivery.Method.PATCH, changed)
        else:
            _push(token, Delivery.Method.PUT)
    return WriteResult(token)


def _now_after(token: Token | None) -> str:
    """Now as an OCPI DateTime, never older than what is stored (so an own edit is never ignored)."""
    return format_datetime_up(own_stamp(token.last_updated if token is not None else None))


def token_save_own(*, key: Key, data: dict[str, Any]) -> WriteResult:
    """Create or replace one of our own tokens (issue a card, admin, platform API): stamped now, validated like a
    partner's PUT, pushed as a PUT to every CPO partner."""
    return token_put(partner=None, key=key, data={**data, "last_updated": _now_after(token_find(key))})


def token_change_own(*, token: Token, changes: dict[str, Any]) -> WriteResult:
    """Change fields of one of our own tokens (block/unblock: `valid`, `whitelist` ...): stamped now and pushed as a
    PATCH (a PUT when other fields change)."""
    if not token.is_own:
        raise InvalidParameters("Only our own tokens can be changed here")
    key = Key(token.country_code, token.party_id, token.uid, token.type)
    return token_patch(partner=None, key=key, data={**changes, "last_updated": _now_after(token)})


BOOKKEEPING_FIELDS = ("expires_at", "no_credit", "allowed_location_ids")


@transaction.atomic
def token_set_bookkeeping(*, token: Token, changes: dict[str, Any]) -> Token:
    """Change what real-time authorization of an own token decides on (`expires_at`, `no_credit`,
    `allowed_location_ids`): eMSP bookkeeping, never on the wire, so nothing is pushed."""
    if not token.is_own:
        raise InvalidParameters("Only our own tokens have eMSP bookkeeping")
    unknown = set(changes) - set(BOOKKEEPING_FIELDS)
    if unknown:
        raise InvalidParameters(f"{', '.join(sorted(unknown))}: not a bookkeeping field")
    for name, value in changes.items():
        setattr(token, name, value if name != "allowed_location_ids" else (list(value) if value else None))
    token.full_clean(exclude=["partner", "doc"])
    token.save(update_fields=[*changes, "updated_at"])
    return token


@transaction.atomic
def token_expire_own(*, token: Token) -> WriteResult:
    """Expire one of our own tokens now: authorizations answer EXPIRED and CPOs learn `valid: false` (pushed)."""
    token_set_bookkeeping(token=token, changes={"expires_at": timezone.now()})
    return token_change_own(token=token, changes={"valid": False})


# --- real-time authorization ---


def _display(text: str) -> dict[str, str]:
    return {"language": _LANGUAGE, "text": text}


def _location_refs(location_id: str | None, evse_uids: Sequence[str]) -> dict[str, Any] | None:
    if not location_id:
        return None
    refs: dict[str, Any] = {"location_id": location_id}
    if evse_uids:
        refs["evse_uids"] = list(evse_uids)
    return refs


def _decide_own(token: Token, location: dict[str, Any] | None) -> tuple[str, dict[str, Any] | None, str]:
    """The eMSP's decision for one of our own tokens: (AllowedType, LocationReferences allowed, info text).

    Raises NotEnoughInformation (2002) when the token may charge at some locations only and none was given. Never
    decided on opening hours or EVSE status: our copy of the CPO's data may be stale (REFERENCE §10.1).
    """
    if token.expires_at is not None and token.expires_at <= timezone.now():
        return AllowedType.EXPIRED, None, "This token has expired."
    if not token.valid:
        return AllowedType.BLOCKED, None, "This token is blocked."
    if token.no_credit:
        return AllowedType.NO_CREDIT, None, "The account of this token has no credit."
    if token.allowed_location_ids:
        if location is None:
            # the token exists and the request is well-formed: an OCPI status, not an HTTP error (REFERENCE §2.4)
            raise NotEnoughInformation(
                "This token may charge at some locations only: send LocationReferences", http_status=200
            )
        allowed_ids = {str(i).lower() for i in token.allowed_location_ids}
        if location["location_id"].lower() not in allowed_ids:
            return AllowedType.NOT_ALLOWED, None, "This token may not charge at this location."
    return AllowedType.ALLOWED, location, ""


def _new_reference() -> str:
    """A fresh authorization_reference (CiString(36)): a UUID, unique among every one we handed out."""
    return str(uuid.uuid4())


def _log(
    *,
    direction: str,
    source: str,
    partner: Partner | None,
    token: Token | None,
    key: Key,
    location: dict[str, Any] | None,
    allowed: str,
    reference: str | None,
    allowed_location: dict[str, Any] | None,
    info: dict[str, Any] | None,
    started: float,
) -> None:
    Authorization.objects.create(
        direction=direction,
        source=source,
        partner=partner,
        token=token,
        country_code=key.country_code[:2],
        party_id=key.party_id[:3],
        token_uid=key.uid[:36],
        token_type=key.type,
        location_id=(location or {}).get("location_id", "")[:36],
        evse_uids=list((location or {}).get("evse_uids") or []),
        allowed=allowed,
        authorization_reference=reference,
        allowed_evse_uids=(allowed_location or {}).get("evse_uids") if allowed_location else None,
        info=str((info or {}).get("text", ""))[:512],
        duration_ms=int((time.perf_counter() - started) * 1000),
    )


def token_authorize_as_emsp(
    *, partner: Partner, parties: QuerySet[Party], uid: str, token_type: str, body: Any
) -> dict[str, Any]:
    """POST {tokens}/{uid}/authorize on our eMSP Sender (REFERENCE §10.3): the AuthorizationInfo for one of our own
    tokens under `parties`. Unknown token → 404 + 2004; a location needed and missing → 2002; a blocked or expired
    token is an answer (HTTP 200), not an error. Three queries: the token, the log row (with its new reference)."""
    started = time.perf_counter()
    location: dict[str, Any] | None = None
    if body not in (None, b"", {}):
        location = validate("LocationReferences", body)
    token = tokens_own(parties=parties).filter(uid__lower=uid.lower(), type=token_type).first()
    if token is None:
        raise UnknownToken(f"Unknown token {uid} of type {token_type}")
    allowed, allowed_location, text = _decide_own(token, location)
    reference = _new_reference()
    info = _display(text) if text else None
    key = Key(token.country_code, token.party_id, token.uid, token.type)
    _log(
        direction=Authorization.Direction.IN,
        source=Authorization.Source.OWN,
        partner=partner,
        token=token,
        key=key,
        location=location,
        allowed=allowed,
        reference=reference,
        allowed_location=allowed_location,
        info=info,
        started=started,
    )
    result: dict[str, Any] = {"allowed": allowed, "token": orjson.loads(token_doc(token))}
    if allowed_location is not None:
        result["location"] = allowed_location
    result["authorization_reference"] = reference
    if info is not None:
        result["info"] = info
    return result


class _Unreachable(Exception):
    """The eMSP could not give a usable answer (timeout, connection, 5xx/3xxx, no envelope, invalid data)."""


class _UnknownAtEmsp(Exception):
    """The eMSP does not know the token (404 / 2004)."""


@dataclass(frozen=True)
class _Answer:
    allowed: str
    token: dict[str, Any] | None
    reference: str | None
    info: dict[str, Any] | None
    location: dict[str, Any] | None


def _from_party(location_id: str | None) -> Party | None:
    """Our CPO party that sends the request: the owner of the location, else our first CPO party."""
    parties = Party.objects.filter(partner__isnull=True, role=Role.CPO)
    if location_id:
        from locations.models import Location

        owner = (
            Location.objects.filter(partner__isnull=True, ocpi_id__lower=location_id.lower())
            .values_list("country_code", "party_id")
            .first()
        )
        if owner is not None:
            party = parties.filter(country_code__iexact=owner[0], party_id__iexact=owner[1]).first()
            if party is not None:
                return party
    return parties.first()


def _ask_emsp(
    partner: Partner, *, key: Key, location: dict[str, Any] | None, from_party: Party | None, has_owner: bool
) -> _Answer:
    """POST {eMSP tokens SENDER}/{uid}/authorize?type= with the LocationReferences (REFERENCE §10.3)."""
    endpoint = partner.endpoint_url(ModuleID.TOKENS, InterfaceRole.SENDER)
    if endpoint is None:
        raise _Unreachable(f"{partner} offers no tokens SENDER endpoint")
    url = f"{endpoint.rstrip('/')}/{quote(key.uid, safe='')}/authorize"
    to = (key.country_code, key.party_id) if has_owner else ("", "")
    if not has_owner:  # owner unknown: the partner's eMSP party when it has just one, else open routing (a hub)
        emsps = [p for p in partner.parties.all() if p.role == Role.EMSP]
        if len(emsps) == 1:
            to = (emsps[0].country_code, emsps[0].party_id)
    routing = Routing(
        from_country_code=from_party.country_code if from_party else "",
        from_party_id=from_party.party_id if from_party else "",
        to_country_code=to[0],
        to_party_id=to[1],
    )
    client = OcpiClient.for_partner(partner, routing=routing)
    try:
        result = client.post(url, json=location, params={"type": key.type}, timeout=settings.OCPI_AUTHORIZE_TIMEOUT)
    except PartnerRefused as exc:
        if exc.ocpi_status_code == StatusCode.UNKNOWN_TOKEN or (exc.http_status == 404 and not exc.ocpi_status_code):
            raise _UnknownAtEmsp(exc.message) from exc
        if (exc.http_status or 0) >= 500 or (exc.ocpi_status_code or 0) >= 3000:
            raise _Unreachable(exc.message) from exc
        if exc.http_status == 404:
            raise _UnknownAtEmsp(exc.message) from exc
        if exc.ocpi_status_code == StatusCode.NOT_ENOUGH_INFORMATION:
            return _Answer(AllowedType.NOT_ALLOWED, None, None, _display("The eMSP needs a location to decide."), None)
        return _Answer(AllowedType.NOT_ALLOWED, None, None, _display(f"The eMSP refused: {exc.message}"[:512]), None)
    except (PartnerUnreachable, PartnerBadResponse, PartnerCallError) as exc:
        raise _Unreachable(exc.message) from exc
    errors = validation_errors("AuthorizationInfo", result.data)
    if errors:
        raise _Unreachable(f"invalid AuthorizationInfo: {'; '.join(errors)}"[:500])
    data: dict[str, Any] = result.data
    return _Answer(
        allowed=data["allowed"],
        token=data["token"],
        reference=data.get("authorization_reference"),
        info=data.get("info"),
        location=data.get("location"),
    )


def _refresh_cache(partner: Partner, data: dict[str, Any] | None) -> None:
    """Keep the local copy of a token the eMSP returned (when it is newer and the partner owns it)."""
    if not data:
        return
    key = Key(data["country_code"], data["party_id"], data["uid"], data["type"])
    try:
        token_put(partner=partner, key=key, data=data)
    except OcpiError as exc:
        logger.info("Token returned by real-time authorization not cached", extra={"error": exc.message})


def _local(token: Token, location: dict[str, Any] | None) -> tuple[str, dict[str, Any] | None, dict[str, Any] | None]:
    """A decision from our copy of a partner's token (REFERENCE §15: `valid` decides)."""
    if token.valid:
        return AllowedType.ALLOWED, location, None
    return AllowedType.BLOCKED, None, _display("This token is not valid.")


def _eligible_emsps(country_code: str | None, party_id: str | None) -> list[Partner]:
    """Registered partners offering a tokens SENDER (the eMSP owning the party, when given)."""
    partners = Partner.objects.filter(
        status=Partner.Status.REGISTERED, endpoints__identifier=ModuleID.TOKENS, endpoints__role=InterfaceRole.SENDER
    )
    if country_code and party_id:
        owner = Party.objects.filter(
            partner=OuterRef("pk"), country_code__iexact=country_code, party_id__iexact=party_id
        ).exclude(role=Role.CPO)
        hub = Party.objects.filter(partner=OuterRef("pk"), role=Role.HUB)
        partners = partners.filter(Exists(owner) | Exists(hub))
    return list(partners.distinct().order_by("name", "pk").prefetch_related("endpoints"))


def authorize_token(
    *,
    uid: str,
    token_type: str = TokenType.RFID,
    country_code: str | None = None,
    party_id: str | None = None,
    location_id: str | None = None,
    evse_uids: Sequence[str] = (),
) -> AuthorizationOutcome:
    """Authorize a token at one of our own locations as CPO (contract C5; REFERENCE §10.1, §15).

    - Our own eMSP token: decided locally like an eMSP answers partners (source "own", with a new reference).
    - A partner's token we hold, by its `whitelist`: ALWAYS → local copy; ALLOWED → local copy when valid, the eMSP
      asked when not (it may have become valid again), local on failure; ALLOWED_OFFLINE → the eMSP first, the local
      copy only when it is unreachable; NEVER → the eMSP only (NOT_ALLOWED when unreachable). `valid = false` never
      skips a real-time call the whitelist demands.
    - A token we do not hold: the eMSP(s) asked in real time (the owner's, when country_code/party_id are given);
      unknown everywhere → NOT_ALLOWED with `token` None.
    Every call is recorded in the Authorization log (direction OUT).
    """
    started = time.perf_counter()
    token_type = token_type_param(token_type)
    location = _location_refs(location_id, evse_uids)
    candidates = Token.objects.filter(uid__lower=uid.lower(), type=token_type)
    if country_code and party_id:
        candidates = candidates.filter(country_code__iexact=country_code, party_id__iexact=party_id)
    token = candidates.select_related("partner").order_by(F("partner").asc(nulls_first=True), "-last_updated").first()
    key = (
        Key(token.country_code, token.party_id, token.uid, token.type)
        if token
        else Key(country_code or "", party_id or "", uid, token_type)
    )

    def done(
        allowed: str,
        source: str,
        *,
        partner: Partner | None = None,
        token_data: dict[str, Any] | None = None,
        reference: str | None = None,
        info: dict[str, Any] | None = None,
        allowed_location: dict[str, Any] | None = None,
    ) -> AuthorizationOutcome:
        _log(
            direction=Authorization.Direction.OUT,
            source=source,
            partner=partner,
            token=token,
            key=key,
            location=location,
            allowed=allowed,
            reference=reference,
            allowed_location=allowed_location,
            info=info,
            started=started,
        )
        return AuthorizationOutcome(allowed, token_data, reference, info, allowed_location, source)

    if token is not None and token.is_own:
        token_data = orjson.loads(token_doc(token))
        try:
            allowed, allowed_location, text = _decide_own(token, location)
        except NotEnoughInformation as exc:
            allowed, allowed_location, text = AllowedType.NOT_ALLOWED, None, exc.message
        return done(
            allowed,
            Authorization.Source.OWN,
            token_data=token_data,
            reference=_new_reference(),
            info=_display(text) if text else None,
            allowed_location=allowed_location,
        )

    from_party = _from_party(location_id)
    if token is not None:
        partner = token.partner
        assert partner is not None  # noqa: S101 (not own: a partner's token)
        cached = orjson.loads(token_doc(token))
        realtime = token.whitelist in (WhitelistType.NEVER, WhitelistType.ALLOWED_OFFLINE) or (
            token.whitelist == WhitelistType.ALLOWED and not token.valid
        )
        if realtime:
            try:
                answer = _ask_emsp(partner, key=key, location=location, from_party=from_party, has_owner=True)
            except _UnknownAtEmsp:
                return done(
                    AllowedType.NOT_ALLOWED,
                    Authorization.Source.REALTIME,
                    partner=partner,
                    token_data=cached,
                    info=_display("The eMSP does not know this token."),
                )
            except _Unreachable as exc:
                logger.warning("Real-time authorization failed", extra={"partner": partner.name, "error": str(exc)})
                if token.whitelist == WhitelistType.NEVER:
                    return done(
                        AllowedType.NOT_ALLOWED,
                        Authorization.Source.REALTIME,
                        partner=partner,
                        token_data=cached,
                        info=_display("The eMSP could not be reached to authorize this token."),
                    )
            else:
                _refresh_cache(partner, answer.token)
                return done(
                    answer.allowed,
                    Authorization.Source.REALTIME,
                    partner=partner,
                    token_data=answer.token or cached,
                    reference=answer.reference,
                    info=answer.info,
                    allowed_location=answer.location,
                )
        allowed, allowed_location, info = _local(token, location)
        return done(
            allowed,
            Authorization.Source.CACHE,
            partner=partner,
            token_data=cached,
            info=info,
            allowed_location=allowed_location,
        )

    asked: Partner | None = None
    for partner in _eligible_emsps(country_code, party_id):
        asked = partner
        try:
            answer = _ask_emsp(
                partner, key=key, location=location, from_party=from_party, has_owner=bool(country_code and party_id)
            )
        except (_UnknownAtEmsp, _Unreachable):
            continue
        _refresh_cache(partner, answer.token)
        return done(
            answer.allowed,
            Authorization.Source.REALTIME,
            partner=partner,
            token_data=answer.token,
            reference=answer.reference,
            info=answer.info,
            allowed_location=answer.location,
        )
    return done(
        AllowedType.NOT_ALLOWED,
        Authorization.Source.REALTIME if asked else Authorization.Source.CACHE,
        partner=asked,
        info=_display("Unknown token."),
    )


# --- push and pull ---


def _render_for_push(
    *, country_code: str, party_id: str, object_path: str, method: str, fields: list[str]
) -> dict[str, Any] | None:
    """The own token as it is now (PATCH: the changed fields and last_updated), or None when it is gone."""
    token = token_find(Key.from_path(country_code, party_id, object_path))
    if token is None or not token.is_own:
        return None
    data: dict[str, Any] = orjson.loads(token_doc(token))
    if method == Delivery.Method.PATCH and fields:
        patch = {name: data[name] for name in fields if name in data}
        patch["last_updated"] = data["last_updated"]
        return patch
    return data


def _pull_key(data: Any) -> tuple[str, str, str, str] | None:
    """(COUNTRY_CODE, PARTY_ID, UID, type) of a listed Token, even an invalid one (None without its ids)."""
    if not isinstance(data, dict):
        return None
    parts = (data.get("country_code"), data.get("party_id"), data.get("uid"))
    if not all(isinstance(part, str) and part for part in parts):
        return None
    token_type = data.get("type") if isinstance(data.get("type"), str) else TokenType.RFID
    return Key(str(parts[0]), str(parts[1]), str(parts[2]), str(token_type)).ids()


def _upsert_from_pull(*, partner: Partner, data: Any) -> tuple[str, str, str, str]:
    """One Token from an eMSP partner's Sender list: stored like a PUT from that partner."""
    if not isinstance(data, dict):
        raise InvalidParameters("list item: must be a Token object")
    key = Key(
        str(data.get("country_code", "")),
        str(data.get("party_id", "")),
        str(data.get("uid", "")),
        str(data.get("type", "")),
    )
    if key.type not in TokenType.values:
        raise InvalidParameters(f"type: {key.type!r} is not a TokenType")
    token_put(partner=partner, key=key, data=data)
    return key.ids()


@transaction.atomic
def _invalidate_missing(*, partner: Partner, keep: set[tuple[str, str, str, str]]) -> int:
    """After a full pull: the partner's tokens it no longer lists are no longer valid (REFERENCE §2.7; tokens are
    never deleted). `last_updated` stays the partner's, so any newer push from it still applies."""
    count = 0
    for token in Token.objects.select_for_update().filter(partner=partner, valid=True).order_by("pk"):
        if Key(token.country_code, token.party_id, token.uid, token.type).ids() in keep:
            continue
        token.valid = False
        token.doc = orjson.dumps(token_render(token)).decode()
        token.save(update_fields=["valid", "doc", "updated_at"])
        count += 1
    return count


def register_push_and_pull() -> None:
    push_module_register(
        PushModule(module=ModuleID.TOKENS, receiver_roles=(Role.CPO, Role.HUB), render=_render_for_push)
    )
    pull_module_register(
        PullModule(
            module=ModuleID.TOKENS,
            upsert=_upsert_from_pull,
            remove_missing=_invalidate_missing,
            key=_pull_key,
            sender_role=Role.EMSP,
            receiver_role=Role.CPO,
        )
    )
