"""Locations services: the only writers of Location, Evse and Connector (STYLE.md §4).

Receiver side (partners' objects): PUT replaces, PATCH merges and needs last_updated, URL ids must match body ids,
a partner writes only under its own parties, a child change bumps its parents' last_updated, an older last_updated
never overwrites newer data, EVSEs are never deleted (REMOVED). Own side (admin, platform API, charge point
backends): the same writes, plus an outbox row per receiving partner in the same transaction.
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import orjson
from django.db import connection, transaction
from django.db.models import Field, Prefetch, Q, QuerySet
from django.utils import timezone

from dashboard.history import evse_status_record
from dashboard.rollup import RollupRow, rollup_upsert_sql, rollup_write
from locations.models import Connector, Evse, Location
from ocpi_core.constants import ModuleID, Role
from ocpi_core.db import fast_fetch, pg_columns, pg_instance, retry_on_conflict
from ocpi_core.envelope import dumps, format_datetime, parse_datetime
from ocpi_core.exceptions import InvalidParameters, NotFound, UnknownLocation
from ocpi_core.hot import partner_owns
from ocpi_core.mapping import OcpiMapper
from ocpi_core.models import Delivery, Partner
from ocpi_core.push import PushModule, outbox_add, push_module_register
from ocpi_core.selectors import partner_assert_owns
from ocpi_core.sync import PullModule, pull_module_register
from ocpi_core.validation import validate

LOCATION = OcpiMapper("Location", children=frozenset({"evses"}))
EVSE = OcpiMapper("EVSE", children=frozenset({"connectors"}), renamed={})
CONNECTOR = OcpiMapper("Connector")

REMOVED = "REMOVED"
_LOCATION_IDS = ("country_code", "party_id", "ocpi_id")


@dataclass(frozen=True)
class Key:
    """Where an object lives: owner party plus location id, and EVSE uid / connector id for children."""

    country_code: str
    party_id: str
    location_id: str
    evse_uid: str | None = None
    connector_id: str | None = None

    @property
    def path(self) -> str:
        return "/".join(p for p in (self.location_id, self.evse_uid, self.connector_id) if p)


@dataclass(frozen=True)
class WriteResult:
    """What a write did: `created` (answer 201) or `ignored` (older than what we hold: acknowledged, not applied)."""

    location: Location
    created: bool = False
    ignored: bool = False


# --- rendering ---


def connector_render(connector: Connector) -> dict[str, Any]:
    return CONNECTOR.to_ocpi(connector)


def evse_render(evse: Evse) -> dict[str, Any]:
    data = EVSE.to_ocpi(evse)
    data["connectors"] = [connector_render(c) for c in evse.connectors.all()]
    # keep the spec's field order: connectors come right after capabilities
    return {name: data[name] for name in _order("EVSE") if name in data}


def location_render(location: Location) -> dict[str, Any]:
    data = LOCATION.to_ocpi(location)
    evses = [evse_render(e) for e in location.evses.all()]
    if evses:
        data["evses"] = evses
    return {name: data[name] for name in _order("Location") if name in data}


def _order(type_name: str) -> list[str]:
    from ocpi_core.validation import object_fields

    return [rule.name for rule in object_fields(type_name)]


def _with_children(queryset: QuerySet[Location]) -> QuerySet[Location]:
    return queryset.prefetch_related(
        Prefetch(
            "evses",
            queryset=Evse.objects.order_by("position", "pk").prefetch_related(
                Prefetch("connectors", queryset=Connector.objects.order_by("position", "pk"))
            ),
        )
    )


def location_render_rows(pk: int) -> dict[str, Any]:
    """The OCPI Location as its rows say now (what the cached JSON must equal)."""
    return location_render(_with_children(Location.objects.filter(pk=pk)).get())


def location_doc_refresh(location: Location) -> None:
    """Rewrite the cached OCPI JSON of a location from its rows (same transaction as the change)."""
    location.doc = dumps(location_render_rows(location.pk)).decode()
    Location.objects.filter(pk=location.pk).update(doc=location.doc)


# --- lookups ---


def location_find(key: Key, *, lock: bool = False) -> Location | None:
    """A location by owner and id (CiString: case-insensitive)."""
    queryset = Location.objects.filter(
        country_code__lower=key.country_code.lower(),
        party_id__lower=key.party_id.lower(),
        ocpi_id__lower=key.location_id.lower(),
    )
    if lock:
        queryset = queryset.select_for_update()
    return queryset.first()


def _evse_find(location: Location, uid: str) -> Evse | None:
    return location.evses.filter(uid__lower=uid.lower()).first()


def _evse_and_location_find(key: Key) -> Evse | None:
    """An EVSE with its location (`evse.location`) in one statement, the location locked as location_find(lock=True)
    does: the PATCH of an EVSE status (the receiver's hot path) needs both. None when either is unknown.

    On PostgreSQL it is a prepared statement (ocpi_core.db.pg_fetch) that reads the whole EVSE and of the location
    only what a PATCH of an EVSE uses (`_PATCH_LOCATION_FIELDS`; the others are deferred, as with `.only()`). The
    same statement serves SQLite, without the lock clause: there the transaction holds the database's write lock
    from its start (`transaction_mode` IMMEDIATE)."""
    evse_uid = (key.evse_uid or "").lower()
    lowered = [key.country_code.lower(), key.party_id.lower(), key.location_id.lower(), evse_uid]
    if connection.vendor in ("postgresql", "sqlite"):
        if connection.vendor not in _EVSE_AND_LOCATION:
            _EVSE_AND_LOCATION[connection.vendor] = _evse_and_location_sql(lock=connection.vendor == "postgresql")
        sql, evse_fields, location_fields = _EVSE_AND_LOCATION[connection.vendor]
        rows = fast_fetch(sql, lowered)
        if not rows:
            return None
        evse = pg_instance(Evse, evse_fields, rows[0][: len(evse_fields)])
        evse.location = pg_instance(Location, location_fields, rows[0][len(evse_fields) :])
        return evse
    return (
        Evse.objects.select_related("location")
        .select_for_update(of=("location",))
        .filter(
            location__country_code__lower=lowered[0],
            location__party_id__lower=lowered[1],
            location__ocpi_id__lower=lowered[2],
            uid__lower=evse_uid,
        )
        .order_by("pk")
        .first()
    )


# what location_patch reads of the location when it PATCHes one of its EVSEs (and _push, when it is ours)
_PATCH_LOCATION_FIELDS = (
    *("id", "partner_id", "country_code", "party_id", "ocpi_id"),
    *("publish", "publish_allowed_to", "last_updated", "doc"),
)
_EVSE_AND_LOCATION: dict[str, tuple[str, list[Any], list[Any]]] = {}  # by database vendor


def _evse_and_location_sql(*, lock: bool) -> tuple[str, list[Any], list[Any]]:
    evse_columns, evse_fields = pg_columns(Evse, '"e"')
    location_columns, location_fields = pg_columns(Location, '"l"', _PATCH_LOCATION_FIELDS)
    where = (
        'LOWER("l"."country_code") = %s AND LOWER("l"."party_id") = %s AND LOWER("l"."ocpi_id") = %s'
        ' AND LOWER("e"."uid") = %s'
    )
    sql = (
        f'SELECT {evse_columns}, {location_columns} FROM {_table(Evse)} "e" '  # noqa: S608 (names from the models)
        f'JOIN {_table(Location)} "l" ON "l"."id" = "e"."location_id" WHERE {where} '
        'ORDER BY "e"."id" LIMIT 1' + (' FOR UPDATE OF "l"' if lock else "")
    )
    return sql, evse_fields, location_fields


def _table(model: type[Location | Evse]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _connector_find(evse: Evse, connector_id: str) -> Connector | None:
    return evse.connectors.filter(ocpi_id__lower=connector_id.lower()).first()


def location_object_get(*, key: Key, partner: Partner | None) -> dict[str, Any]:
    """GET of a stored Location/EVSE/Connector: a partner's (receiver: only under its own parties, 404 otherwise)
    or our own (`partner=None`, sender)."""
    _assert_owner(partner, key)
    location = location_find(key)
    if location is None or location.partner_id != (partner.pk if partner else None):
        raise UnknownLocation(f"Unknown location {key.location_id}")
    if key.evse_uid is None:
        return orjson.loads(location.doc) if location.doc else location_render(location)
    evse = _evse_find(location, key.evse_uid)
    if evse is None:
        raise NotFound(f"Unknown EVSE {key.evse_uid} at location {key.location_id}")
    if key.connector_id is None:
        return evse_render(evse)
    connector = _connector_find(evse, key.connector_id)
    if connector is None:
        raise NotFound(f"Unknown connector {key.connector_id} of EVSE {key.evse_uid}")
    return connector_render(connector)


# --- validation ---


def _same(a: str | None, b: str | None) -> bool:
    return (a or "").lower() == (b or "").lower()


def _check_ids(data: dict[str, Any], key: Key, *, partial: bool) -> None:
    """URL ids must equal body ids (2001); in a PATCH they may be left out."""
    depth = 1 if key.evse_uid is None else 2 if key.connector_id is None else 3
    pairs: list[tuple[str, str]] = []
    if depth == 1:
        pairs = [("country_code", key.country_code), ("party_id", key.party_id), ("id", key.location_id)]
    elif depth == 2:
        pairs = [("uid", key.evse_uid or "")]
    else:
        pairs = [("id", key.connector_id or "")]
    for name, url_value in pairs:
        if name not in data and partial:
            continue
        if not _same(data.get(name), url_value):
            raise InvalidParameters(f"{name}: {data.get(name)!r} in the body does not match {url_value!r} in the URL")


def _validated(type_name: str, data: Any, key: Key, *, partial: bool) -> dict[str, Any]:
    validate(type_name, data, partial=partial)
    if partial and not data.get("last_updated"):
        raise InvalidParameters("last_updated: is required in a PATCH")
    _check_ids(data, key, partial=partial)
    _check_rules(type_name, data)
    return data


_INT_MAX = 2**31 - 1  # the columns are 32-bit: a larger value is refused with 2001, never a database error
_ALPHA3 = re.compile(r"[A-Z]{3}")  # Location.country: "ISO 3166-1 alpha-3 code" (mod_locations, Location object)


def _rule_errors(type_name: str, data: dict[str, Any], path: str, out: list[str]) -> None:
    """Rules the field table cannot express (REFERENCE §6.4), on an already type-checked (partial) object."""
    prefix = f"{path}." if path else ""
    if type_name == "Location":
        country = data.get("country")
        if isinstance(country, str) and not _ALPHA3.fullmatch(country):
            out.append(f"{prefix}country: must be an ISO 3166-1 alpha-3 code of 3 upper-case letters, e.g. NLD")
        if data.get("publish") is True and data.get("publish_allowed_to"):
            out.append(f"{prefix}publish_allowed_to: only allowed when publish is false")
        for index, entry in enumerate(data.get("publish_allowed_to") or []):
            where = f"{prefix}publish_allowed_to[{index}]"
            if not (entry.get("uid") or entry.get("visual_number") or entry.get("group_id")):
                out.append(f"{where}: needs uid, visual_number or group_id")
            if entry.get("uid") and not entry.get("type"):
                out.append(f"{where}.type: is required with uid")
            if entry.get("visual_number") and not entry.get("issuer"):
                out.append(f"{where}.issuer: is required with visual_number")
        if data.get("opening_times") is not None:
            _hours_errors(data["opening_times"], f"{prefix}opening_times", out)
        if data.get("energy_mix") is not None:
            _energy_mix_errors(data["energy_mix"], f"{prefix}energy_mix", out)
        _children_errors("EVSE", data.get("evses"), "uid", f"{prefix}evses", out)
    elif type_name == "EVSE":
        _children_errors("Connector", data.get("connectors"), "id", f"{prefix}connectors", out)
    elif type_name == "Connector":
        for name in ("max_voltage", "max_amperage", "max_electric_power"):
            value = data.get(name)
            if value is not None and not 0 <= value <= _INT_MAX:
                out.append(f"{prefix}{name}: must be between 0 and {_INT_MAX}")


def _children_errors(
    type_name: str, items: list[dict[str, Any]] | None, id_field: str, path: str, out: list[str]
) -> None:
    """Each child's own rules, and ids unique within the parent (CiString: case-insensitive)."""
    seen: set[str] = set()
    for index, item in enumerate(items or []):
        ident = str(item.get(id_field, "")).lower()
        if ident in seen:
            out.append(f"{path}[{index}].{id_field}: {item.get(id_field)!r} appears more than once")
        seen.add(ident)
        _rule_errors(type_name, item, f"{path}[{index}]", out)


def _hours_errors(hours: dict[str, Any], path: str, out: list[str]) -> None:
    """Hours: regular_hours only, and then at least one, when not twentyfourseven; weekday 1-7; end after begin."""
    regular = hours.get("regular_hours") or []
    if hours.get("twentyfourseven") is True and regular:
        out.append(f"{path}.regular_hours: only allowed when twentyfourseven is false")
    if hours.get("twentyfourseven") is False and not regular:
        out.append(f"{path}.regular_hours: required when twentyfourseven is false")
    for index, period in enumerate(regular):
        if not 1 <= period["weekday"] <= 7:
            out.append(f"{path}.regular_hours[{index}].weekday: must be 1 (Monday) to 7 (Sunday)")
        if period["period_end"] <= period["period_begin"]:
            out.append(f"{path}.regular_hours[{index}].period_end: must be later than period_begin")


def _energy_mix_errors(mix: dict[str, Any], path: str, out: list[str]) -> None:
    for index, source in enumerate(mix.get("energy_sources") or []):
        if not 0 <= source["percentage"] <= 100:
            out.append(f"{path}.energy_sources[{index}].percentage: must be between 0 and 100")


def _check_rules(type_name: str, data: dict[str, Any]) -> None:
    """Raise InvalidParameters (2001) naming every rule of `_rule_errors` that `data` breaks."""
    errors: list[str] = []
    _rule_errors(type_name, data, "", errors)
    if errors:
        raise InvalidParameters("; ".join(errors))


def _assert_owner(partner: Partner | None, key: Key) -> None:
    """A partner writes only under its own parties (404 otherwise, REFERENCE §6.3); a hub relays for others. The
    partner's parties come from the hot cache (ocpi_core.hot); without it, `partner_assert_owns` asks the database."""
    if partner is None or partner_owns(partner=partner, country_code=key.country_code, party_id=key.party_id):
        return
    partner_assert_owns(partner=partner, country_code=key.country_code, party_id=key.party_id)


# --- writing rows ---


def _connector_upsert(evse: Evse, data: dict[str, Any], position: int) -> Connector:
    values = CONNECTOR.from_ocpi(data)
    connector = _connector_find(evse, data["id"]) if evse.pk else None
    if connector is None:
        connector = Connector(evse=evse)
    else:
        values.pop("ocpi_id")  # ids are immutable: a body spelling it in another case does not rewrite it
    for name, value in values.items():
        setattr(connector, name, value)
    connector.position = position
    connector.save()
    return connector


def _evse_replace(location: Location, data: dict[str, Any], position: int | None) -> Evse:
    """Create or replace one EVSE with its connectors (connectors left out of the PUT are gone)."""
    evse = _evse_find(location, data["uid"])
    if evse is None:
        evse = Evse(location=location)
        if position is None:
            last = location.evses.order_by("-position").first()
            position = (last.position + 1) if last else 0
    values = EVSE.from_ocpi(data)
    if evse.pk is not None:
        values.pop("uid")  # immutable, compared case-insensitively: the stored spelling stays
    for name, value in values.items():
        setattr(evse, name, value)
    if position is not None:
        evse.position = position
    evse.save()
    evse_status_record(evse, evse.last_updated)
    kept = [_connector_upsert(evse, c, i).pk for i, c in enumerate(data.get("connectors") or [])]
    evse.connectors.exclude(pk__in=kept).delete()
    return evse


def _bump(location: Location, when: datetime, evse: Evse | None = None) -> None:
    """A child changed: its parents' last_updated move to the child's (never backwards)."""
    if evse is not None and evse.last_updated < when:
        evse.last_updated = when
        Evse.objects.filter(pk=evse.pk).update(last_updated=when)
    if location.last_updated < when:
        location.last_updated = when
        Location.objects.filter(pk=location.pk).update(last_updated=when)


def _without(values: dict[str, Any], names: Iterable[str]) -> dict[str, Any]:
    """`values` less the id fields: ids are immutable and compared case-insensitively, the stored spelling stays."""
    return {name: value for name, value in values.items() if name not in names}


def _next_position(rows: QuerySet[Any]) -> int:
    last = rows.order_by("-position").first()
    return (last.position + 1) if last else 0


def _older(stored: datetime, incoming: str) -> bool:
    return parse_datetime(incoming) < stored


def _push(
    partner: Partner | None,
    key: Key,
    method: str,
    fields: Iterable[str] = (),
    *,
    location: Location,
    was_publishable: bool | None = None,
    evse: Evse | None = None,
) -> None:
    """Own objects only: an outbox row per receiving partner, keyed by the ids as stored (a request may spell them
    in another case). A location that is not publishable is not pushed, unless it was before this change: then
    partners get it with publish=false and stop showing it (REFERENCE §6.1)."""
    if partner is not None:
        return
    if not publishable(location) and not (was_publishable if was_publishable is not None else False):
        return
    path = [location.ocpi_id]
    if key.evse_uid is not None:
        if evse is None:  # (the caller may have it already)
            evse = _evse_find(location, key.evse_uid)
        path.append(evse.uid if evse else key.evse_uid)
        if key.connector_id is not None:
            connector = _connector_find(evse, key.connector_id) if evse else None
            path.append(connector.ocpi_id if connector else key.connector_id)
    outbox_add(
        module=ModuleID.LOCATIONS,
        country_code=location.country_code,
        party_id=location.party_id,
        object_path="/".join(path),
        method=method,
        fields=list(fields),
    )


@retry_on_conflict
@transaction.atomic
def location_put(*, partner: Partner | None, key: Key, data: Any) -> WriteResult:
    """PUT of a Location, EVSE or Connector (by the depth of `key`): create or replace."""
    _assert_owner(partner, key)
    if key.evse_uid is None:
        return _location_put(partner, key, _validated("Location", data, key, partial=False))
    if key.connector_id is None:
        return _evse_put(partner, key, _validated("EVSE", data, key, partial=False))
    return _connector_put(partner, key, _validated("Connector", data, key, partial=False))


def _location_put(partner: Partner | None, key: Key, data: dict[str, Any]) -> WriteResult:
    location = location_find(key, lock=True)
    if location is not None and location.partner_id != (partner.pk if partner else None):
        raise NotFound(f"Location {key.location_id} belongs to another platform")
    if location is not None and _older(location.last_updated, data["last_updated"]):
        return WriteResult(location, ignored=True)
    created = location is None
    was_publishable = location is not None and publishable(location)
    values = LOCATION.from_ocpi(data)
    if location is None:
        location = Location(partner=partner)
    else:
        for name in _LOCATION_IDS:  # immutable, compared case-insensitively: the stored spelling stays
            values.pop(name)
    for name, value in values.items():
        setattr(location, name, value)
    location.save()
    kept = [_evse_replace(location, evse, i).pk for i, evse in enumerate(data.get("evses") or [])]
    # EVSEs are never deleted: the ones a PUT leaves out are REMOVED, listed after the ones it sent
    for position, evse in enumerate(location.evses.exclude(pk__in=kept).order_by("position", "pk"), len(kept)):
        evse.position = position
        if evse.status != REMOVED:
            evse.status, evse.last_updated = REMOVED, location.last_updated
        evse.save(update_fields=["position", "status", "last_updated"])
    location_doc_refresh(location)
    _push(partner, key, Delivery.Method.PUT, location=location, was_publishable=was_publishable)
    return WriteResult(location, created=created)


def _parent(partner: Partner | None, key: Key) -> Location:
    location = location_find(key, lock=True)
    if location is None or location.partner_id != (partner.pk if partner else None):
        raise UnknownLocation(f"Unknown location {key.location_id}: PUT the whole location first")
    return location


def _evse_put(partner: Partner | None, key: Key, data: dict[str, Any]) -> WriteResult:
    location = _parent(partner, key)
    current = _evse_find(location, key.evse_uid or "")
    if current is not None and _older(current.last_updated, data["last_updated"]):
        return WriteResult(location, ignored=True)
    evse = _evse_replace(location, data, None)
    _bump(location, evse.last_updated)
    location_doc_refresh(location)
    _push(partner, key, Delivery.Method.PUT, location=location)
    return WriteResult(location, created=current is None)


def _connector_put(partner: Partner | None, key: Key, data: dict[str, Any]) -> WriteResult:
    location = _parent(partner, key)
    evse = _evse_find(location, key.evse_uid or "")
    if evse is None:
        raise NotFound(f"Unknown EVSE {key.evse_uid}: PUT the EVSE first")
    current = _connector_find(evse, key.connector_id or "")
    if current is not None and _older(current.last_updated, data["last_updated"]):
        return WriteResult(location, ignored=True)
    position = current.position if current else evse.connectors.count()
    connector = _connector_upsert(evse, data, position)
    _bump(location, connector.last_updated, evse)
    location_doc_refresh(location)
    _push(partner, key, Delivery.Method.PUT, location=location)
    return WriteResult(location, created=current is None)


@retry_on_conflict
@transaction.atomic
def location_patch(*, partner: Partner | None, key: Key, data: Any) -> WriteResult:
    """PATCH of a Location, EVSE or Connector: only the fields sent change; last_updated is required."""
    _assert_owner(partner, key)
    type_name = "Location" if key.evse_uid is None else "EVSE" if key.connector_id is None else "Connector"
    data = _validated(type_name, data, key, partial=True)
    found = _evse_and_location_find(key) if type_name == "EVSE" else None  # the hot path: one statement for both
    location = found.location if found is not None else location_find(key, lock=True)
    if location is None or location.partner_id != (partner.pk if partner else None):
        raise UnknownLocation(f"Unknown location {key.location_id}")
    when = parse_datetime(data["last_updated"])
    was_publishable = publishable(location)
    if type_name == "Location":
        if when < location.last_updated:
            return WriteResult(location, ignored=True)
        values = _without(LOCATION.from_ocpi(data, partial=True), _LOCATION_IDS)
        publish = values.get("publish", location.publish)
        if publish and values.get("publish_allowed_to", location.publish_allowed_to):
            raise InvalidParameters(
                "publish_allowed_to: only allowed when publish is false (as it would be after this PATCH)"
            )
        for name, value in values.items():
            setattr(location, name, value)
        location.save()
        for evse_data in data.get("evses") or []:  # a list in a PATCH: those EVSEs as sent (REFERENCE §6.3)
            current = _evse_find(location, evse_data["uid"])
            if current is None or not _older(current.last_updated, evse_data["last_updated"]):
                _bump(location, _evse_replace(location, evse_data, None).last_updated)
    elif type_name == "EVSE":
        evse = found
        if evse is None:
            raise NotFound(f"Unknown EVSE {key.evse_uid}")
        if when < evse.last_updated:
            return WriteResult(location, ignored=True)
        values = _without(EVSE.from_ocpi(data, partial=True), ("uid",))
        hot = not data.get("connectors")
        rollup: list[RollupRow] = []  # the history's rollup rows, written with the EVSE on the hot path
        evse_status_record(evse, when, new=values.get("status"), pending=rollup if hot else None)
        for name, value in values.items():
            setattr(evse, name, value)
        if hot:
            # The hot path (a status change): the EVSE's changed columns, the location's last_updated and its cached
            # JSON, the JSON patched in place instead of re-read and re-rendered, and the history's rollup: one
            # statement on PostgreSQL.
            bumped = location.last_updated < when
            if bumped:
                location.last_updated = when
            doc = _doc_with_evse(location, evse)
            if doc is None:  # the cached JSON does not hold this EVSE: rendered again from the rows
                rollup_write(rollup)
                evse.save(update_fields=list(values))
                if bumped:
                    Location.objects.filter(pk=location.pk).update(last_updated=when)
                location_doc_refresh(location)
            else:
                location.doc = doc
                _evse_and_location_write(evse, list(values), location, rollup)
            return _patched(partner, key, data, location, was_publishable, evse=evse)
        evse.save()
        for connector_data in data.get("connectors") or []:  # those connectors as sent; the others stay
            existing = _connector_find(evse, connector_data["id"])
            if existing is not None and _older(existing.last_updated, connector_data["last_updated"]):
                continue  # never overwrite newer data
            position = existing.position if existing else _next_position(evse.connectors.all())
            _bump(location, _connector_upsert(evse, connector_data, position).last_updated, evse)
        _bump(location, when)
    else:
        evse = _evse_find(location, key.evse_uid or "")
        connector = _connector_find(evse, key.connector_id or "") if evse else None
        if evse is None or connector is None:
            raise NotFound(f"Unknown connector {key.connector_id} of EVSE {key.evse_uid}")
        if when < connector.last_updated:
            return WriteResult(location, ignored=True)
        for name, value in _without(CONNECTOR.from_ocpi(data, partial=True), ("ocpi_id",)).items():
            setattr(connector, name, value)
        connector.save()
        _bump(location, when, evse)
    location_doc_refresh(location)
    return _patched(partner, key, data, location, was_publishable)


def _patched(
    partner: Partner | None,
    key: Key,
    data: dict[str, Any],
    location: Location,
    was_publishable: bool,
    *,
    evse: Evse | None = None,
) -> WriteResult:
    """After a PATCH is stored: queue it for the receiving partners (own objects)."""
    fields = [f for f in data if f != "last_updated"]
    if not publishable(location) and was_publishable:
        fields = sorted({*fields, "publish"})  # partners that showed it must learn it is no longer public
    _push(partner, key, Delivery.Method.PATCH, fields, location=location, was_publishable=was_publishable, evse=evse)
    return WriteResult(location)


def _doc_with_evse(location: Location, evse: Evse) -> str | None:
    """The cached JSON with `location.last_updated` and one EVSE's own fields (its connectors unchanged) written in:
    what `location_render_rows` gives after the change (same fields, same order). None when the cached JSON does
    not hold that EVSE (then the caller renders it again)."""
    if not location.doc:
        return None
    doc = orjson.loads(location.doc)
    evses = doc.get("evses") or []
    for index, cached in enumerate(evses):
        if cached.get("uid") == evse.uid:
            data = EVSE.to_ocpi(evse)
            data["connectors"] = cached.get("connectors", [])
            evses[index] = {name: data[name] for name in _order("EVSE") if name in data}
            break
    else:
        return None
    doc["last_updated"] = format_datetime(location.last_updated)
    return dumps(doc).decode()


def _evse_and_location_write(evse: Evse, names: list[str], location: Location, rollup: list[RollupRow]) -> None:
    """Save the EVSE's fields `names`, the location's last_updated and cached JSON, and the `rollup` rows of the
    EVSE's status history: one statement on PostgreSQL (a data-modifying WITH), three hand-written ones on SQLite,
    up to four through the ORM elsewhere."""
    upsert = rollup_upsert_sql(rollup) if connection.vendor == "postgresql" and len(rollup) <= _ROLLUP_INLINE else None
    if upsert is None:
        rollup_write(rollup)
    if connection.vendor not in ("postgresql", "sqlite"):
        evse.save(update_fields=names)
        Location.objects.filter(pk=location.pk).update(last_updated=location.last_updated, doc=location.doc)
        return
    fields = [cast(Field, Evse._meta.get_field(name)) for name in names]
    sets = ", ".join(f"{connection.ops.quote_name(cast(str, field.column))} = %s" for field in fields)
    params = [field.get_db_prep_save(getattr(evse, field.attname), connection) for field in fields]
    stamp = cast(Field, Location._meta.get_field("last_updated")).get_db_prep_save(location.last_updated, connection)
    with_rollup, rollup_params = (f', "rollup" AS ({upsert[0]})', upsert[1]) if upsert else ("", [])
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":  # no UPDATE inside a WITH there
            cursor.execute(f'UPDATE {_table(Evse)} SET {sets} WHERE "id" = %s', [*params, evse.pk])  # noqa: S608
            cursor.execute(
                f'UPDATE {_table(Location)} SET "last_updated" = %s, "doc" = %s WHERE "id" = %s',  # noqa: S608
                [stamp, location.doc, location.pk],
            )
            return
        cursor.execute(
            f'WITH "evse" AS (UPDATE {_table(Evse)} SET {sets} WHERE "id" = %s){with_rollup} '  # noqa: S608 (names from the models)
            f'UPDATE {_table(Location)} SET "last_updated" = %s, "doc" = %s WHERE "id" = %s',
            [*params, evse.pk, *rollup_params, stamp, location.doc, location.pk],
        )


_ROLLUP_INLINE = 50  # rollup rows written in the EVSE's statement (a change spans a day or two: 1-6 rows)


# --- own objects ---


def evse_status_set(*, key: Key, status: str, at: datetime | None = None) -> WriteResult:
    """Set an own EVSE's status (the hot path from a charge point backend): PATCHed to every receiving partner."""
    stamp = format_datetime(at or timezone.now())
    return location_patch(partner=None, key=key, data={"status": status, "last_updated": stamp})


@transaction.atomic
def location_touch_own(*, location: Location, evse: Evse | None = None) -> None:
    """After staff edited own rows in the admin: bump last_updated, refresh the cached JSON, push the whole object."""
    now = timezone.now()
    key = Key(location.country_code, location.party_id, location.ocpi_id, evse.uid if evse else None)
    if evse is not None:
        Evse.objects.filter(pk=evse.pk).update(last_updated=now)
    Location.objects.filter(pk=location.pk).update(last_updated=now)
    location.last_updated = now
    location_doc_refresh(location)
    _push(None, key, Delivery.Method.PUT, location=location)


# --- push and pull ---


def publishable(location: Location) -> bool:
    """Own locations we send to partners: public ones, and private ones meant for listed tokens (REFERENCE §6.1)."""
    return location.publish or bool(location.publish_allowed_to)


def _render_for_push(
    *, country_code: str, party_id: str, object_path: str, method: str, fields: list[str]
) -> dict[str, Any] | None:
    parts = object_path.split("/")
    key = Key(country_code, party_id, *parts)  # type: ignore[arg-type]
    return _render_found(location_find(key), key, method, fields)


def _render_many_for_push(*, items: list[dict[str, Any]]) -> list[dict[str, Any] | None]:
    """`_render_for_push` for the objects of a push batch, their locations read in one query."""
    keys = [Key(i["country_code"], i["party_id"], *i["object_path"].split("/")) for i in items]  # type: ignore[arg-type]
    owners: dict[tuple[str, str], set[str]] = {}
    for key in keys:
        owners.setdefault((key.country_code.lower(), key.party_id.lower()), set()).add(key.location_id.lower())
    wanted = Q(pk__in=[])
    for (country_code, party_id), ids in owners.items():
        wanted |= Q(country_code__lower=country_code, party_id__lower=party_id, ocpi_id__lower__in=sorted(ids))
    found = {
        (location.country_code.lower(), location.party_id.lower(), location.ocpi_id.lower()): location
        for location in (Location.objects.filter(wanted) if keys else ())
    }
    return [
        _render_found(
            found.get((key.country_code.lower(), key.party_id.lower(), key.location_id.lower())),
            key,
            item["method"],
            item["fields"],
        )
        for key, item in zip(keys, items, strict=True)
    ]


def _render_found(location: Location | None, key: Key, method: str, fields: list[str]) -> dict[str, Any] | None:
    if location is None or not location.is_own:
        return None  # an unpublished location is still rendered: _push only queues it for partners that had it
    data = _from_doc(location, key)  # the cached JSON holds the object as it is now: no further queries
    if data is None:
        try:
            data = location_object_get(key=key, partner=None)
        except (UnknownLocation, NotFound):
            return None
    if method == Delivery.Method.PATCH and fields:
        patch = {name: data[name] for name in fields if name in data}
        patch["last_updated"] = data["last_updated"]
        return patch
    return data


def _from_doc(location: Location, key: Key) -> dict[str, Any] | None:
    """The Location, EVSE or Connector at `key` out of the location's cached JSON (what `location_object_get`
    renders from the rows), or None when the JSON is empty or does not hold it."""
    if not location.doc:
        return None
    data: dict[str, Any] = orjson.loads(location.doc)
    if key.evse_uid is None:
        return data
    uid = key.evse_uid.lower()
    evse = next((e for e in data.get("evses") or [] if str(e.get("uid", "")).lower() == uid), None)
    if evse is None or key.connector_id is None:
        return evse
    wanted = key.connector_id.lower()
    return next((c for c in evse.get("connectors") or [] if str(c.get("id", "")).lower() == wanted), None)


def _upsert_from_pull(*, partner: Partner, data: Any) -> tuple[str, str, str]:
    """One Location from a partner's Sender list: stored like a PUT from that partner."""
    if not isinstance(data, dict):
        raise InvalidParameters("list item: must be a Location object")
    key = Key(str(data.get("country_code", "")), str(data.get("party_id", "")), str(data.get("id", "")))
    location_put(partner=partner, key=key, data=data)
    return (key.country_code.upper(), key.party_id.upper(), key.location_id.upper())


@transaction.atomic
def _remove_missing(*, partner: Partner, keep: set[tuple[str, str, str]]) -> int:
    """After a full pull: the partner's locations it no longer lists have all their EVSEs REMOVED."""
    removed = 0
    now = timezone.now()
    for location in Location.objects.filter(partner=partner).select_for_update():
        if (location.country_code.upper(), location.party_id.upper(), location.ocpi_id.upper()) in keep:
            continue
        changed = location.evses.exclude(status=REMOVED).update(status=REMOVED, last_updated=now)
        if changed:
            Location.objects.filter(pk=location.pk).update(last_updated=now)
            location.last_updated = now
            location_doc_refresh(location)
            removed += 1
    return removed


def register_push_and_pull() -> None:
    push_module_register(
        PushModule(
            module=ModuleID.LOCATIONS,
            receiver_roles=(Role.EMSP, Role.NSP, Role.NAP, Role.OTHER, Role.HUB),
            render=_render_for_push,
            render_many=_render_many_for_push,
        )
    )
    pull_module_register(
        PullModule(module=ModuleID.LOCATIONS, upsert=_upsert_from_pull, remove_missing=_remove_missing)
    )


# --- own objects edited by staff (the back-office) ---


def own_object_errors(type_name: str, data: dict[str, Any]) -> list[str]:
    """Every rule an own Location, EVSE or Connector breaks ('path: message'; empty when valid), its child lists
    (a Location's evses, an EVSE's connectors) left out: those are checked where they are edited."""
    from ocpi_core.validation import validation_errors

    children = {"Location": "evses", "EVSE": "connectors"}.get(type_name)
    errors = [e for e in validation_errors(type_name, data) if not (children and e.startswith(f"{children}:"))]
    if not errors:
        try:
            _check_rules(type_name, data)
        except InvalidParameters as exc:
            errors.append(exc.message)
    return errors


def _staff_columns(model: type[Location | Evse | Connector], names: Iterable[str]) -> list[str]:
    """The columns among a form's changed fields (forms may carry fields of their own)."""
    columns = {f.name for f in model._meta.concrete_fields if f.editable and not f.primary_key}
    return sorted({name for name in names if name in columns})


def _staff_validated(type_name: str, mapper: OcpiMapper, obj: Location | Evse | Connector) -> None:
    """Lists left empty are stored as NULL (as the receiver stores them), then the row must be a valid OCPI object."""
    from ocpi_core.validation import object_fields

    for rule in object_fields(type_name):
        if rule.card == "*" and rule.name not in mapper.children and getattr(obj, mapper.attr(rule.name)) == []:
            setattr(obj, mapper.attr(rule.name), None)
    errors = own_object_errors(type_name, mapper.to_ocpi(obj))
    if errors:
        raise InvalidParameters("; ".join(errors))


def _staff_own_location(location_id: int | None) -> Location:
    location = Location.objects.select_for_update().filter(pk=location_id).first() if location_id else None
    if location is None:
        raise UnknownLocation("Unknown location")
    if not location.is_own:
        raise InvalidParameters("Partners' locations are read-only here: they change when the partner sends them")
    return location


@transaction.atomic
def location_save_from_admin(
    *, location: Location, changed: Iterable[str] = (), evses: Iterable[tuple[Evse, Iterable[str]]] = ()
) -> bool:
    """Staff saved one of our own Locations, and maybe some of its EVSEs listed on its page (`evses`: each EVSE
    with its changed fields). The changed rows and the location get last_updated = now, the cached JSON is
    refreshed and the whole location is queued as a PUT for every partner receiving Locations, in this transaction.
    Nothing is written when nothing changed. Returns whether anything was saved.
    """
    new = location.pk is None
    if not new:
        _staff_own_location(location.pk)  # lock; and a partner's location is refused
    elif location.partner_id is not None:
        raise InvalidParameters("Partners' locations are created by the partner, not here")
    fields = _staff_columns(Location, changed)
    evse_changes = [(evse, _staff_columns(Evse, names)) for evse, names in evses]
    evse_changes = [(evse, names) for evse, names in evse_changes if names]
    if not new and not fields and not evse_changes:
        return False
    now = timezone.now()
    location.last_updated = now
    _staff_validated("Location", LOCATION, location)
    location.full_clean(exclude=["doc"])
    if new:
        location.save()
    else:
        location.save(update_fields=[*fields, "last_updated", "updated_at"])
    for evse, names in evse_changes:
        if evse.location_id != location.pk or evse.pk is None:
            raise InvalidParameters(f"EVSE {evse.uid} is not an EVSE of location {location.ocpi_id}")
        evse.last_updated = now
        _staff_validated("EVSE", EVSE, evse)
        evse.full_clean(exclude=["location"])
        evse.save(update_fields=[*names, "last_updated"])  # only what staff changed: the status may move meanwhile
    location_doc_refresh(location)
    _push(
        None,
        Key(location.country_code, location.party_id, location.ocpi_id),
        Delivery.Method.PUT,
        location=location,
        was_publishable=not new and bool({"publish", "publish_allowed_to"} & set(fields)),  # it may have been shown
    )
    return True


@transaction.atomic
def evse_save_from_admin(
    *,
    evse: Evse,
    changed: Iterable[str] = (),
    connectors: Iterable[tuple[Connector, Iterable[str]]] = (),
    deleted: Iterable[Connector] = (),
) -> bool:
    """Staff saved (or added) an EVSE of one of our own Locations with its connectors (`connectors`: new or changed
    ones with their changed fields; `deleted`: removed ones; at least one must remain). The EVSE, changed
    connectors and the location get last_updated = now, the cached JSON is refreshed and the EVSE is queued as a
    PUT (with its connectors) for every partner receiving Locations. Returns whether anything was saved.
    """
    location = _staff_own_location(evse.location_id)
    new = evse.pk is None
    fields = _staff_columns(Evse, changed)
    connector_changes = [(c, _staff_columns(Connector, names)) for c, names in connectors]
    connector_changes = [(c, names) for c, names in connector_changes if names or c.pk is None]
    gone = [c for c in deleted if c.pk is not None]
    if not new and not fields and not connector_changes and not gone:
        return False
    now = timezone.now()
    if new:
        last = location.evses.order_by("-position").first()
        evse.position = (last.position + 1) if last else 0
    evse.location = location
    evse.last_updated = now
    _staff_validated("EVSE", EVSE, evse)
    evse.full_clean()
    if new:
        evse.save()
    else:
        evse.save(update_fields=[*fields, "last_updated"])  # only what staff changed: the status may move meanwhile
    for connector in gone:
        if connector.evse_id != evse.pk:
            raise InvalidParameters(f"Connector {connector.ocpi_id} is not a connector of EVSE {evse.uid}")
        connector.delete()
    next_position = max([c.position for c in evse.connectors.all()], default=-1) + 1
    for connector, _names in connector_changes:
        if connector.pk is None:
            connector.position = next_position
            next_position += 1
        elif connector.evse_id != evse.pk:
            raise InvalidParameters(f"Connector {connector.ocpi_id} is not a connector of EVSE {evse.uid}")
        connector.evse = evse
        connector.last_updated = now
        _staff_validated("Connector", CONNECTOR, connector)
        connector.full_clean()
        connector.save()
    if not evse.connectors.exists():
        raise InvalidParameters("connectors: an EVSE needs at least one connector")
    Location.objects.filter(pk=location.pk).update(last_updated=now)
    location.last_updated = now
    location_doc_refresh(location)
    _push(
        None,
        Key(location.country_code, location.party_id, location.ocpi_id, evse.uid),
        Delivery.Method.PUT,
        location=location,
    )
    return True
