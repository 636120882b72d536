"""Tariffs services: the only writers of Tariff (STYLE.md §4).

Receiver side (partners' tariffs, REFERENCE §9.2): PUT creates or replaces, DELETE removes, URL ids must match body
ids (2001), a partner writes only under its own parties (404), an older last_updated never overwrites newer data, a
rejected request changes nothing. Own side (admin, platform API, demo data): the same writes, plus an outbox row per
receiving partner in the same transaction (PUT for new and changed tariffs, DELETE for removed ones, REFERENCE
§9.1: no PATCH), and an own tariff is not deleted while one of our connectors still lists it in `tariff_ids`.

Money stays exact: every OCPI `number` is turned into a Decimal (from the shortest repr of the parsed float, i.e. the
digits the partner wrote) before it is stored, and the cached JSON is written from those Decimals.
"""

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import TextField
from django.db.models.functions import Cast

from ocpi_core.constants import ModuleID, Role
from ocpi_core.db import retry_on_conflict
from ocpi_core.envelope import format_datetime_up, own_stamp, parse_datetime
from ocpi_core.exceptions import InvalidParameters, NotFound
from ocpi_core.mapping import OcpiMapper
from ocpi_core.models import Delivery, Partner, Party
from ocpi_core.push import PushModule, outbox_add, push_module_register
from ocpi_core.selectors import partner_assert_owns
from ocpi_core.sync import PullModule, pull_module_register
from ocpi_core.validation import validate
from tariffs.models import Tariff, decimalize, dumps_exact, exact, loads_exact

TARIFF = OcpiMapper("Tariff")

# Tariff fields whose numbers are money or quantities: stored as Decimals (tariffs.models.ExactJSONField).
EXACT_FIELDS = {"min_price": "Price", "max_price": "Price", "elements": "TariffElement", "energy_mix": "EnergyMix"}

_CURRENCY = re.compile(r"[A-Z]{3}")
_RESERVATION_DIMENSIONS = ("FLAT", "TIME")
_REMOVED = "REMOVED"


@dataclass(frozen=True)
class Key:
    """Where a tariff lives: its owner party and its id (CiStrings: compared case-insensitively)."""

    country_code: str
    party_id: str
    tariff_id: str

    @property
    def path(self) -> str:
        return self.tariff_id


@dataclass(frozen=True)
class WriteResult:
    """What a PUT did: `created` (answer 201) or `ignored` (older than what we hold: acknowledged, not applied)."""

    tariff: Tariff
    created: bool = False
    ignored: bool = False


# --- rendering and lookups ---


def tariff_render(tariff: Tariff) -> dict[str, Any]:
    """The tariff as OCPI JSON (a dict; numbers of the exact fields are Decimals), fields in spec order."""
    return TARIFF.to_ocpi(tariff)


def tariff_doc(tariff: Tariff) -> str:
    """The cached OCPI JSON text of a tariff (rendered when the cache is empty)."""
    return tariff.doc or dumps_exact(tariff_render(tariff)).decode()


def tariff_find(key: Key, *, lock: bool = False) -> Tariff | None:
    """A tariff by owner and id (CiString: case-insensitive)."""
    queryset = Tariff.objects.filter(
        country_code__lower=key.country_code.lower(),
        party_id__lower=key.party_id.lower(),
        ocpi_id__lower=key.tariff_id.lower(),
    )
    if lock:
        queryset = queryset.select_for_update()
    return queryset.first()


def tariff_get(*, partner: Partner | None, key: Key) -> str:
    """GET of a stored tariff as OCPI JSON text: a partner's (receiver) or our own (`partner=None`)."""
    partner_assert_owns(partner=partner, country_code=key.country_code, party_id=key.party_id)
    tariff = tariff_find(key)
    if tariff is None or tariff.partner_id != (partner.pk if partner else None):
        raise NotFound(f"Unknown tariff {key.tariff_id}")
    return tariff_doc(tariff)


def tariff_connectors_using(*, tariff: Tariff) -> list[Any]:
    """Our own connectors (on EVSEs not REMOVED) that list this own tariff in `tariff_ids` (REFERENCE §9.1).

    A connector's tariff_ids name tariffs of its location's owner, so only that party's locations are searched.
    """
    from locations.models import Connector

    if not tariff.is_own:
        return []
    queryset = Connector.objects.filter(
        evse__location__partner__isnull=True,
        evse__location__country_code__iexact=tariff.country_code,
        evse__location__party_id__iexact=tariff.party_id,
        tariff_ids__isnull=False,
    ).exclude(evse__status=_REMOVED)
    wanted = tariff.ocpi_id.lower()
    if '"' not in wanted and "\\" not in wanted:  # written as is inside the JSON text: narrow it down in the database
        queryset = queryset.annotate(tariff_ids_text=Cast("tariff_ids", TextField())).filter(
            tariff_ids_text__icontains=wanted
        )
    return [
        connector
        for connector in queryset.select_related("evse__location").order_by("pk")
        if any(isinstance(t, str) and t.lower() == wanted for t in connector.tariff_ids or [])
    ]


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


def _check_price(name: str, price: Any, errors: list[str]) -> None:
    if not isinstance(price, dict):
        return
    excl, incl = _number(price.get("excl_vat")), _number(price.get("incl_vat"))
    if excl is not None and excl < 0:
        errors.append(f"{name}.excl_vat: must not be negative")
    if incl is not None and incl < 0:
        errors.append(f"{name}.incl_vat: must not be negative")
    if excl is not None and incl is not None and excl > incl:
        errors.append(f"{name}.excl_vat: must not be more than incl_vat")


def _check_rules(data: dict[str, Any]) -> None:
    """Rules the field table cannot express (REFERENCE §9.3, §9.4): 2001 naming every field that breaks one."""
    errors: list[str] = []
    if not _CURRENCY.fullmatch(data["currency"]):
        errors.append("currency: must be an ISO 4217 code of 3 upper-case letters, e.g. EUR")
    for name in ("min_price", "max_price"):
        _check_price(name, data.get(name), errors)
    low, high = data.get("min_price"), data.get("max_price")
    if isinstance(low, dict) and isinstance(high, dict):
        for part in ("excl_vat", "incl_vat"):
            a, b = _number(low.get(part)), _number(high.get(part))
            if a is not None and b is not None and a > b:
                errors.append(f"min_price.{part}: must not be more than max_price.{part}")
    start, end = data.get("start_date_time"), data.get("end_date_time")
    if start and end and parse_datetime(end) <= parse_datetime(start):
        errors.append("end_date_time: must be after start_date_time")
    for i, element in enumerate(data["elements"]):
        restrictions = element.get("restrictions") or {}
        reservation = restrictions.get("reservation")
        for j, component in enumerate(element["price_components"]):
            path = f"elements[{i}].price_components[{j}]"
            if reservation and component["type"] not in _RESERVATION_DIMENSIONS:
                errors.append(
                    f"{path}.type: a {reservation} element may only contain FLAT and TIME components, "
                    f"not {component['type']}"
                )
            if component["step_size"] < 0:
                errors.append(f"{path}.step_size: must not be negative")
            vat = _number(component.get("vat"))
            if vat is not None and vat < 0:
                errors.append(f"{path}.vat: must not be negative")
    if errors:
        raise InvalidParameters("; ".join(errors))


def _plain(value: Any) -> Any:
    """A copy the field validator reads: Decimals (from Python callers, never on the wire) as JSON numbers."""
    if isinstance(value, dict):
        return {name: _plain(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, Decimal):
        return float(value)
    return value


def tariff_validate(*, key: Key, data: Any) -> dict[str, Any]:
    """Every check a Tariff PUT body must pass, for partners and for our own edits alike (2001 naming the field):
    the spec's field table, URL ids equal to body ids, and the rules of REFERENCE §9.3 / §9.4.

    `data` is the OCPI JSON object (DateTimes as OCPI strings); Python callers may give numbers as Decimals.
    """
    validate("Tariff", _plain(data))
    for name, url_value in (("country_code", key.country_code), ("party_id", key.party_id), ("id", key.tariff_id)):
        if not _same(data.get(name), url_value):
            raise InvalidParameters(f"{name}: {data.get(name)!r} in the body does not match {url_value!r} in the URL")
    _check_rules(data)
    return data


def _values(data: dict[str, Any]) -> dict[str, Any]:
    """Model field values of a validated Tariff: a PUT replaces, so what it leaves out becomes empty."""
    values = TARIFF.from_ocpi(data)
    for name, type_name in EXACT_FIELDS.items():
        field = TARIFF.attr(name)
        try:
            values[field] = decimalize(type_name, values[field])
        except ValueError as exc:
            raise InvalidParameters(f"{name}: numbers must be finite") from exc
    return values


# --- writing ---


def _push(tariff: Tariff, method: str) -> None:
    """Queue a change of an own tariff for every partner with a tariffs RECEIVER (same transaction)."""
    outbox_add(
        module=ModuleID.TARIFFS,
        country_code=tariff.country_code,
        party_id=tariff.party_id,
        object_path=tariff.ocpi_id,
        method=method,
    )


def tariff_validate_own(*, key: Key, data: Any) -> dict[str, Any]:
    """`tariff_validate`, and the owner must be one of our own CPO parties (admin and platform API forms)."""
    data = tariff_validate(key=key, data=data)
    _assert_own_party(key)
    return data


def _assert_own_party(key: Key) -> None:
    own = Party.objects.filter(
        partner__isnull=True, role=Role.CPO, country_code__iexact=key.country_code, party_id__iexact=key.party_id
    )
    if not own.exists():
        party = f"{key.country_code}*{key.party_id}"
        raise InvalidParameters(f"country_code/party_id: {party} is not one of our CPO parties")


@retry_on_conflict
@transaction.atomic
def tariff_put(*, partner: Partner | None, key: Key, data: Any) -> WriteResult:
    """PUT of a Tariff: create or replace. `partner=None` is one of our own tariffs (pushed to partners).

    A body older than the stored tariff is acknowledged and ignored (`ignored`); the answer is 201 when `created`.
    """
    partner_assert_owns(partner=partner, country_code=key.country_code, party_id=key.party_id)
    data = tariff_validate(key=key, data=data)
    if partner is None:
        _assert_own_party(key)
    tariff = tariff_find(key, lock=True)
    if tariff is not None and tariff.partner_id != (partner.pk if partner else None):
        raise NotFound(f"Tariff {key.tariff_id} belongs to another platform")
    if tariff is not None and parse_datetime(data["last_updated"]) < tariff.last_updated:
        return WriteResult(tariff, ignored=True)
    created = tariff is None
    if tariff is None:
        tariff = Tariff(partner=partner)
    for name, value in _values(data).items():
        setattr(tariff, name, value)
    tariff.doc = dumps_exact(tariff_render(tariff)).decode()  # one write: row and cached JSON together
    tariff.save()
    if partner is None:
        _push(tariff, Delivery.Method.PUT)
    return WriteResult(tariff, created=created)


def tariff_save_own(*, key: Key, data: dict[str, Any]) -> WriteResult:
    """Create or replace one of our own tariffs from an edit (admin, platform API): stamped now, never older than
    what is stored (so the edit is never ignored), validated like a partner's PUT, and pushed."""
    current = tariff_find(key)
    stamped = {**data, "last_updated": format_datetime_up(own_stamp(current.last_updated if current else None))}
    return tariff_put(partner=None, key=key, data=stamped)


@transaction.atomic
def tariff_delete(*, partner: Partner | None, key: Key) -> None:
    """DELETE of a Tariff (404 when unknown). Our own: refused (2001) while one of our connectors lists it in
    `tariff_ids`, otherwise deleted and pushed as a DELETE."""
    partner_assert_owns(partner=partner, country_code=key.country_code, party_id=key.party_id)
    tariff = tariff_find(key, lock=True)
    if tariff is None or tariff.partner_id != (partner.pk if partner else None):
        raise NotFound(f"Unknown tariff {key.tariff_id}")
    if partner is None:
        using = tariff_connectors_using(tariff=tariff)
        if using:
            names = ", ".join(f"{c.evse.location.ocpi_id}/{c.evse.uid}/{c.ocpi_id}" for c in using[:10]) + (
                " ..." if len(using) > 10 else ""
            )
            raise InvalidParameters(
                f"id: tariff {tariff.ocpi_id} is still used by {len(using)} connector(s) ({names}); "
                "remove it from their tariff_ids first"
            )
        _push(tariff, Delivery.Method.DELETE)
    tariff.delete()


# --- push and pull ---


def _render_for_push(
    *, country_code: str, party_id: str, object_path: str, method: str, fields: list[str]
) -> dict[str, Any] | None:
    """The own tariff as it is now (numbers as Decimals), or None when it is gone (REFERENCE §9.1: no PATCH)."""
    tariff = tariff_find(Key(country_code, party_id, object_path))
    if tariff is None or not tariff.is_own:
        return None
    result: dict[str, Any] = loads_exact(tariff_doc(tariff))
    return result


def _upsert_from_pull(*, partner: Partner, data: Any) -> tuple[str, str, str]:
    """One Tariff from a partner's Sender list: stored like a PUT from that partner."""
    if not isinstance(data, dict):
        raise InvalidParameters("list item: must be a Tariff object")
    key = Key(str(data.get("country_code", "")), str(data.get("party_id", "")), str(data.get("id", "")))
    tariff_put(partner=partner, key=key, data=data)
    return (key.country_code.upper(), key.party_id.upper(), key.tariff_id.upper())


@transaction.atomic
def _remove_missing(*, partner: Partner, keep: set[tuple[str, str, str]]) -> int:
    """After a full pull: the partner's tariffs it no longer lists are deleted (REFERENCE §2.7, §9.1)."""
    gone = [
        t.pk
        for t in Tariff.objects.filter(partner=partner).only("pk", "country_code", "party_id", "ocpi_id")
        if (t.country_code.upper(), t.party_id.upper(), t.ocpi_id.upper()) not in keep
    ]
    if gone:
        Tariff.objects.filter(pk__in=gone).delete()
    return len(gone)


def register_push_and_pull() -> None:
    push_module_register(
        PushModule(
            module=ModuleID.TARIFFS,
            receiver_roles=(Role.EMSP, Role.NSP, Role.NAP, Role.OTHER, Role.HUB),
            render=_render_for_push,
        )
    )
    pull_module_register(PullModule(module=ModuleID.TARIFFS, upsert=_upsert_from_pull, remove_missing=_remove_missing))
