"""Sessions services: the only writers of Session (STYLE.md §4).

Receiver side (partners' sessions, we are the eMSP, REFERENCE §7.3): PUT creates or replaces (charging_periods
included), PATCH merges, needs last_updated and APPENDS charging_periods, URL ids must match body ids (2001), a
partner writes only under its own parties (404), an older last_updated never overwrites newer data, a rejected
request changes nothing. Both writes build the whole Session, check it against the spec's field table and the rules
below, and store it with its cached JSON in one write.

Own side (we are the CPO): `session_start` / `session_update` / `session_stop` (platform API, admin, the charge
point gateway) write our sessions and queue a push, in the same transaction, to the one registered eMSP partner that
owns the session's token (never to anyone else): PUT when created or when charging periods were added (a PATCH
appends periods, so an outbox that merges undelivered PATCHes could send a period twice; the whole Session is
idempotent), PATCH of the changed fields otherwise. `session_stop` sends `signals.session_completed`.

Charging preferences (REFERENCE §7.1, §7.2): answered for our own sessions (`session_charging_preferences_set`) and
sent to a partner CPO for its sessions (`session_charging_preferences_send`); both keep the answer on the session.

Numbers stay exact: every OCPI `number` becomes a Decimal (the digits the partner wrote) before it is stored, and the
cached JSON is written from those Decimals.
"""

import logging
import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from ocpi_core.client import OcpiClient, PartnerCallError
from ocpi_core.constants import InterfaceRole, ModuleID, Role
from ocpi_core.db import retry_on_conflict
from ocpi_core.envelope import format_datetime_up, own_stamp, parse_datetime
from ocpi_core.exceptions import InvalidParameters, NotFound, UnableToUseClientApi, UnknownLocation
from ocpi_core.mapping import OcpiMapper
from ocpi_core.models import Delivery, Partner, Party
from ocpi_core.push import PushModule, outbox_add, push_module_register, token_owner_addressee
from ocpi_core.routing import Routing
from ocpi_core.selectors import hub_relayed_party, partner_assert_owns
from ocpi_core.sync import PullModule, pull_module_register
from ocpi_core.validation import object_fields, validate
from sessions_app.models import ChargingPreferencesResponse, Session, SessionStatus
from sessions_app.signals import session_completed
from tariffs.models import decimalize, dumps_exact, exact, loads_exact

logger = logging.getLogger(__name__)

SESSION = OcpiMapper("Session")

# Session fields whose numbers are money or quantities: stored as Decimals.
EXACT_FIELDS = {"charging_periods": "ChargingPeriod", "total_cost": "Price"}

CHARGING_PREFERENCES_CAPABLE = "CHARGING_PREFERENCES_CAPABLE"
NOT_APPLICABLE = "#NA"  # evse_uid / connector_id of a reservation without an assigned EVSE (REFERENCE §7.4)
FINAL_STATUSES = (SessionStatus.COMPLETED, SessionStatus.INVALID)

_CURRENCY = re.compile(r"[A-Z]{3}")
_KWH_LIMIT = Decimal(10) ** 13  # the kwh column holds 20 digits, 6 after the point
_PROFILE_TARIFF_TYPES = {"CHEAP": "PROFILE_CHEAP", "FAST": "PROFILE_FAST", "GREEN": "PROFILE_GREEN"}


@dataclass(frozen=True)
class Key:
    """Where a session lives: its CPO party and its id (CiStrings: compared case-insensitively)."""

    country_code: str
    party_id: str
    session_id: str


@dataclass(frozen=True)
class WriteResult:
    """What a write did: `created` (answer 201) or `ignored` (older than what we hold: acknowledged, not applied)."""

    session: Session
    created: bool = False
    ignored: bool = False


# --- rendering and lookups ---


def _order(data: dict[str, Any]) -> dict[str, Any]:
    """The Session's fields in spec order, absent optionals (and empty lists) left out."""
    out: dict[str, Any] = {}
    for rule in object_fields("Session"):
        value = data.get(rule.name)
        if value is None or (rule.card in ("*", "+") and value == []):
            continue
        out[rule.name] = value
    return out


def session_render(session: Session) -> dict[str, Any]:
    """The session as OCPI JSON (a dict, numbers as Decimals): the cached document, or rendered from the row."""
    if session.doc:
        data: dict[str, Any] = loads_exact(session.doc)
        return data
    data = SESSION.to_ocpi(session)
    return _order(data)


def session_doc(session: Session) -> str:
    """The cached OCPI JSON text of a session (rendered when the cache is empty)."""
    return session.doc or dumps_exact(session_render(session)).decode()


def session_find(key: Key, *, lock: bool = False) -> Session | None:
    """A session by CPO party and id (CiString: case-insensitive)."""
    queryset = Session.objects.filter(
        country_code__lower=key.country_code.lower(),
        party_id__lower=key.party_id.lower(),
        ocpi_id__lower=key.session_id.lower(),
    )
    if lock:
        queryset = queryset.select_for_update()
    return queryset.first()


def session_get(*, partner: Partner, key: Key) -> str:
    """Receiver GET of a session a partner sent us, as OCPI JSON text (404 when unknown or not its own)."""
    partner_assert_owns(partner=partner, country_code=key.country_code, party_id=key.party_id)
    session = session_find(key)
    if session is None or session.partner_id != partner.pk:
        raise NotFound(f"Unknown session {key.session_id}")
    return session_doc(session)


def sessions_for_partner(
    *, partner: Partner | None, routing: Routing, cpo_parties: QuerySet[Party]
) -> QuerySet[Session]:
    """Our own sessions of `cpo_parties` a partner may see: those whose token belongs to one of its parties.

    Sessions go only to the eMSP concerned (REFERENCE §2.5: a server may return a subset). A hub relays for others:
    it sees the sessions of the party named in `OCPI-from-*`, or all of them when it names none or itself.
    """
    owners = Q(pk__in=[])
    for party in cpo_parties:
        owners |= Q(country_code__lower=party.country_code.lower(), party_id__lower=party.party_id.lower())
    queryset = Session.objects.filter(owners, partner__isnull=True)
    if partner is None:
        return queryset
    if partner.parties.filter(role=Role.HUB).exists():
        relayed = hub_relayed_party(partner=partner, routing=routing)
        if relayed is not None:
            return queryset.filter(token_country_code=relayed[0], token_party_id=relayed[1])
        return queryset
    tokens = Q(pk__in=[])
    for country_code, party_id in partner.parties.values_list("country_code", "party_id"):
        tokens |= Q(token_country_code=country_code.upper(), token_party_id=party_id.upper())
    return queryset.filter(tokens)


# --- validation ---


def _same(a: Any, b: str) -> bool:
    return isinstance(a, str) and a.lower() == b.lower()


def _number(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return exact(value)
    except (TypeError, ValueError, ArithmeticError):
        return None


def _plain(value: Any) -> Any:
    """A copy the field validator reads: Decimals (from Python callers, never on the wire) as JSON numbers."""
    if isinstance(value, dict):
        return {name: _plain(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, Decimal):
        return float(value)
    return value


def _check_rules(data: dict[str, Any]) -> None:
    """Rules the field table cannot express (REFERENCE §7.4): 2001 naming every field that breaks one."""
    errors: list[str] = []
    if not _CURRENCY.fullmatch(data["currency"]):
        errors.append("currency: must be an ISO 4217 code of 3 upper-case letters, e.g. EUR")
    kwh = _number(data["kwh"])
    if kwh is None or kwh < 0 or kwh >= _KWH_LIMIT:
        errors.append("kwh: must be a finite number, not negative")
    start, end = parse_datetime(data["start_date_time"]), data.get("end_date_time")
    if end and parse_datetime(end) < start:
        errors.append("end_date_time: must not be before start_date_time")
    cost = data.get("total_cost")
    if isinstance(cost, dict):
        excl, incl = _number(cost.get("excl_vat")), _number(cost.get("incl_vat"))
        if excl is None or (cost.get("incl_vat") is not None and incl is None):
            errors.append("total_cost: numbers must be finite")
        elif incl is not None and excl > incl:
            errors.append("total_cost.excl_vat: must not be more than incl_vat")
    for i, period in enumerate(data.get("charging_periods") or []):
        for j, dimension in enumerate(period["dimensions"]):
            volume = _number(dimension["volume"])
            if volume is None:
                errors.append(f"charging_periods[{i}].dimensions[{j}].volume: must be a finite number")
    if errors:
        raise InvalidParameters("; ".join(errors))


def session_validate(*, key: Key, data: Any) -> dict[str, Any]:
    """Every check a whole Session must pass (2001 naming the field): the spec's field table, URL ids equal to body
    ids, and the rules above. `data` is OCPI JSON (DateTimes as strings); Python callers may give Decimals."""
    validate("Session", _plain(data))
    for name, url_value in (("country_code", key.country_code), ("party_id", key.party_id), ("id", key.session_id)):
        if not _same(data.get(name), url_value):
            raise InvalidParameters(f"{name}: {data.get(name)!r} in the body does not match {url_value!r} in the URL")
    _check_rules(data)
    return data


def _exact_doc(data: dict[str, Any]) -> dict[str, Any]:
    """The validated Session with every number as a Decimal, in spec order."""
    out = dict(data)
    try:
        out["kwh"] = exact(out["kwh"])
        for name, type_name in EXACT_FIELDS.items():
            if out.get(name) is not None:
                out[name] = decimalize(type_name, out[name])
    except (ValueError, ArithmeticError) as exc:
        raise InvalidParameters("numbers must be finite") from exc
    return _order(out)


def _store(session: Session, doc: dict[str, Any]) -> Session:
    """Write a whole (validated, exact) Session document onto the row and its cache: one save."""
    for name, value in SESSION.from_ocpi(doc).items():
        setattr(session, name, value)
    token = doc["cdr_token"]
    session.token_country_code = str(token["country_code"]).upper()
    session.token_party_id = str(token["party_id"]).upper()
    session.token_uid = str(token["uid"])
    session.doc = dumps_exact(doc).decode()
    session.save()
    return session


# --- receiver: partners' sessions ---


@retry_on_conflict
@transaction.atomic
def session_put(*, partner: Partner, key: Key, data: Any) -> WriteResult:
    """PUT of a partner's Session: create or replace, charging_periods included (REFERENCE §7.3).

    A body older than the stored session is acknowledged and ignored (`ignored`); the answer is 201 when `created`.
    """
    partner_assert_owns(partner=partner, country_code=key.country_code, party_id=key.party_id)
    data = session_validate(key=key, data=data)
    doc = _exact_doc(data)
    session = session_find(key, lock=True)
    if session is not None and session.partner_id != partner.pk:
        raise NotFound(f"Session {key.session_id} belongs to another platform")
    if session is not None and parse_datetime(data["last_updated"]) < session.last_updated:
        return WriteResult(session, ignored=True)
    created = session is None
    return WriteResult(_store(session or Session(partner=partner), doc), created=created)


@retry_on_conflict
@transaction.atomic
def session_patch(*, partner: Partner, key: Key, data: Any) -> WriteResult:
    """PATCH of a partner's Session: the given fields replace the stored ones, charging_periods are appended, and
    last_updated is required (2001 without). An unknown session is a 404: a PATCH never creates one."""
    partner_assert_owns(partner=partner, country_code=key.country_code, party_id=key.party_id)
    validate("Session", data, partial=True)
    if not data.get("last_updated"):
        raise InvalidParameters("last_updated: is required in a PATCH")
    for name, url_value in (("country_code", key.country_code), ("party_id", key.party_id), ("id", key.session_id)):
        if name in data and not _same(data.get(name), url_value):
            raise InvalidParameters(f"{name}: {data.get(name)!r} in the body does not match {url_value!r} in the URL")
    session = session_find(key, lock=True)
    if session is None or session.partner_id != partner.pk:
        raise NotFound(f"Unknown session {key.session_id}")
    if parse_datetime(data["last_updated"]) < session.last_updated:
        return WriteResult(session, ignored=True)
    stored = session_render(session)
    merged = {**stored, **{name: value for name, value in data.items() if name != "charging_periods"}}
    merged = {name: value for name, value in merged.items() if value is not None}
    added = data.get("charging_periods") or []
    if added:
        merged["charging_periods"] = [*(stored.get("charging_periods") or []), *added]
    merged = session_validate(key=key, data=merged)
    return WriteResult(_store(session, _exact_doc(merged)))


# --- own sessions (we are the CPO) ---


def session_token_partner(session: Session) -> Partner | None:
    """The registered eMSP partner that owns the session's token party (None when there is none)."""
    return (
        Partner.objects.filter(
            status=Partner.Status.REGISTERED,
            parties__role=Role.EMSP,
            parties__country_code__iexact=session.token_country_code,
            parties__party_id__iexact=session.token_party_id,
        )
        .order_by("pk")
        .first()
    )


def _push(session: Session, method: str, fields: list[str] | None = None) -> bool:
    """Queue a change of an own session for the token's eMSP partner only (same transaction); False when that
    partner is unknown, has push disabled or offers no Sessions Receiver."""
    partner = session_token_partner(session)
    if partner is None or not partner.push_enabled:
        return False
    if partner.endpoint_url(ModuleID.SESSIONS, InterfaceRole.RECEIVER) is None:
        return False
    outbox_add(
        module=ModuleID.SESSIONS,
        country_code=session.country_code,
        party_id=session.party_id,
        object_path=session.ocpi_id,
        method=method,
        fields=sorted(set(fields or ())),
        partners=[partner],
    )
    return True


@transaction.atomic
def session_push_again(session: Session) -> bool:
    """Queue one of our own sessions again, whole (PUT), for the token's eMSP; False when there is none to push to."""
    return session.is_own and _push(session, Delivery.Method.PUT)


def _stamp(session: Session | None, at: datetime | None) -> datetime:
    """`at` (or now) for last_updated, never older than what is stored: an own change is never ignored."""
    return own_stamp(session.last_updated if session is not None else None, at)


def _own_location(*, location_id: str, country_code: str | None, party_id: str | None) -> Any:
    from locations.models import Location

    cpo = Party.objects.filter(partner__isnull=True, role=Role.CPO)
    if country_code and party_id:
        cpo = cpo.filter(country_code__iexact=country_code, party_id__iexact=party_id)
    owners = Q(pk__in=[])
    for party in cpo:
        owners |= Q(country_code__lower=party.country_code.lower(), party_id__lower=party.party_id.lower())
    location = (
        Location.objects.filter(owners, partner__isnull=True, ocpi_id__lower=location_id.lower()).order_by("pk").first()
    )
    if location is None:
        raise UnknownLocation(f"location_id: {location_id} is not one of our locations")
    return location


def _snapshot(location: Any, evse_uid: str, connector_id: str) -> tuple[dict[str, Any], list[str]]:
    """(snapshot, the connector's tariff ids): the location with only the session's EVSE and connector, the
    connector's own tariffs and the time zone, as they are now (REFERENCE §8.1: a CDR is sealed at the start)."""
    from tariffs.models import Tariff

    doc: dict[str, Any] = loads_exact(location.doc) if location.doc else {}
    if not doc:
        from locations.services import location_render_rows

        doc = loads_exact(dumps_exact(location_render_rows(location.pk)))
    evses = doc.pop("evses", None) or []
    tariff_ids: list[str] = []
    if evse_uid != NOT_APPLICABLE:
        evse = next((e for e in evses if str(e.get("uid", "")).lower() == evse_uid.lower()), None)
        if evse is None:
            raise InvalidParameters(f"evse_uid: {evse_uid} is not an EVSE of location {location.ocpi_id}")
        if evse.get("status") == "REMOVED":
            raise InvalidParameters(f"evse_uid: EVSE {evse_uid} has been removed")
        connectors = evse.get("connectors") or []
        connector = None
        if connector_id != NOT_APPLICABLE:
            connector = next((c for c in connectors if str(c.get("id", "")).lower() == connector_id.lower()), None)
            if connector is None:
                raise InvalidParameters(f"connector_id: {connector_id} is not a connector of EVSE {evse_uid}")
            tariff_ids = [t for t in connector.get("tariff_ids") or [] if isinstance(t, str)]
        evse = {**evse, "connectors": [connector] if connector is not None else connectors}
        doc = {**doc, "evses": [evse]}
    tariffs = []
    for tariff_id in tariff_ids:
        tariff = Tariff.objects.filter(
            partner__isnull=True,
            country_code__lower=location.country_code.lower(),
            party_id__lower=location.party_id.lower(),
            ocpi_id__lower=tariff_id.lower(),
        ).first()
        if tariff is not None:
            from tariffs.services import tariff_doc

            tariffs.append(loads_exact(tariff_doc(tariff)))
    return {"location": doc, "tariffs": tariffs, "time_zone": location.time_zone}, tariff_ids


@retry_on_conflict
@transaction.atomic
def session_start(
    *,
    location_id: str,
    evse_uid: str,
    connector_id: str,
    cdr_token: dict[str, Any],
    auth_method: str,
    authorization_reference: str | None = None,
    session_id: str | None = None,
    status: str = SessionStatus.ACTIVE,
    start: datetime | None = None,
    meter_id: str | None = None,
    country_code: str | None = None,
    party_id: str | None = None,
) -> Session:
    """Create one of our own sessions at one of our own locations, and push it (PUT) to the token's eMSP.

    The currency is that of the connector's first tariff (the setting `OCPI_DEFAULT_CURRENCY` when it has none); the
    location, EVSE, connector and tariffs are kept in `snapshot` as they are now. Raises 2003 for an unknown
    location and 2001 for anything else that does not fit (naming the field).
    """
    location = _own_location(location_id=location_id, country_code=country_code, party_id=party_id)
    snapshot, _ = _snapshot(location, evse_uid, connector_id)
    currency = next((str(t["currency"]) for t in snapshot["tariffs"] if t.get("currency")), None)
    evse = (snapshot["location"].get("evses") or [{}])[0]
    connector = (evse.get("connectors") or [{}])[0]
    key = Key(location.country_code, location.party_id, session_id or str(uuid.uuid4()))
    if session_find(key) is not None:
        raise InvalidParameters(f"id: session {key.session_id} exists already")
    now = _stamp(None, start)
    data: dict[str, Any] = {
        "country_code": location.country_code,
        "party_id": location.party_id,
        "id": key.session_id,
        "start_date_time": format_datetime_up(start or now),
        "kwh": Decimal("0"),
        "cdr_token": cdr_token,
        "auth_method": auth_method,
        "authorization_reference": authorization_reference,
        "location_id": location.ocpi_id,
        "evse_uid": evse.get("uid", evse_uid) if evse_uid != NOT_APPLICABLE else NOT_APPLICABLE,
        "connector_id": connector.get("id", connector_id) if connector_id != NOT_APPLICABLE else NOT_APPLICABLE,
        "meter_id": meter_id,
        "currency": currency or settings.OCPI_DEFAULT_CURRENCY,
        "status": status,
        "last_updated": format_datetime_up(now),
    }
    data = session_validate(key=key, data={name: value for name, value in data.items() if value is not None})
    session = _store(Session(partner=None, snapshot=snapshot), _exact_doc(data))
    _push(session, Delivery.Method.PUT)
    return session


def _own_locked(session: Session) -> Session:
    locked = Session.objects.select_for_update().filter(pk=session.pk, partner__isnull=True).first()
    if locked is None:
        raise NotFound(f"Unknown session {session.ocpi_id}")
    return locked


def _change_own(session: Session, changes: dict[str, Any], at: datetime | None, *, whole: bool = False) -> Session:
    """Apply changes to an own session's document, validate it whole, store it and queue the push."""
    doc = session_render(session)
    changed = [name for name, value in changes.items() if doc.get(name) != value]
    if not changed and not whole:
        return session
    doc.update(changes)
    doc["last_updated"] = format_datetime_up(_stamp(session, at))
    key = Key(session.country_code, session.party_id, session.ocpi_id)
    doc = session_validate(key=key, data={name: value for name, value in doc.items() if value is not None})
    _store(session, _exact_doc(doc))
    if whole:
        _push(session, Delivery.Method.PUT)
    else:
        _push(session, Delivery.Method.PATCH, [*changed, "last_updated"])
    return session


@retry_on_conflict
@transaction.atomic
def session_update(
    *,
    session: Session,
    kwh: Decimal | None = None,
    charging_period: dict[str, Any] | None = None,
    status: str | None = None,
    total_cost: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> Session:
    """Change one of our own sessions: energy so far, a new charging period (appended), status, total cost.

    Pushed to the token's eMSP: a PATCH of the changed fields, or the whole Session (PUT) when a period was added.
    A COMPLETED or INVALID session does not change any more (2001).
    """
    session = _own_locked(session)
    if session.status in FINAL_STATUSES:
        raise InvalidParameters(f"status: session {session.ocpi_id} is {session.status} and no longer changes")
    changes: dict[str, Any] = {}
    if kwh is not None:
        changes["kwh"] = kwh
    if status is not None:
        changes["status"] = status
        if status == SessionStatus.ACTIVE and session.status in (SessionStatus.PENDING, SessionStatus.RESERVATION):
            # REFERENCE §7.1: the moment it started
            changes["start_date_time"] = format_datetime_up(at or timezone.now())
    if total_cost is not None:
        changes["total_cost"] = total_cost
    whole = False
    if charging_period is not None:
        validate("ChargingPeriod", _plain(charging_period))
        changes["charging_periods"] = [*(session_render(session).get("charging_periods") or []), charging_period]
        whole = True
    return _change_own(session, changes, at, whole=whole)


@retry_on_conflict
@transaction.atomic
def session_stop(*, session: Session, at: datetime | None = None, status: str = SessionStatus.COMPLETED) -> Session:
    """End one of our own sessions (end_date_time, COMPLETED or INVALID), push the PATCH, then send
    `session_completed` in the same transaction (the CDR is made from it). Stopping an ended session: 2001."""
    if status not in FINAL_STATUSES:
        raise InvalidParameters("status: a stopped session is COMPLETED or INVALID")
    session = _own_locked(session)
    if session.status in FINAL_STATUSES:
        raise InvalidParameters(f"status: session {session.ocpi_id} is already {session.status}")
    end = _stamp(session, at)
    if end < session.start_date_time:
        end = session.start_date_time
    _change_own(session, {"end_date_time": format_datetime_up(end), "status": status}, at)
    session_completed.send(sender=Session, session=session)
    return session


# --- charging preferences ---


def _plain_preferences(data: Any) -> dict[str, Any]:
    validate("ChargingPreferences", _plain(data))
    energy = _number(data.get("energy_need"))
    if data.get("energy_need") is not None and (energy is None or energy < 0):
        raise InvalidParameters("energy_need: must be a finite number, not negative")
    prefs = dict(data)
    if prefs.get("energy_need") is not None:
        prefs["energy_need"] = energy
    return prefs


def _profile_supported(session: Session, profile_type: str) -> bool:
    """REGULAR always; CHEAP/FAST/GREEN when one of the connector's tariffs has that profile type (REFERENCE §7.4)."""
    wanted = _PROFILE_TARIFF_TYPES.get(profile_type)
    if wanted is None:
        return True
    from tariffs.models import Tariff

    ids = [t.lower() for t in _connector_tariff_ids(session)]
    owned = Tariff.objects.filter(
        partner__isnull=True, country_code__iexact=session.country_code, party_id__iexact=session.party_id, type=wanted
    )
    return any(t.lower() in ids for t in owned.values_list("ocpi_id", flat=True))


def _current_evse(session: Session) -> dict[str, Any] | None:
    """The session's EVSE as it is now (our own location), else as it was at the start (snapshot)."""
    from locations.models import Location

    location = Location.objects.filter(
        partner__isnull=True,
        country_code__lower=session.country_code.lower(),
        party_id__lower=session.party_id.lower(),
        ocpi_id__lower=session.location_id.lower(),
    ).first()
    doc: dict[str, Any] = loads_exact(location.doc) if location is not None and location.doc else {}
    if not doc and session.snapshot:
        doc = session.snapshot.get("location") or {}
    for evse in doc.get("evses") or []:
        if str(evse.get("uid", "")).lower() == session.evse_uid.lower():
            result: dict[str, Any] = evse
            return result
    return None


def _connector_tariff_ids(session: Session) -> list[str]:
    evse = _current_evse(session) or {}
    for connector in evse.get("connectors") or []:
        if str(connector.get("id", "")).lower() == session.connector_id.lower():
            return [t for t in connector.get("tariff_ids") or [] if isinstance(t, str)]
    return []


@transaction.atomic
def session_charging_preferences_set(
    *, partner: Partner | None, session_id: str, sessions: QuerySet[Session], data: Any
) -> str:
    """PUT ChargingPreferences on one of our own sessions (CPO Sender, REFERENCE §7.2): a ChargingPreferencesResponse.

    `sessions` are the sessions the caller may see: another one is unknown (404). An EVSE without
    CHARGING_PREFERENCES_CAPABLE answers HTTP 404 with 2001 (mod_sessions, ChargingPreferencesResponse). Accepted
    preferences are stored on the session; the answer is kept either way.
    """
    session = sessions.select_for_update().filter(ocpi_id__lower=session_id.lower()).first()
    if session is None:
        raise NotFound(f"Unknown session {session_id}")
    prefs = _plain_preferences(data)
    evse = _current_evse(session)
    if evse is None or CHARGING_PREFERENCES_CAPABLE not in (evse.get("capabilities") or []):
        raise InvalidParameters(
            f"EVSE {session.evse_uid} does not support charging preferences ({CHARGING_PREFERENCES_CAPABLE})",
            http_status=404,
        )
    now = timezone.now()
    departure = prefs.get("departure_time")
    if session.status in FINAL_STATUSES:
        answer = ChargingPreferencesResponse.NOT_POSSIBLE
    elif not _profile_supported(session, prefs["profile_type"]):
        answer = ChargingPreferencesResponse.PROFILE_TYPE_NOT_SUPPORTED
    elif prefs.get("discharge_allowed") and departure is None:
        answer = ChargingPreferencesResponse.DEPARTURE_REQUIRED
    elif prefs.get("discharge_allowed") and prefs.get("energy_need") is None:
        answer = ChargingPreferencesResponse.ENERGY_NEED_REQUIRED
    elif departure is not None and parse_datetime(departure) <= now:
        answer = ChargingPreferencesResponse.NOT_POSSIBLE
    else:
        answer = ChargingPreferencesResponse.ACCEPTED
        session.charging_preferences = prefs
    session.charging_preferences_result = answer
    session.charging_preferences_at = now
    session.save(update_fields=["charging_preferences", "charging_preferences_result", "charging_preferences_at"])
    return str(answer)


def session_charging_preferences_send(*, session: Session, data: Any) -> str:
    """Send ChargingPreferences for a partner's session to its CPO (we are the eMSP) and keep the answer.

    Raises 2001 for invalid preferences or a session that is ours or ended, 3001 when the CPO cannot be reached or
    refuses (its message is kept on the session).
    """
    if session.partner is None:
        raise InvalidParameters("session: charging preferences are sent for partners' sessions only")
    if session.status in FINAL_STATUSES:
        raise InvalidParameters(f"status: session {session.ocpi_id} is {session.status}")
    prefs = _plain_preferences(data)
    partner = session.partner
    endpoint = partner.endpoint_url(ModuleID.SESSIONS, InterfaceRole.SENDER)
    if endpoint is None:
        raise UnableToUseClientApi(f"{partner} offers no sessions SENDER interface")
    url = f"{endpoint.rstrip('/')}/{session.ocpi_id}/charging_preferences"
    routing = Routing(session.token_country_code, session.token_party_id, session.country_code, session.party_id)
    body = {**prefs}
    if body.get("energy_need") is not None:
        body["energy_need"] = exact(body["energy_need"])
    try:
        result = OcpiClient.for_partner(partner, routing=routing).put(url, json=body)
    except PartnerCallError as exc:
        _keep_answer(session, prefs, f"ERROR: {exc.message}"[:32], accepted=False)
        raise UnableToUseClientApi(f"The CPO did not accept the preferences: {exc.message}") from exc
    answer = result.data if isinstance(result.data, str) else ""
    if answer not in ChargingPreferencesResponse.values:
        _keep_answer(session, prefs, "ERROR: unknown answer", accepted=False)
        raise UnableToUseClientApi(f"The CPO answered {result.data!r}, not a ChargingPreferencesResponse")
    _keep_answer(session, prefs, answer, accepted=answer == ChargingPreferencesResponse.ACCEPTED)
    return answer


def _keep_answer(session: Session, prefs: dict[str, Any], answer: str, *, accepted: bool) -> None:
    session.charging_preferences_result = answer
    session.charging_preferences_at = timezone.now()
    fields = ["charging_preferences_result", "charging_preferences_at"]
    if accepted:
        session.charging_preferences = prefs
        fields.append("charging_preferences")
    session.save(update_fields=fields)


# --- push and pull ---


def _render_for_push(
    *, country_code: str, party_id: str, object_path: str, method: str, fields: list[str]
) -> dict[str, Any] | None:
    """The own session as it is now (numbers as Decimals): whole for a PUT, the changed fields for a PATCH."""
    session = session_find(Key(country_code, party_id, object_path))
    if session is None or not session.is_own:
        return None
    doc = session_render(session)
    if method == Delivery.Method.PATCH and fields:
        wanted = {*fields, "last_updated"} - {"charging_periods"}
        return {name: value for name, value in doc.items() if name in wanted}
    return doc


def _upsert_from_pull(*, partner: Partner, data: Any) -> tuple[str, str, str]:
    """One Session from a partner CPO's Sender list: stored like a PUT from that partner."""
    if not isinstance(data, dict):
        raise InvalidParameters("list item: must be a Session object")
    key = Key(str(data.get("country_code", "")), str(data.get("party_id", "")), str(data.get("id", "")))
    session_put(partner=partner, key=key, data=data)
    return (key.country_code.upper(), key.party_id.upper(), key.session_id.upper())


def _remove_missing(*, partner: Partner, keep: set[tuple[str, str, str]]) -> int:
    """Sessions are never deleted (REFERENCE §2.5): a full pull that no longer lists one keeps it as it is."""
    return 0


def register_push_and_pull() -> None:
    push_module_register(
        PushModule(
            module=ModuleID.SESSIONS,
            receiver_roles=(Role.EMSP, Role.SCSP, Role.HUB),
            render=_render_for_push,
            addressee=token_owner_addressee(Session),  # the eMSP of the session's token
        )
    )
    pull_module_register(PullModule(module=ModuleID.SESSIONS, upsert=_upsert_from_pull, remove_missing=_remove_missing))


def session_duration(session: Session) -> timedelta | None:
    """How long the session lasted (or has lasted so far, for a running one); None before it started."""
    end = session.end_date_time or (None if session.status in FINAL_STATUSES else timezone.now())
    if end is None:
        return None
    return max(end - session.start_date_time, timedelta(0))
