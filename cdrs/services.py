"""CDRs services: the only writers of Cdr (STYLE.md §4).

Receiver side (partners' CDRs, REFERENCE §8.2): a POST stores a CDR once. The same CDR again is acknowledged
(idempotent, same Location); a different CDR reusing a stored (country_code, party_id, id) is refused with 2001
(HTTP 200, like every OCPI-layer error: ocpi_core.exceptions.OcpiError), nothing changed (CDRs are immutable;
corrections come as credit CDRs with a new id). The body's owner must be one of the calling partner's parties (2001
naming `country_code`/`party_id`: there is no URL to answer 404 for), and the token's owner one of our own eMSP
parties (a CPO sends a CDR only to the eMSP concerned, §8.1). A CDR newly
stored is priced again from its tariff and compared (cdrs.reconciliation): the outcome is kept beside it, and never
refuses it.

Own side (we are the CPO): `cdr_generate` turns a completed own session into its CDR, sealed with the location, EVSE,
connector, tariffs and token as they were at the session's start (the session's snapshot), priced by the tariff
engine; `cdr_credit` issues the credit CDR of one of our CDRs. Both are POSTed, through the outbox, to the token's
eMSP partner only. Money and kWh stay exact: every OCPI `number` is a Decimal from the JSON text onwards.
"""

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import uuid4

from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from cdrs.models import Cdr
from cdrs.reconciliation import cdr_reconcile
from ocpi_core.client import OcpiResult
from ocpi_core.constants import InterfaceRole, ModuleID, Role
from ocpi_core.db import retry_on_conflict
from ocpi_core.envelope import format_datetime, format_datetime_up, parse_datetime
from ocpi_core.exceptions import InvalidParameters, NotFound
from ocpi_core.models import Delivery, Partner, Party
from ocpi_core.push import PushModule, outbox_add, push_module_register, token_owner_addressee
from ocpi_core.routing import Routing
from ocpi_core.selectors import hub_relayed_party
from ocpi_core.sync import PullModule, pull_module_register
from ocpi_core.validation import object_fields, validate
from tariffs.models import decimalize, dumps_exact, exact, loads_exact

logger = logging.getLogger(__name__)

_CURRENCY = re.compile(r"[A-Z]{3}")
# The Price fields of a CDR: all negated in a credit CDR (REFERENCE §8.1 names total_cost only; the breakdown
# is negated with it so that the credit CDR adds up).
PRICE_FIELDS = (
    "total_cost",
    "total_fixed_cost",
    "total_energy_cost",
    "total_time_cost",
    "total_parking_cost",
    "total_reservation_cost",
)
NORMAL_ID_MAX = 36  # a normal CDR id; 39 only leaves room for a credit suffix (REFERENCE §8.4)
CREDIT_SUFFIX = "-C"
_HOUR = Decimal(3600)
_INVALID = "INVALID"
# CdrDimensionTypes marked "Session Only": they SHALL only be used in Sessions, never in a CDR (mod_cdrs,
# CdrDimensionType). An average CURRENT/POWER is what the tariff engine reads as the period's min and max.
SESSION_ONLY_DIMENSIONS = frozenset({"CURRENT", "ENERGY_EXPORT", "ENERGY_IMPORT", "POWER", "STATE_OF_CHARGE"})
_AS_MIN_MAX = ("CURRENT", "POWER")


class CdrConflict(InvalidParameters):
    """A different CDR under an id we already hold: 2001 (CDRs are immutable, REFERENCE §8.1)."""


@dataclass(frozen=True)
class ReceiveResult:
    """What a POST did: `created` (answer 201) or acknowledged a CDR we already held (200)."""

    cdr: Cdr
    created: bool


# --- validation ---


def _plain(value: Any) -> Any:
    """A copy the field validator reads: Decimals (from Python callers, never on the wire) as JSON numbers."""
    if isinstance(value, dict):
        return {name: _plain(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, Decimal):
        return float(value)
    return value


def _check_price(name: str, price: Any, credit: bool, errors: list[str]) -> None:
    if not isinstance(price, dict):
        return
    excl, incl = price.get("excl_vat"), price.get("incl_vat")
    if name == "total_cost" and isinstance(excl, Decimal):
        if not credit and excl < 0:
            errors.append(f"{name}.excl_vat: must not be negative (only a credit CDR has negative amounts)")
        if credit and excl > 0:
            errors.append(f"{name}.excl_vat: must not be positive in a credit CDR (amounts are negated)")
    if isinstance(excl, Decimal) and isinstance(incl, Decimal) and abs(incl) < abs(excl):
        errors.append(f"{name}.incl_vat: must not be less than excl_vat (VAT is never negative)")


def _check_rules(data: dict[str, Any]) -> None:
    """Rules the field table cannot express (REFERENCE §8.1, §8.4): 2001 naming every field that breaks one."""
    errors: list[str] = []
    credit = data.get("credit") is True
    if not credit and len(data["id"]) > NORMAL_ID_MAX:
        errors.append(f"id: must be at most {NORMAL_ID_MAX} characters (39 only for a credit CDR)")
    if credit and not data.get("credit_reference_id"):
        errors.append("credit_reference_id: is required in a credit CDR (credit is true)")
    if not credit and data.get("credit_reference_id"):
        errors.append("credit: must be true when credit_reference_id is given")
    if data.get("credit_reference_id") and str(data["credit_reference_id"]).lower() == data["id"].lower():
        errors.append("credit_reference_id: must name another CDR than this one")
    if not _CURRENCY.fullmatch(data["currency"]):
        errors.append("currency: must be an ISO 4217 code of 3 upper-case letters, e.g. EUR")
    if parse_datetime(data["end_date_time"]) < parse_datetime(data["start_date_time"]):
        errors.append("end_date_time: must not be before start_date_time")
    for name in PRICE_FIELDS:
        _check_price(name, data.get(name), credit, errors)
    for name in ("total_energy", "total_time", "total_parking_time"):
        value = data.get(name)
        if isinstance(value, Decimal) and value < 0:
            errors.append(f"{name}: must not be negative")
    parking, total = data.get("total_parking_time"), data.get("total_time")
    if isinstance(parking, Decimal) and isinstance(total, Decimal) and parking > total:
        errors.append("total_parking_time: must not be more than total_time")
    if errors:
        raise InvalidParameters("; ".join(errors))


def cdr_validate(data: Any) -> dict[str, Any]:
    """Every check a CDR must pass, received or generated (2001 naming the field): the spec's field table (with the
    embedded CdrToken, CdrLocation, Tariffs, ChargingPeriods, SignedData) and the rules of REFERENCE §8.

    Returns the CDR with every OCPI `number` as a Decimal and only the fields the spec defines, in spec order.
    """
    validate("CDR", _plain(data))
    try:
        exact_data: dict[str, Any] = decimalize("CDR", data)
    except ValueError as exc:
        raise InvalidParameters("body: numbers must be finite") from exc
    _check_rules(exact_data)
    return {rule.name: exact_data[rule.name] for rule in object_fields("CDR") if exact_data.get(rule.name) is not None}


# --- lookups ---


def cdr_find(country_code: str, party_id: str, cdr_id: str, *, lock: bool = False) -> Cdr | None:
    """A CDR by owner and id (CiStrings: case-insensitive)."""
    queryset = Cdr.objects.filter(
        country_code__lower=country_code.lower(), party_id__lower=party_id.lower(), ocpi_id__lower=cdr_id.lower()
    )
    if lock:
        queryset = queryset.select_for_update()
    return queryset.first()


def _party_q(parties: QuerySet[Party], prefix: str = "") -> Q:
    q = Q(pk__in=[])
    for party in parties:
        q |= Q(**{f"{prefix}country_code__iexact": party.country_code, f"{prefix}party_id__iexact": party.party_id})
    return q


def cdr_list_for_partner(*, partner: Partner, routing: Routing, own_cpo_parties: QuerySet[Party]) -> QuerySet[Cdr]:
    """CPO Sender: our own CDRs of the addressed CPO parties whose token belongs to one of the partner's parties
    (REFERENCE §8.1: a CPO returns only relevant CDRs). A hub relays for others: it sees the CDRs of the party named
    in `OCPI-from-*` (REFERENCE §2.10, the requesting party), or of every party it relays for when it names none or
    itself."""
    queryset = Cdr.objects.filter(_party_q(own_cpo_parties), partner__isnull=True)
    if not partner.parties.filter(role=Role.HUB).exists():
        return queryset.filter(_party_q(partner.parties.all(), "token_"))
    relayed = hub_relayed_party(partner=partner, routing=routing)
    if relayed is not None:
        queryset = queryset.filter(token_country_code__iexact=relayed[0], token_party_id__iexact=relayed[1])
    return queryset


def cdr_get_received(*, partner: Partner, pk: int) -> Cdr:
    """GET at the Location URL of a CDR a partner POSTed (or we pulled): only that partner reads it (404 otherwise)."""
    cdr = Cdr.objects.filter(pk=pk, partner=partner).first()
    if cdr is None:
        raise NotFound("Unknown CDR")
    return cdr


def token_partner(*, country_code: str, party_id: str) -> Partner | None:
    """The registered partner with the eMSP party that owns a token (who gets the CDR of a session)."""
    party = (
        Party.objects.filter(
            partner__status=Partner.Status.REGISTERED,
            role=Role.EMSP,
            country_code__iexact=country_code,
            party_id__iexact=party_id,
        )
        .select_related("partner")
        .order_by("pk")
        .first()
    )
    return party.partner if party is not None else None


# --- writing ---


def _columns(data: dict[str, Any]) -> dict[str, Any]:
    """Model column values of a validated CDR (the searchable copies of its fields) and its exact JSON text."""
    token, location = data["cdr_token"], data["cdr_location"]
    return {
        "country_code": data["country_code"],
        "party_id": data["party_id"],
        "ocpi_id": data["id"],
        "start_date_time": parse_datetime(data["start_date_time"]),
        "end_date_time": parse_datetime(data["end_date_time"]),
        "session_id": data.get("session_id") or "",
        "token_country_code": token["country_code"],
        "token_party_id": token["party_id"],
        "token_uid": token["uid"],
        "contract_id": token["contract_id"],
        "auth_method": data["auth_method"],
        "location_id": location["id"],
        "evse_uid": location["evse_uid"],
        "currency": data["currency"],
        "credit": data.get("credit") is True,
        "credit_reference_id": data.get("credit_reference_id") or "",
        "last_updated": parse_datetime(data["last_updated"]),
        "doc": dumps_exact(data).decode(),
    }


def _credited(cdr: Cdr) -> Cdr | None:
    """The CDR a credit CDR corrects: same owner, same holder, id = credit_reference_id."""
    if not cdr.credit_reference_id:
        return None
    original = cdr_find(cdr.country_code, cdr.party_id, cdr.credit_reference_id)
    if original is None or original.partner_id != cdr.partner_id or original.credit:
        return None
    return original


def _assert_party_of(partner: Partner, data: dict[str, Any]) -> None:
    """The CDR's owner must be one of the partner's parties (a hub relays for others)."""
    if partner.parties.filter(role=Role.HUB).exists():
        return
    owner = partner.parties.filter(country_code__iexact=data["country_code"], party_id__iexact=data["party_id"])
    if not owner.exists():
        raise InvalidParameters(
            f"country_code/party_id: {data['country_code']}*{data['party_id']} is not one of your parties"
        )


def _assert_our_token(data: dict[str, Any], own_emsp_parties: QuerySet[Party] | None) -> None:
    """The token must be one of ours: a CPO sends a CDR only to the eMSP concerned (REFERENCE §8.1)."""
    token = data["cdr_token"]
    parties = own_emsp_parties if own_emsp_parties is not None else Party.objects.filter(partner__isnull=True)
    ours = parties.filter(
        partner__isnull=True,
        role=Role.EMSP,
        country_code__iexact=token["country_code"],
        party_id__iexact=token["party_id"],
    )
    if not ours.exists():
        raise InvalidParameters(
            f"cdr_token.country_code/party_id: {token['country_code']}*{token['party_id']} is not an eMSP party "
            "on this platform"
        )


@retry_on_conflict
@transaction.atomic
def cdr_receive(*, partner: Partner, data: Any, own_emsp_parties: QuerySet[Party] | None = None) -> ReceiveResult:
    """POST of a CDR by a CPO partner (or a CDR of its Sender list we pulled). Idempotent; see the module docstring.

    `own_emsp_parties` are the own eMSP parties the request is addressed to (routing headers); default: all of ours.
    """
    data = cdr_validate(data)
    _assert_party_of(partner, data)
    _assert_our_token(data, own_emsp_parties)
    current = cdr_find(data["country_code"], data["party_id"], data["id"], lock=True)
    if current is not None:
        if current.partner_id == partner.pk and decimalize("CDR", current.data) == data:
            return ReceiveResult(current, created=False)
        raise CdrConflict(
            f"id: a different CDR {data['country_code']}*{data['party_id']} {data['id']} is already stored; CDRs "
            "are immutable (correct one with a credit CDR under a new id)"
        )
    cdr = Cdr(partner=partner, **_columns(data))
    cdr.credit_of = _credited(cdr)
    cdr.full_clean(exclude=["doc", "pricing", "receiver_location"], validate_unique=False, validate_constraints=False)
    cdr.save()
    _reconcile(cdr)
    return ReceiveResult(cdr, created=True)


def _reconcile(cdr: Cdr) -> None:
    """Price a received CDR again and flag discrepancies (cdrs.reconciliation); never refuses nor fails the CDR."""
    try:
        cdr_reconcile(cdr=cdr)
    except Exception:
        logger.exception("Reconciling a received CDR failed", extra={"cdr": cdr.ocpi_id, "party": cdr.party_id})


def _push(cdr: Cdr) -> None:
    """POST an own CDR to its receiver, when that partner offers a CDRs Receiver and accepts pushes (same
    transaction as the CDR); otherwise it pulls it from our Sender."""
    receiver = cdr.receiver
    if receiver is None or not receiver.push_enabled or receiver.status != Partner.Status.REGISTERED:
        return
    if receiver.endpoint_url(ModuleID.CDRS, InterfaceRole.RECEIVER) is None:
        return
    outbox_add(
        module=ModuleID.CDRS,
        country_code=cdr.country_code,
        party_id=cdr.party_id,
        object_path=cdr.ocpi_id,
        method=Delivery.Method.POST,
        partners=[receiver],
    )


def _store_own(data: dict[str, Any], *, pricing: Any, credit_of: Cdr | None = None) -> Cdr:
    """Validate and store an own CDR, then queue its POST to the token's eMSP partner."""
    data = cdr_validate(data)
    token = data["cdr_token"]
    cdr = Cdr(
        partner=None,
        pricing=pricing,
        credit_of=credit_of,
        receiver=token_partner(country_code=token["country_code"], party_id=token["party_id"]),
        **_columns(data),
    )
    cdr.save()
    _push(cdr)
    return cdr


def _hours(seconds: float) -> Decimal:
    return (Decimal(str(seconds)) / _HOUR).quantize(Decimal("0.000001")).normalize()


def cdr_location_from_snapshot(*, location: dict[str, Any], evse_uid: str, connector_id: str) -> dict[str, Any]:
    """The CdrLocation of a session from the Location as it was at the session's start (REFERENCE §8.4): only the
    EVSE and connector used. Address, city and state are cut to the CdrLocation lengths (45/45/20), which the
    Location object outgrew (REFERENCE §16.4 item 7)."""
    evses = location.get("evses") or []
    evse = next((e for e in evses if str(e.get("uid", "")).lower() == evse_uid.lower()), evses[0] if evses else {})
    connectors = evse.get("connectors") or []
    connector = next(
        (c for c in connectors if str(c.get("id", "")).lower() == connector_id.lower()),
        connectors[0] if connectors else {},
    )
    out: dict[str, Any] = {"id": location.get("id")}
    if location.get("name"):
        out["name"] = str(location["name"])[:255]
    out["address"] = str(location.get("address", ""))[:45]
    out["city"] = str(location.get("city", ""))[:45]
    if location.get("postal_code"):
        out["postal_code"] = str(location["postal_code"])[:10]
    if location.get("state"):
        out["state"] = str(location["state"])[:20]
    out["country"] = location.get("country")
    out["coordinates"] = location.get("coordinates")
    out["evse_uid"] = evse.get("uid", evse_uid)
    out["evse_id"] = evse.get("evse_id") or evse.get("uid", evse_uid)  # EVSE.evse_id is optional, CdrLocation's not
    out["connector_id"] = connector.get("id", connector_id)
    out["connector_standard"] = connector.get("standard")
    out["connector_format"] = connector.get("format")
    out["connector_power_type"] = connector.get("power_type")
    return out


def _cdr_periods(periods: list[Any]) -> list[Any]:
    """A session's charging periods as a CDR may carry them: without the session-only dimensions (an average CURRENT
    or POWER becomes the period's MIN_ and MAX_ when those are absent, as the tariff engine priced it); a period left
    with no dimension is dropped (ChargingPeriod.dimensions is `+`), the one before it then runs on."""
    out: list[Any] = []
    for period in periods:
        dimensions = [d for d in period.get("dimensions") or [] if d.get("type") not in SESSION_ONLY_DIMENSIONS]
        present = {d.get("type") for d in dimensions}
        for dimension in period.get("dimensions") or []:
            if dimension.get("type") in _AS_MIN_MAX:
                for name in (f"MIN_{dimension['type']}", f"MAX_{dimension['type']}"):
                    if name not in present:
                        dimensions.append({"type": name, "volume": dimension["volume"]})
                        present.add(name)
        if dimensions:
            out.append({**period, "dimensions": dimensions})
    return out


def _jsonable(value: Any) -> Any:
    """The audit breakdown as JSON: Decimals as strings (exact), datetimes as OCPI DateTimes."""
    if isinstance(value, dict):
        return {str(name): _jsonable(item) for name, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return format_datetime(value)
    return value


def _session_periods(session: Any, session_data: dict[str, Any], start: datetime, end: datetime) -> list[Any]:
    """The session's charging periods; one covering the whole session (its kWh and hours) when it has none."""
    periods: list[Any] = decimalize("ChargingPeriod", session_data.get("charging_periods") or [])
    return periods or _whole_session_period(session, start, end)


def _whole_session_period(session: Any, start: datetime, end: datetime) -> list[Any]:
    """One charging period covering the whole session: its kWh and hours."""
    hours = _hours((end - start).total_seconds())
    kwh = exact(session.kwh if session.kwh is not None else 0)
    return [
        {
            # never before the session's start (rounded up): a period starting earlier is refused by the pricing
            "start_date_time": format_datetime_up(start),
            "dimensions": [{"type": "ENERGY", "volume": kwh}, {"type": "TIME", "volume": hours}],
        }
    ]


@transaction.atomic
def cdr_generate(*, session: Any) -> Cdr | None:
    """The CDR of one of our own completed sessions (sessions_app Session), stored and queued for the token's eMSP.

    Sealed (REFERENCE §8.1): location, EVSE, connector, tariffs and time zone come from the session's snapshot taken
    at its start, the token from the session. The tariff valid at the session's start prices it
    (tariffs.pricing.price_session); without one the CDR costs nothing and says so in `remark` (`total_cost` is
    required). A second call for the same session returns the CDR already made; a partner's session and an INVALID
    one get none.
    """
    from tariffs.pricing import price_session, select_tariff

    if session.partner_id is not None or session.status == _INVALID:
        return None  # a partner's session is its CPO's to bill; an INVALID one "will not be billed" (REFERENCE §7.5)
    done = (
        Cdr.objects.filter(
            partner__isnull=True,
            country_code__iexact=session.country_code,
            party_id__iexact=session.party_id,
            session_id=session.ocpi_id,
            credit=False,
        )
        .order_by("pk")
        .first()
    )
    if done is not None:
        return done
    snapshot: dict[str, Any] = session.snapshot or {}
    session_data: dict[str, Any] = loads_exact(session.doc) if session.doc else {}
    start: datetime = session.start_date_time
    end: datetime = session.end_date_time or timezone.now()
    periods = _session_periods(session, session_data, start, end)
    tariffs = [decimalize("Tariff", tariff) for tariff in snapshot.get("tariffs") or []]
    tariff = select_tariff(tariffs, start) if tariffs else None
    data: dict[str, Any] = {
        "country_code": session.country_code,
        "party_id": session.party_id,
        "id": uuid4().hex.upper(),
        "start_date_time": format_datetime(start),  # milliseconds kept (whole seconds were before the start)
        "end_date_time": format_datetime(end),
        "session_id": session.ocpi_id,
        "cdr_token": session.cdr_token,
        "auth_method": session.auth_method,
        "authorization_reference": session.authorization_reference or None,
        "cdr_location": cdr_location_from_snapshot(
            location=snapshot.get("location") or {}, evse_uid=session.evse_uid, connector_id=session.connector_id
        ),
        "meter_id": session_data.get("meter_id"),
        "currency": session.currency,
    }
    pricing: Any
    if tariff is not None:
        priced = price_session(
            tariff=tariff,
            charging_periods=periods,
            start_date_time=start,
            end_date_time=end,
            time_zone=snapshot.get("time_zone") or "UTC",
        )
        data["tariffs"] = [dict(tariff)]
        cdr_periods = _cdr_periods(priced.cdr_charging_periods() or periods)
        data["charging_periods"] = cdr_periods or _whole_session_period(session, start, end)
        data.update({name: value for name, value in priced.cdr_totals().items() if value is not None})
        pricing = _jsonable(priced.as_dict())
    else:
        zero = {"excl_vat": Decimal(0), "incl_vat": Decimal(0)}
        data["charging_periods"] = _cdr_periods(periods) or _whole_session_period(session, start, end)
        data["total_cost"] = zero
        data["total_energy"] = exact(session.kwh if session.kwh is not None else 0)
        data["total_time"] = _hours((end - start).total_seconds())
        data["remark"] = "No tariff applied: free of charge"
        pricing = {"tariff_id": None, "note": "No tariff was valid at the session's start: nothing charged"}
    data["last_updated"] = format_datetime(timezone.now())
    data = {name: value for name, value in data.items() if value is not None}
    return _store_own(data, pricing=pricing)


def _negate(price: dict[str, Any]) -> dict[str, Any]:
    return {name: -exact(value) if name in ("excl_vat", "incl_vat") else value for name, value in price.items()}


@transaction.atomic
def cdr_credit(*, cdr: Cdr) -> Cdr:
    """Issue the credit CDR of one of our own CDRs (REFERENCE §8.1): id = original id + "-C", `credit` true,
    `credit_reference_id` = the original's id, every amount negated, everything else as in the original; queued for
    the same eMSP. A CDR is credited once; a credit CDR is never credited (2001)."""
    original = Cdr.objects.select_for_update().get(pk=cdr.pk)
    if not original.is_own:
        raise InvalidParameters("id: only our own CDRs can be credited (the partner's CPO credits its CDRs)")
    if original.credit:
        raise InvalidParameters("credit: a credit CDR cannot be credited")
    if original.credits.exists():
        raise InvalidParameters(f"id: CDR {original.ocpi_id} is already credited")
    data = original.data
    data.pop("invoice_reference_id", None)
    data["id"] = original.ocpi_id + CREDIT_SUFFIX
    data["credit"] = True
    data["credit_reference_id"] = original.ocpi_id
    for name in PRICE_FIELDS:
        if isinstance(data.get(name), dict):
            data[name] = _negate(data[name])
    data["last_updated"] = format_datetime(timezone.now())
    ordered = {rule.name: data[rule.name] for rule in object_fields("CDR") if data.get(rule.name) is not None}
    return _store_own(
        ordered, pricing={"credit_of": original.ocpi_id, "negated": list(PRICE_FIELDS)}, credit_of=original
    )


def cdr_on_session_completed(sender: Any = None, *, session: Any, **kwargs: Any) -> None:
    """sessions_app.signals.session_completed: generate the CDR inside the session's transaction (a savepoint: a
    failure is logged and leaves the session completed; the CDR can then be generated again)."""
    try:
        with transaction.atomic():
            cdr_generate(session=session)
    except Exception:
        logger.exception(
            "Generating the CDR of a completed session failed",
            extra={"session": getattr(session, "ocpi_id", None), "party": getattr(session, "party_id", None)},
        )


# --- push and pull ---


def _render_for_push(
    *, country_code: str, party_id: str, object_path: str, method: str, fields: list[str]
) -> dict[str, Any] | None:
    """The own CDR (immutable: as stored, numbers as Decimals), or None when it is gone."""
    cdr = cdr_find(country_code, party_id, object_path)
    if cdr is None or not cdr.is_own:
        return None
    return cdr.data


def _delivered(*, delivery: Delivery, result: OcpiResult) -> None:
    """Keep where the eMSP stored our CDR (the Location header of its POST answer, REFERENCE §8.2)."""
    location = result.headers.get("Location", "")
    if location:
        Cdr.objects.filter(
            partner__isnull=True,
            country_code__iexact=delivery.country_code,
            party_id__iexact=delivery.party_id,
            ocpi_id__iexact=delivery.object_path,
        ).update(receiver_location=location[:512])


def _upsert_from_pull(*, partner: Partner, data: Any) -> tuple[str, str, str]:
    """One CDR of a CPO partner's Sender list: stored like a POST from that partner."""
    if not isinstance(data, dict):  # a list item, not a request body (cdr_validate would say "body: ...")
        raise InvalidParameters("list item: must be a CDR object")
    result = cdr_receive(partner=partner, data=data)
    cdr = result.cdr
    return (cdr.country_code.upper(), cdr.party_id.upper(), cdr.ocpi_id.upper())


def _remove_missing(*, partner: Partner, keep: set[tuple[str, str, str]]) -> int:
    """CDRs are never removed (REFERENCE §2.5): a full pull only adds what was missing."""
    return 0


def register_push_and_pull() -> None:
    push_module_register(
        PushModule(
            module=ModuleID.CDRS,
            receiver_roles=(Role.EMSP, Role.HUB),
            render=_render_for_push,
            delivered=_delivered,
            addressee=token_owner_addressee(Cdr),  # the eMSP of the CDR's token
        )
    )
    pull_module_register(PullModule(module=ModuleID.CDRS, upsert=_upsert_from_pull, remove_missing=_remove_missing))
