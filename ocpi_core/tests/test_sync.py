"""Pull sync (ocpi_core.sync and the sync tasks) against partner platforms on local HTTP servers.

Each partner is a real HTTP server serving a Sender list (a CPO's; an eMSP's for tokens) with real pagination
semantics (date_from / date_to, offset / limit clamped to its own maximum, X-Total-Count, X-Limit, Link) over valid
objects owned by its party. The module-specific parts (how to make, change and break a valid object, how to read back
what we stored, the party's role and where the list is, whether a stored object may change) live in a `ModuleCase`;
the tests that hold for every pullable module run once per registered case (a new pullable module fails
`test_every_pullable_module_has_a_case` until it has one). CDRs are immutable: where the other modules' objects
change, a changed CDR is a refused conflict, and new ones arrive instead. What a full sync does to a vanished object
differs per module (EVSEs REMOVED, tariffs deleted, tokens no longer valid, sessions and CDRs kept): one test each.
"""

import inspect
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
from celery.schedules import crontab
from django.conf import settings
from django.db import connection
from django.utils import timezone
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from config.celery_app import app
from conftest import auth_header, envelope_body, make_partner
from locations.models import Evse, Location
from locations.services import location_render
from ocpi_core.constants import InterfaceRole, ModuleID, Role
from ocpi_core.envelope import format_datetime, parse_datetime
from ocpi_core.models import Partner, PartnerEndpoint, Party, SyncRun, SyncState
from ocpi_core.sync import SYNC_STALE_AFTER, SyncBusy, pull_modules, sync_run, sync_targets
from ocpi_core.tasks import sync_all_task, sync_partner_task

BASE_TIME = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
OWNER = ("DE", "PCP")  # the partner's CPO party
FOREIGN = ("DE", "XYZ")  # a party the partner never announced


# --- the modules ---------------------------------------------------------------------------------------------------


def location_make(country_code: str, party_id: str, n: int, when: datetime | None = None) -> dict[str, Any]:
    """A valid Location with 1-3 EVSEs of 1-2 connectors, using most optional fields."""
    stamp = format_datetime(when or BASE_TIME + timedelta(minutes=n))
    evses = []
    for e in range(1 + n % 3):
        connectors = [
            {
                "id": str(c + 1),
                "standard": ("IEC_62196_T2", "IEC_62196_T2_COMBO")[c],
                "format": ("SOCKET", "CABLE")[c],
                "power_type": ("AC_3_PHASE", "DC")[c],
                "max_voltage": (400, 920)[c],
                "max_amperage": (32, 200)[c],
                "max_electric_power": (22000, 150000)[c],
                "tariff_ids": [f"T{n}-{c}"],
                "last_updated": stamp,
            }
            for c in range(1 + (n + e) % 2)
        ]
        evse: dict[str, Any] = {
            "uid": f"{party_id}-{n}-{e}",
            "evse_id": f"{country_code}*{party_id}*E{n}*{e}",
            "status": ("AVAILABLE", "CHARGING", "OUTOFORDER")[(n + e) % 3],
            "capabilities": ["RFID_READER", "REMOTE_START_STOP_CAPABLE"],
            "connectors": connectors,
            "physical_reference": str(e + 1),
            "last_updated": stamp,
        }
        if e == 0:
            evse["parking_restrictions"] = ["EV_ONLY"]
            evse["floor_level"] = "-1"
        evses.append(evse)
    location: dict[str, Any] = {
        "country_code": country_code,
        "party_id": party_id,
        "id": f"LOC{n:03d}",
        "publish": True,
        "name": f"Station {n}",
        "address": f"Hauptstrasse {n}",
        "city": "Berlin",
        "postal_code": f"10{n:03d}",
        "country": "DEU",
        "coordinates": {"latitude": f"52.{n:05d}", "longitude": f"13.{n:05d}"},
        "parking_type": "ON_STREET",
        "evses": evses,
        "operator": {"name": "Partner Charging", "website": "https://partner.example.com"},
        "facilities": ["CAFE", "PARKING_LOT"],
        "time_zone": "Europe/Berlin",
        "opening_times": {"twentyfourseven": True}
        if n % 2
        else {
            "twentyfourseven": False,
            "regular_hours": [{"weekday": 1, "period_begin": "08:00", "period_end": "20:00"}],
        },
        "energy_mix": {"is_green_energy": True, "energy_sources": [{"source": "SOLAR", "percentage": 60}]},
        "last_updated": stamp,
    }
    return location


def location_change(location: dict[str, Any], when: datetime) -> None:
    """What a CPO changes: a name and an EVSE status, with last_updated moving on."""
    stamp = format_datetime(when)
    location["name"] = f"Renamed {location['id']}"
    location["evses"][0]["status"] = "BLOCKED"
    location["evses"][0]["last_updated"] = stamp
    location["last_updated"] = stamp


def location_break(location: dict[str, Any]) -> str:
    """Make a location invalid in one field; returns that field's path."""
    location["evses"][0]["status"] = "HALF_BROKEN"
    return "evses[0].status"


def locations_stored(partner: Partner) -> dict[str, Any]:
    """The partner's locations as we serve them back: the cached OCPI JSON."""
    return {loc.ocpi_id: orjson.loads(loc.doc) for loc in Location.objects.filter(partner=partner)}


def locations_rendered(partner: Partner) -> dict[str, Any]:
    """The partner's locations rendered from the rows (Location, EVSE, Connector)."""
    return {loc.ocpi_id: location_render(loc) for loc in Location.objects.filter(partner=partner)}


def tariff_make(country_code: str, party_id: str, n: int, when: datetime | None = None) -> dict[str, Any]:
    """A valid Tariff: a daytime and a night-time element, min price, alternative text and URL."""
    return {
        "country_code": country_code,
        "party_id": party_id,
        "id": f"TAR{n:03d}",
        "currency": "EUR",
        "type": "REGULAR",
        "tariff_alt_text": [{"language": "en", "text": f"{20 + n} cents per kWh in the day, 15 at night"}],
        "tariff_alt_url": f"https://partner.example.com/tariffs/{n}",
        "min_price": {"excl_vat": 0.5, "incl_vat": 0.6},
        "elements": [
            {
                "price_components": [{"type": "ENERGY", "price": (20 + n) / 100, "vat": 19.0, "step_size": 1}],
                "restrictions": {"start_time": "08:00", "end_time": "20:00", "day_of_week": ["MONDAY", "FRIDAY"]},
            },
            {
                "price_components": [
                    {"type": "ENERGY", "price": 0.15, "vat": 19.0, "step_size": 1},
                    {"type": "PARKING_TIME", "price": 2.5, "vat": 19.0, "step_size": 300},
                ]
            },
        ],
        "start_date_time": "2025-01-01T00:00:00Z",
        "last_updated": format_datetime(when or BASE_TIME + timedelta(minutes=n)),
    }


def tariff_change(tariff: dict[str, Any], when: datetime) -> None:
    tariff["elements"][0]["price_components"][0]["price"] = 0.99
    tariff["last_updated"] = format_datetime(when)


def tariff_break(tariff: dict[str, Any]) -> str:
    tariff["elements"][0]["price_components"][0]["type"] = "FREE_LUNCH"
    return "elements[0].price_components[0].type"


def tariffs_stored(partner: Partner) -> dict[str, Any]:
    from tariffs.models import Tariff

    return {tariff.ocpi_id: orjson.loads(tariff.doc) for tariff in Tariff.objects.filter(partner=partner)}


def tariffs_rendered(partner: Partner) -> dict[str, Any]:
    from tariffs.models import Tariff, dumps_exact
    from tariffs.services import tariff_render

    return {t.ocpi_id: orjson.loads(dumps_exact(tariff_render(t))) for t in Tariff.objects.filter(partner=partner)}


def token_make(country_code: str, party_id: str, n: int, when: datetime | None = None) -> dict[str, Any]:
    """A valid Token of an eMSP party, using every optional field; every third one an APP_USER (the key has `type`)."""
    return {
        "country_code": country_code,
        "party_id": party_id,
        "uid": f"TOK{n:03d}",
        "type": "APP_USER" if n % 3 == 0 else "RFID",
        "contract_id": f"{country_code}-{party_id}-C{n:08d}",
        "visual_number": f"DF-{n:06d}",
        "issuer": "Partner Mobility",
        "group_id": f"GROUP{n % 4}",
        "valid": True,
        "whitelist": ("ALLOWED", "ALWAYS", "ALLOWED_OFFLINE")[n % 3],
        "language": "de",
        "default_profile_type": "GREEN",
        "energy_contract": {"supplier_name": "Green Power", "contract_id": f"EC{n:03d}"},
        "last_updated": format_datetime(when or BASE_TIME + timedelta(minutes=n)),
    }


def token_change(token: dict[str, Any], when: datetime) -> None:
    """What an eMSP changes: the whitelist rule and the printed number of a card."""
    token["whitelist"] = "NEVER"
    token["visual_number"] = f"DF-NEW-{token['uid']}"
    token["last_updated"] = format_datetime(when)


def token_break(token: dict[str, Any]) -> str:
    token["whitelist"] = "SOMETIMES"
    return "whitelist"


def tokens_stored(partner: Partner) -> dict[str, Any]:
    from tokens.models import Token

    return {token.uid: orjson.loads(token.doc) for token in Token.objects.filter(partner=partner)}


def tokens_rendered(partner: Partner) -> dict[str, Any]:
    from tokens.models import Token
    from tokens.services import token_render

    return {token.uid: token_render(token) for token in Token.objects.filter(partner=partner)}


def session_make(country_code: str, party_id: str, n: int, when: datetime | None = None) -> dict[str, Any]:
    """A valid Session for a token of our eMSP (NL*OWE): a charging period, a cost; every other one COMPLETED."""
    start = BASE_TIME - timedelta(hours=2) + timedelta(minutes=n)
    session: dict[str, Any] = {
        "country_code": country_code,
        "party_id": party_id,
        "id": f"SES{n:03d}",
        "start_date_time": format_datetime(start),
        "kwh": 1.25 * n,
        "cdr_token": {
            "country_code": "NL",
            "party_id": "OWE",
            "uid": f"04AA{n:04d}",
            "type": "RFID",
            "contract_id": f"NL-OWE-C{n:08d}",
        },
        "auth_method": "WHITELIST",
        "authorization_reference": f"AUTH{n:03d}",
        "location_id": f"LOC{n:03d}",
        "evse_uid": f"{party_id}-{n}-0",
        "connector_id": "1",
        "meter_id": f"METER{n}",
        "currency": "EUR",
        "charging_periods": [
            {
                "start_date_time": format_datetime(start),
                "dimensions": [{"type": "ENERGY", "volume": 1.25 * n}, {"type": "TIME", "volume": 0.5}],
                "tariff_id": f"T{n}-0",
            }
        ],
        "total_cost": {"excl_vat": 0.3125 * n, "incl_vat": 0.375 * n},
        "status": "ACTIVE",
        "last_updated": format_datetime(when or BASE_TIME + timedelta(minutes=n)),
    }
    if n % 2 == 0:
        session["end_date_time"] = format_datetime(start + timedelta(minutes=30))
        session["status"] = "COMPLETED"
    return session


def session_change(session: dict[str, Any], when: datetime) -> None:
    """What a CPO changes while charging: more energy in a new charging period, the cost so far."""
    session["kwh"] += 2.5
    session["charging_periods"].append(
        {"start_date_time": format_datetime(when), "dimensions": [{"type": "ENERGY", "volume": 2.5}]}
    )
    session["total_cost"] = {"excl_vat": 9.5, "incl_vat": 11.305}
    session["last_updated"] = format_datetime(when)


def session_break(session: dict[str, Any]) -> str:
    session["status"] = "HALF_DONE"
    return "status"


def sessions_stored(partner: Partner) -> dict[str, Any]:
    from sessions_app.models import Session

    return {session.ocpi_id: orjson.loads(session.doc) for session in Session.objects.filter(partner=partner)}


def sessions_rendered(partner: Partner) -> dict[str, Any]:
    """The partner's sessions rendered from the columns, not the cached document."""
    from sessions_app.models import Session
    from sessions_app.services import session_render
    from tariffs.models import dumps_exact

    rendered = {}
    for session in Session.objects.filter(partner=partner):
        session.doc = ""  # session_render serves the cache when there is one
        rendered[session.ocpi_id] = orjson.loads(dumps_exact(session_render(session)))
    return rendered


def cdr_make(country_code: str, party_id: str, n: int, when: datetime | None = None) -> dict[str, Any]:
    """A valid CDR for a token of our eMSP (NL*OWE): its tariff, one charging period, totals that add up."""
    start = BASE_TIME - timedelta(hours=3) + timedelta(minutes=n)
    energy = 2.5 * n
    cost = {"excl_vat": 0.625 * n, "incl_vat": 0.75 * n}
    return {
        "country_code": country_code,
        "party_id": party_id,
        "id": f"CDR{n:03d}",
        "start_date_time": format_datetime(start),
        "end_date_time": format_datetime(start + timedelta(hours=1)),
        "session_id": f"SES{n:03d}",
        "cdr_token": {
            "country_code": "NL",
            "party_id": "OWE",
            "uid": f"04AA{n:04d}",
            "type": "RFID",
            "contract_id": f"NL-OWE-C{n:08d}",
        },
        "auth_method": "AUTH_REQUEST",
        "authorization_reference": f"AUTH{n:03d}",
        "cdr_location": {
            "id": f"LOC{n:03d}",
            "name": f"Station {n}",
            "address": f"Hauptstrasse {n}",
            "city": "Berlin",
            "postal_code": f"10{n:03d}",
            "country": "DEU",
            "coordinates": {"latitude": f"52.{n:05d}", "longitude": f"13.{n:05d}"},
            "evse_uid": f"{party_id}-{n}-0",
            "evse_id": f"{country_code}*{party_id}*E{n}*0",
            "connector_id": "1",
            "connector_standard": "IEC_62196_T2",
            "connector_format": "SOCKET",
            "connector_power_type": "AC_3_PHASE",
        },
        "meter_id": f"METER{n}",
        "currency": "EUR",
        "tariffs": [
            {
                "country_code": country_code,
                "party_id": party_id,
                "id": f"T{n}-0",
                "currency": "EUR",
                "elements": [{"price_components": [{"type": "ENERGY", "price": 0.25, "vat": 20.0, "step_size": 1}]}],
                "last_updated": "2025-01-01T00:00:00Z",
            }
        ],
        "charging_periods": [
            {
                "start_date_time": format_datetime(start),
                "dimensions": [{"type": "ENERGY", "volume": energy}, {"type": "TIME", "volume": 1.0}],
                "tariff_id": f"T{n}-0",
            }
        ],
        "total_cost": cost,
        "total_energy": energy,
        "total_energy_cost": cost,
        "total_time": 1.0,
        "credit": False,
        "last_updated": format_datetime(when or BASE_TIME + timedelta(minutes=n)),
    }


def cdr_change(cdr: dict[str, Any], when: datetime) -> None:
    """What a CPO may not do: change a CDR it listed (CDRs are immutable; it credits one under a new id)."""
    cdr["total_cost"] = {"excl_vat": 99.0, "incl_vat": 118.8}
    cdr["last_updated"] = format_datetime(when)


def cdr_break(cdr: dict[str, Any]) -> str:
    cdr["auth_method"] = "TELEPATHY"
    return "auth_method"


def cdrs_stored(partner: Partner) -> dict[str, Any]:
    from cdrs.models import Cdr

    return {cdr.ocpi_id: orjson.loads(cdr.doc) for cdr in Cdr.objects.filter(partner=partner)}


def cdrs_rendered(partner: Partner) -> dict[str, Any]:
    """A CDR is kept as sent (nothing to render): its document with every field the columns copy taken from them."""
    from cdrs.models import Cdr

    rendered = {}
    for cdr in Cdr.objects.filter(partner=partner):
        data = orjson.loads(cdr.doc)
        data.update(
            country_code=cdr.country_code,
            party_id=cdr.party_id,
            id=cdr.ocpi_id,
            start_date_time=format_datetime(cdr.start_date_time),
            end_date_time=format_datetime(cdr.end_date_time),
            session_id=cdr.session_id,
            auth_method=cdr.auth_method,
            currency=cdr.currency,
            credit=cdr.credit,
            last_updated=format_datetime(cdr.last_updated),
        )
        data["cdr_token"] = {
            **data["cdr_token"],
            "country_code": cdr.token_country_code,
            "party_id": cdr.token_party_id,
            "uid": cdr.token_uid,
            "contract_id": cdr.contract_id,
        }
        data["cdr_location"] = {**data["cdr_location"], "id": cdr.location_id, "evse_uid": cdr.evse_uid}
        rendered[cdr.ocpi_id] = data
    return rendered


@dataclass(frozen=True)
class ModuleCase:
    """One pullable module as these tests exercise it."""

    module: str
    prefix: str  # of the ids `make` gives: prefix + n on three digits
    path: str  # the partner's Sender list
    make: Callable[..., dict[str, Any]]  # (country_code, party_id, n, when=None) -> a valid object
    change: Callable[[dict[str, Any], datetime], None]  # the partner's change, with last_updated = when
    make_invalid: Callable[[dict[str, Any]], str]  # break one field in place; returns its path
    stored: Callable[[Partner], dict[str, Any]]  # id -> the stored object as we serve it
    rendered: Callable[[Partner], dict[str, Any]]  # id -> the stored object rebuilt from its rows
    id_field: str = "id"  # where `make` puts the id (a Token's is its `uid`)
    role: str = Role.CPO  # the partner's party serving the Sender list
    mutable: bool = True  # False: a changed object under a stored id is a conflict, refused (CDRs)
    named_by_id: bool = True  # a refused object is named "CC*PARTY id" in a run's message; else by its place

    def id(self, n: int) -> str:
        return f"{self.prefix}{n:03d}"

    def named(self, owner: tuple[str, str], n: int, page: int, place: int) -> str:
        """How a run's message names refused object `n`, item `place` (from 1) of page `page`. The sync names an
        object by country_code, party_id and id; a Token has no `id` (uid and type), so by its place in the list."""
        return f"{owner[0]}*{owner[1]} {self.id(n)}" if self.named_by_id else f"object {place} of page {page}"


LOCATIONS = ModuleCase(
    module=ModuleID.LOCATIONS,
    prefix="LOC",
    path="/ocpi/2.2.1/cpo/locations",
    make=location_make,
    change=location_change,
    make_invalid=location_break,
    stored=locations_stored,
    rendered=locations_rendered,
)
TARIFFS = ModuleCase(
    module=ModuleID.TARIFFS,
    prefix="TAR",
    path="/ocpi/2.2.1/cpo/tariffs",
    make=tariff_make,
    change=tariff_change,
    make_invalid=tariff_break,
    stored=tariffs_stored,
    rendered=tariffs_rendered,
)
TOKENS = ModuleCase(
    module=ModuleID.TOKENS,
    prefix="TOK",
    path="/ocpi/2.2.1/emsp/tokens",
    make=token_make,
    change=token_change,
    make_invalid=token_break,
    stored=tokens_stored,
    rendered=tokens_rendered,
    id_field="uid",
    role=Role.EMSP,
)
SESSIONS = ModuleCase(
    module=ModuleID.SESSIONS,
    prefix="SES",
    path="/ocpi/2.2.1/cpo/sessions",
    make=session_make,
    change=session_change,
    make_invalid=session_break,
    stored=sessions_stored,
    rendered=sessions_rendered,
)
CDRS = ModuleCase(
    module=ModuleID.CDRS,
    prefix="CDR",
    path="/ocpi/2.2.1/cpo/cdrs",
    make=cdr_make,
    change=cdr_change,
    make_invalid=cdr_break,
    stored=cdrs_stored,
    rendered=cdrs_rendered,
    mutable=False,
)
ALL_CASES = [LOCATIONS, TARIFFS, TOKENS, SESSIONS, CDRS]
CASES = [pytest.param(case, id=case.module) for case in ALL_CASES if case.module in pull_modules()]


def test_every_pullable_module_has_a_case() -> None:
    """A module that registers for pull sync must be covered here."""
    assert set(pull_modules()) <= {case.module for case in ALL_CASES}
    assert ModuleID.LOCATIONS in pull_modules()


# --- the partner ---------------------------------------------------------------------------------------------------


@dataclass
class SenderPartner:
    """A partner platform serving one Sender list, registered with us (Partner, its party in the role serving that
    list, SENDER endpoint).

    `broken_link` makes the Link of every page (from `broken_from_offset` on) unusable in one way;
    `refuse_from_offset` answers HTTP 500 to pages from that offset on; `html` answers a web page instead of an
    envelope; `accepted_token` is the token it accepts (ours unless changed); `on_request(n)` runs in the server
    thread before the n-th list request is answered.
    """

    server: HTTPServer
    case: ModuleCase
    partner: Partner
    accepted_token: str
    objects: list[Any] = field(default_factory=list)
    max_limit: int = 4
    broken_link: str | None = None
    broken_from_offset: int = 0
    refuse_from_offset: int | None = None
    html: bool = False
    on_request: Callable[[int], None] | None = None
    requests: list[dict[str, str]] = field(default_factory=list)
    routing: list[dict[str, str]] = field(default_factory=list)  # the OCPI-from/to-* headers of each list request
    stray: list[str] = field(default_factory=list)

    @property
    def list_url(self) -> str:
        return self.server.url_for(self.case.path)

    def by_id(self) -> dict[str, Any]:
        return {obj[self.case.id_field]: obj for obj in self.objects if isinstance(obj, dict)}

    def get(self, object_id: str) -> dict[str, Any]:
        return self.by_id()[object_id]

    def drop(self, *object_ids: str) -> None:
        self.objects = [o for o in self.objects if not (isinstance(o, dict) and o[self.case.id_field] in object_ids)]

    def start(self) -> "SenderPartner":
        self.server.expect_request(re.compile(r".*")).respond_with_handler(self._handle)
        return self

    def _handle(self, request: Request) -> Response:
        if request.path != self.case.path:
            self.stray.append(request.full_path)
            return _json(envelope_body(status_code=2000, message="Unknown URL"), 404)
        args = dict(request.args)
        self.requests.append(args)
        self.routing.append({k.lower(): v for k, v in request.headers.items() if k.lower().startswith("ocpi-")})
        if self.on_request is not None:
            self.on_request(len(self.requests))
        if request.headers.get("Authorization") != auth_header(self.accepted_token):
            return _json(envelope_body(status_code=2000, message="Unknown token"), 401)
        if self.html:
            return Response("<html>Down for maintenance</html>", 200, mimetype="text/html")
        items = self._window(args.get("date_from"), args.get("date_to"))
        offset = int(args.get("offset", 0))
        limit = min(int(args.get("limit", self.max_limit)), self.max_limit)
        if self.refuse_from_offset is not None and offset >= self.refuse_from_offset:
            return _json(envelope_body(status_code=3000, message="Internal error"), 500)
        page = items[offset : offset + limit]
        headers = {"X-Total-Count": str(len(items)), "X-Limit": str(limit)}
        following = offset + len(page)
        if following < len(items):
            headers["Link"] = self._link(args, offset, following, limit)
        return _json(envelope_body(page), 200, headers)

    def _window(self, date_from: str | None, date_to: str | None) -> list[Any]:
        """The list as a Sender filters and orders it: date_from inclusive, date_to exclusive, by last_updated.
        Items that are not objects are in every window (a broken partner's list), first."""

        def when(obj: Any) -> datetime:
            return parse_datetime(obj["last_updated"]) if isinstance(obj, dict) else datetime.min.replace(tzinfo=UTC)

        items = [
            obj
            for obj in self.objects
            if not isinstance(obj, dict)
            or (
                (date_from is None or when(obj) >= parse_datetime(date_from))
                and (date_to is None or when(obj) < parse_datetime(date_to))
            )
        ]
        return sorted(
            items, key=lambda obj: (when(obj), str(obj.get(self.case.id_field)) if isinstance(obj, dict) else "")
        )

    def _link(self, args: dict[str, str], offset: int, following: int, limit: int) -> str:
        filters: dict[str, Any] = {k: args[k] for k in ("date_from", "date_to") if k in args}
        good: dict[str, Any] = {**filters, "offset": following, "limit": limit, "page": following // limit + 1}
        if offset < self.broken_from_offset:
            return f'<{self.list_url}?{urlencode(good)}>; rel="next"'
        if self.broken_link == "garbage":
            return "next page: ask again later"
        if self.broken_link == "unparseable":
            return '<http://[::1/ocpi/next>; rel="next"'
        if self.broken_link == "404":
            return f'<{self.server.url_for(self.case.path + "-moved")}?{urlencode(good)}>; rel="next"'
        if self.broken_link == "loop":  # back to the first page, spelt differently from how we asked for it
            return f'<{self.list_url}?{urlencode({**filters, "page": 1, "limit": limit})}>; rel="next"'
        if self.broken_link == "self":  # the page just served, its parameters in another order
            return f'<{self.list_url}?{urlencode(dict(reversed(list(args.items()))))}>; rel="next"'
        return f'<{self.list_url}?{urlencode(good)}>; rel="next"'


def _json(body: bytes, status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(body, status, headers=headers, mimetype="application/json")


class Senders:
    """Registered partners serving a Sender list: `senders(case, count=10, name=..., **options)`. Servers come from
    `pool` (and go back to it, cleared, on `close()`) when given; otherwise they are started and stopped here."""

    def __init__(self, pool: list[HTTPServer] | None = None) -> None:
        self.pool = pool
        self.servers: list[HTTPServer] = []

    def __call__(
        self,
        case: ModuleCase,
        *,
        count: int = 10,
        name: str = "cpo-partner",
        party: tuple[str, str] = OWNER,
        **options: Any,
    ) -> SenderPartner:
        server = self.pool.pop() if self.pool else HTTPServer(host="127.0.0.1", port=0)
        if not server.is_running():
            server.start()
        self.servers.append(server)
        partner, _ = make_partner(name=name, base_url=server.url_for("/ocpi"), roles=((party[0], party[1], case.role),))
        url = server.url_for(case.path)
        PartnerEndpoint.objects.create(partner=partner, identifier=case.module, role=InterfaceRole.SENDER, url=url)
        objects = [case.make(party[0], party[1], n) for n in range(1, count + 1)]
        return SenderPartner(
            server=server, case=case, partner=partner, accepted_token=partner.token_out(), objects=objects, **options
        ).start()

    def close(self) -> None:
        for server in self.servers:
            if self.pool is None:
                if server.is_running():
                    server.stop()
                continue
            server.clear()
            if not server.is_running():
                server.start()
            self.pool.append(server)


@pytest.fixture(scope="module")
def server_pool() -> Iterator[list[HTTPServer]]:
    """Partner servers reused from test to test (stopping one takes a while)."""
    pool: list[HTTPServer] = []
    yield pool
    for server in pool:
        if server.is_running():
            server.stop()


@pytest.fixture
def sender(server_pool: list[HTTPServer], own_parties: list[Party]) -> Iterator[Senders]:
    """Factory of registered partners serving a Sender list (see Senders). Our own parties exist, as on any platform:
    a pulled CDR must be for a token of our eMSP."""
    senders = Senders(server_pool)
    yield senders
    senders.close()


def state_of(partner: Partner, module: str) -> SyncState:
    return SyncState.objects.get(partner=partner, module=module)


# --- first sync, pages, Link headers --------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("case", CASES)
def test_first_sync_follows_links_over_every_page_and_stores_every_object(case, sender):
    partner = sender(case, count=11)
    before = timezone.now()

    run = sync_run(partner=partner.partner, module=case.module)

    assert (run.status, run.kind, run.date_from) == (SyncRun.Status.SUCCEEDED, SyncRun.Kind.INCREMENTAL, None)
    assert (run.pages, run.received, run.errors, run.total, run.removed) == (3, 11, 0, 11, 0)
    assert run.message == ""
    assert run.finished_at is not None
    assert run.finished_at >= run.started_at
    # the first request has no date filter; the next two are the partner's Links (they carry its page marker)
    assert [r.get("date_from") for r in partner.requests] == [None, None, None]
    assert [r.get("page") for r in partner.requests] == [None, "2", "3"]
    assert case.stored(partner.partner) == partner.by_id()
    assert case.rendered(partner.partner) == partner.by_id()
    state = state_of(partner.partner, case.module)
    assert (state.running_since, state.last_full_at) == (None, None)
    assert state.last_success_at is not None
    assert before <= state.last_success_at <= run.started_at


@pytest.mark.django_db
@pytest.mark.parametrize("case", CASES)
def test_every_page_is_asked_for_with_routing_headers_from_our_party_to_the_partners(case, sender):
    """Pull GETs belong to functional modules: OCPI-from-* name our party receiving the module (our eMSP; our CPO
    for tokens), OCPI-to-* the partner's party serving the list (REFERENCE §2.2, §2.10)."""
    partner = sender(case, count=9)

    sync_run(partner=partner.partner, module=case.module)

    ours = ("NL", "OWN") if case.role == Role.EMSP else ("NL", "OWE")
    expected = {
        "ocpi-from-country-code": ours[0],
        "ocpi-from-party-id": ours[1],
        "ocpi-to-country-code": OWNER[0],
        "ocpi-to-party-id": OWNER[1],
    }
    assert partner.routing == [expected] * 3


@pytest.mark.django_db
def test_a_pull_from_a_hub_is_addressed_to_the_hub(sender):
    """GET All via a hub: OCPI-to-* name the hub (REFERENCE §2.10)."""
    partner = sender(LOCATIONS, count=2)
    partner.partner.parties.update(role=Role.HUB)

    sync_run(partner=partner.partner, module=LOCATIONS.module)

    assert partner.routing[0]["ocpi-to-party-id"] == OWNER[1]
    assert partner.routing[0]["ocpi-from-party-id"] == "OWE"


@pytest.mark.django_db
@pytest.mark.parametrize("case", CASES)
def test_incremental_sync_asks_for_changes_since_the_start_of_the_last_successful_sync(case, sender):
    partner = sender(case, count=10)
    first = sync_run(partner=partner.partner, module=case.module)
    first_start = state_of(partner.partner, case.module).last_success_at
    assert first_start is not None
    assert first.finished_at is not None
    assert first.finished_at - first_start > timedelta(milliseconds=3)  # three pages and ten objects stored
    # while our first sync ran, the CPO changed two objects and added one
    stored_before = case.stored(partner.partner)
    case.change(partner.get(case.id(2)), first_start + timedelta(milliseconds=1))
    case.change(partner.get(case.id(7)), first_start + timedelta(milliseconds=2))
    partner.objects.append(case.make(*OWNER, 11, first_start + timedelta(milliseconds=3)))
    partner.requests.clear()

    second = sync_run(partner=partner.partner, module=case.module)

    assert partner.requests[0]["date_from"] == format_datetime(first_start)
    assert second.date_from == first_start
    expected, received, errors = partner.by_id(), 3, 0
    if not case.mutable:  # the changed ones are conflicts, refused: what we stored stays as it was
        expected, received, errors = {**stored_before, case.id(11): partner.get(case.id(11))}, 1, 2
        refused = [line.partition(": ")[0] for line in second.message.splitlines()]
        assert refused == [case.named(OWNER, 2, 1, 1), case.named(OWNER, 7, 1, 2)], second.message
    assert (second.status, second.pages, second.total) == ("SUCCEEDED", 1, 3)
    assert (second.received, second.errors) == (received, errors)
    assert case.stored(partner.partner) == expected
    assert case.rendered(partner.partner) == expected
    second_start = state_of(partner.partner, case.module).last_success_at
    assert second_start is not None
    assert second_start > first.finished_at
    partner.requests.clear()

    third = sync_run(partner=partner.partner, module=case.module)

    assert [r["date_from"] for r in partner.requests] == [format_datetime(second_start)]
    assert (third.status, third.pages, third.received, third.total) == ("SUCCEEDED", 1, 0, 0)
    assert case.stored(partner.partner) == expected


@pytest.mark.django_db
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize(
    ("page_size", "limits"),
    [
        pytest.param(None, [None, "4", "4"], id="partner-default"),
        pytest.param(3, ["3", "3", "3", "3"], id="page-size-3"),
        pytest.param(50, ["50", "4", "4"], id="page-size-50-clamped-to-x-limit"),
    ],
)
def test_page_size_is_sent_as_limit_and_clamped_to_the_partners_x_limit(case, sender, page_size, limits):
    partner = sender(case, count=10, max_limit=4)
    Partner.objects.filter(pk=partner.partner.pk).update(page_size=page_size)
    partner.partner.refresh_from_db()

    run = sync_run(partner=partner.partner, module=case.module)

    assert [r.get("limit") for r in partner.requests] == limits
    assert (run.status, run.pages, run.received, run.errors) == ("SUCCEEDED", len(limits), 10, 0)
    assert case.stored(partner.partner) == partner.by_id()


@pytest.mark.django_db
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize(
    ("broken_link", "broken_from_offset"),
    [
        pytest.param("garbage", 0, id="garbage"),
        pytest.param("unparseable", 0, id="unparseable"),
        pytest.param("404", 0, id="404"),
        pytest.param("loop", 0, id="loop-to-first-page"),
        pytest.param("loop", 4, id="page-2-loops-to-first-page"),
        pytest.param("self", 0, id="link-to-itself"),
    ],
)
def test_broken_links_are_survived_and_every_object_still_arrives(case, sender, broken_link, broken_from_offset):
    """Page Links are broken; page size 50 against a partner serving at most 4."""
    partner = sender(case, count=10, max_limit=4, broken_link=broken_link, broken_from_offset=broken_from_offset)
    Partner.objects.filter(pk=partner.partner.pk).update(page_size=50)
    partner.partner.refresh_from_db()

    run = sync_run(partner=partner.partner, module=case.module)

    assert (run.status, run.pages, run.received, run.errors, run.total) == ("SUCCEEDED", 3, 10, 0, 10)
    assert case.stored(partner.partner) == partner.by_id()
    assert case.rendered(partner.partner) == partner.by_id()
    # offsets continued where the broken Link left off, never asking for more than the partner serves
    offsets = [int(r.get("offset", 0)) for r in partner.requests]
    assert sorted(set(offsets)) == [0, 4, 8]
    assert all(int(r["limit"]) <= 4 for r in partner.requests[1:]), partner.requests
    if broken_link == "404":
        assert len(partner.stray) == 2
        assert all("-moved?" in path for path in partner.stray)


# --- invalid objects -----------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("case", CASES)
def test_invalid_objects_are_counted_and_named_while_valid_ones_are_stored(case, sender):
    partner = sender(case, count=8)
    first = sync_run(partner=partner.partner, module=case.module)
    assert (first.received, first.errors) == (8, 0)
    stored_before = case.stored(partner.partner)
    # now: a stored object comes back with a bad field, a new one is owned by a party the partner never announced,
    # another new one has a bad field, and one list item is not an object at all
    now = timezone.now()
    case.change(partner.get(case.id(3)), now)
    bad_field = case.make_invalid(partner.get(case.id(3)))
    foreign = case.make(*FOREIGN, 20, now)
    invalid_new = case.make(*OWNER, 21, now)
    case.make_invalid(invalid_new)
    valid_new = case.make(*OWNER, 22, now)
    partner.objects += [foreign, invalid_new, valid_new, "not an object"]
    partner.requests.clear()

    run = sync_run(partner=partner.partner, module=case.module)

    assert (run.status, run.received, run.errors, run.total, run.pages) == ("SUCCEEDED", 1, 4, 5, 2)
    lines = run.message.splitlines()
    assert len(lines) == 4, run.message
    # page 1 is the non-object, then the three of them in id order (same last_updated); page 2 the valid new one
    assert any(line.startswith(f"{case.named(OWNER, 3, 1, 2)}: {bad_field}") for line in lines), run.message
    assert any(line.startswith(f"{case.named(OWNER, 21, 1, 4)}: {bad_field}") for line in lines), run.message
    foreign_named = f"{case.named(FOREIGN, 20, 1, 3)}: "
    assert any(line.startswith(foreign_named) and "XYZ" in line[len(foreign_named) :] for line in lines), run.message
    assert any(line.startswith("object 1 of page 1: list item: ") for line in lines), run.message
    # the valid object is stored; the refused ones changed nothing
    expected = {**stored_before, case.id(22): valid_new}
    assert case.stored(partner.partner) == expected
    assert case.rendered(partner.partner) == expected
    assert not Location.objects.filter(party_id="XYZ").exists()
    # refused objects do not fail the run: the next incremental sync starts from this one
    last_success = state_of(partner.partner, case.module).last_success_at
    assert last_success is not None
    assert first.started_at < last_success <= run.started_at


@pytest.mark.django_db
@pytest.mark.parametrize("case", CASES)
def test_the_message_lists_the_first_errors_and_counts_the_rest(case, sender):
    partner = sender(case, count=0, max_limit=10)
    for n in range(1, 26):
        obj = case.make(*OWNER, n)
        case.make_invalid(obj)
        partner.objects.append(obj)

    run = sync_run(partner=partner.partner, module=case.module)

    assert (run.status, run.received, run.errors, run.pages) == ("SUCCEEDED", 0, 25, 3)
    lines = run.message.splitlines()
    assert len(lines) == 21
    assert lines[0].startswith(f"{case.named(OWNER, 1, 1, 1)}: ")
    assert lines[-1] == "... and 5 more refused objects"
    assert case.stored(partner.partner) == {}


# --- full sync -----------------------------------------------------------------------------------------------------


def evse_statuses(partner: Partner, location_id: str) -> list[str]:
    return list(
        Evse.objects.filter(location__partner=partner, location__ocpi_id=location_id)
        .order_by("position")
        .values_list("status", flat=True)
    )


@pytest.mark.django_db
def test_full_sync_marks_the_evses_of_locations_no_longer_listed_removed(sender):
    partner = sender(LOCATIONS, count=6)
    other = sender(LOCATIONS, count=2, name="other-cpo", party=("FR", "OTH"))
    sync_run(partner=other.partner, module=LOCATIONS.module, full=True)
    first = sync_run(partner=partner.partner, module=LOCATIONS.module, full=True)
    assert (first.kind, first.status, first.received, first.removed) == ("FULL", "SUCCEEDED", 6, 0)
    state = state_of(partner.partner, LOCATIONS.module)
    assert state.last_full_at == state.last_success_at is not None
    kept_before = locations_stored(partner.partner)
    # the CPO stops listing two locations, and one it still lists turns invalid
    partner.drop("LOC001", "LOC004")
    LOCATIONS.change(partner.get("LOC002"), timezone.now())
    location_break(partner.get("LOC002"))

    incremental = sync_run(partner=partner.partner, module=LOCATIONS.module)

    assert (incremental.status, incremental.removed) == ("SUCCEEDED", 0)
    assert "REMOVED" not in evse_statuses(partner.partner, "LOC001")
    partner.requests.clear()

    full = sync_run(partner=partner.partner, module=LOCATIONS.module, full=True)

    assert [r.get("date_from") for r in partner.requests] == [None]  # a full sync asks for everything
    assert (full.kind, full.status, full.received, full.errors, full.removed) == ("FULL", "SUCCEEDED", 3, 1, 2)
    assert full.finished_at is not None
    stored = locations_stored(partner.partner)
    assert locations_rendered(partner.partner) == stored
    for gone in ("LOC001", "LOC004"):
        assert set(evse_statuses(partner.partner, gone)) == {"REMOVED"}
        location = Location.objects.get(partner=partner.partner, ocpi_id=gone)
        assert full.started_at <= location.last_updated <= full.finished_at
        evses = location.evses.all()
        assert all(evse.last_updated == location.last_updated for evse in evses)
        assert stored[gone]["last_updated"] == format_datetime(location.last_updated)
        assert [evse["status"] for evse in stored[gone]["evses"]] == ["REMOVED"] * len(evses)
        # the rest of the location is as it was
        assert {k: v for k, v in stored[gone].items() if k not in ("evses", "last_updated")} == {
            k: v for k, v in kept_before[gone].items() if k not in ("evses", "last_updated")
        }
    # listed ones are left alone: the valid ones equal the partner's JSON, the invalid one keeps its last good state
    for listed in ("LOC003", "LOC005", "LOC006"):
        assert stored[listed] == partner.get(listed)
    assert stored["LOC002"] == kept_before["LOC002"]
    assert "REMOVED" not in evse_statuses(partner.partner, "LOC002")
    # another partner's locations are not touched
    assert locations_stored(other.partner) == other.by_id()
    state = state_of(partner.partner, LOCATIONS.module)
    assert state.last_full_at == state.last_success_at
    assert state.last_full_at is not None
    assert state.last_full_at <= full.started_at

    again = sync_run(partner=partner.partner, module=LOCATIONS.module, full=True)

    assert (again.status, again.removed) == ("SUCCEEDED", 0)
    assert locations_stored(partner.partner) == stored  # removed ones are not bumped again


@pytest.mark.django_db
@pytest.mark.skipif(ModuleID.TARIFFS not in pull_modules(), reason="the tariffs module is not installed")
def test_full_sync_deletes_tariffs_no_longer_listed(sender):
    partner = sender(TARIFFS, count=5)
    other = sender(TARIFFS, count=2, name="other-cpo", party=("FR", "OTH"))
    sync_run(partner=other.partner, module=TARIFFS.module, full=True)
    first = sync_run(partner=partner.partner, module=TARIFFS.module, full=True)
    assert (first.kind, first.status, first.received, first.removed) == ("FULL", "SUCCEEDED", 5, 0)
    kept_before = tariffs_stored(partner.partner)
    # the CPO stops listing two tariffs, and one it still lists turns invalid
    partner.drop("TAR001", "TAR004")
    tariff_change(partner.get("TAR002"), timezone.now())
    tariff_break(partner.get("TAR002"))

    incremental = sync_run(partner=partner.partner, module=TARIFFS.module)

    assert (incremental.status, incremental.errors, incremental.removed) == ("SUCCEEDED", 1, 0)
    assert tariffs_stored(partner.partner) == kept_before  # an incremental sync deletes nothing
    partner.requests.clear()

    full = sync_run(partner=partner.partner, module=TARIFFS.module, full=True)

    assert [r.get("date_from") for r in partner.requests] == [None]
    assert (full.kind, full.status, full.received, full.errors, full.removed) == ("FULL", "SUCCEEDED", 2, 1, 2)
    expected = {"TAR002": kept_before["TAR002"], "TAR003": partner.get("TAR003"), "TAR005": partner.get("TAR005")}
    assert tariffs_stored(partner.partner) == expected
    assert tariffs_rendered(partner.partner) == expected
    assert tariffs_stored(other.partner) == other.by_id()


@pytest.mark.django_db
@pytest.mark.skipif(ModuleID.TOKENS not in pull_modules(), reason="the tokens module is not installed")
def test_full_sync_makes_tokens_no_longer_listed_invalid(sender):
    partner = sender(TOKENS, count=6)
    other = sender(TOKENS, count=2, name="other-emsp", party=("FR", "OTH"))
    sync_run(partner=other.partner, module=TOKENS.module, full=True)
    first = sync_run(partner=partner.partner, module=TOKENS.module, full=True)
    assert (first.kind, first.status, first.received, first.removed) == ("FULL", "SUCCEEDED", 6, 0)
    kept_before = tokens_stored(partner.partner)
    # the eMSP stops listing two tokens (one an APP_USER), and one it still lists turns invalid
    partner.drop("TOK001", "TOK003")
    token_change(partner.get("TOK002"), timezone.now())
    token_break(partner.get("TOK002"))

    incremental = sync_run(partner=partner.partner, module=TOKENS.module)

    assert (incremental.status, incremental.errors, incremental.removed) == ("SUCCEEDED", 1, 0)
    assert tokens_stored(partner.partner) == kept_before  # an incremental sync invalidates nothing
    partner.requests.clear()

    full = sync_run(partner=partner.partner, module=TOKENS.module, full=True)

    assert [r.get("date_from") for r in partner.requests] == [None]
    assert (full.kind, full.status, full.received, full.errors, full.removed) == ("FULL", "SUCCEEDED", 3, 1, 2)
    # the vanished ones are kept, no longer valid, with the eMSP's last_updated (a newer push from it still applies)
    expected = {
        "TOK001": {**kept_before["TOK001"], "valid": False},
        "TOK002": kept_before["TOK002"],
        "TOK003": {**kept_before["TOK003"], "valid": False},
        **{uid: partner.get(uid) for uid in ("TOK004", "TOK005", "TOK006")},
    }
    assert tokens_stored(partner.partner) == expected
    assert tokens_rendered(partner.partner) == expected
    assert tokens_stored(other.partner) == other.by_id()

    again = sync_run(partner=partner.partner, module=TOKENS.module, full=True)

    assert (again.status, again.removed) == ("SUCCEEDED", 0)
    assert tokens_stored(partner.partner) == expected
    # listed again, newer: valid again
    listed_again = TOKENS.make(*OWNER, 1, timezone.now())
    partner.objects.append(listed_again)

    back = sync_run(partner=partner.partner, module=TOKENS.module)

    assert (back.status, back.received) == ("SUCCEEDED", 1)
    assert tokens_stored(partner.partner) == {**expected, "TOK001": listed_again}


@pytest.mark.django_db
@pytest.mark.parametrize(
    "case", [pytest.param(case, id=case.module) for case in (SESSIONS, CDRS) if case.module in pull_modules()]
)
def test_full_sync_keeps_sessions_and_cdrs_no_longer_listed(case, sender):
    """Sessions and CDRs are never deleted (REFERENCE §2.5): a full sync only adds what was missing."""
    partner = sender(case, count=5)
    other = sender(case, count=2, name="other-cpo", party=("FR", "OTH"))
    sync_run(partner=other.partner, module=case.module, full=True)
    first = sync_run(partner=partner.partner, module=case.module, full=True)
    assert (first.kind, first.status, first.received, first.removed) == ("FULL", "SUCCEEDED", 5, 0)
    kept_before = case.stored(partner.partner)
    # the CPO stops listing two, and one it still lists turns invalid
    partner.drop(case.id(1), case.id(4))
    case.change(partner.get(case.id(2)), timezone.now())
    case.make_invalid(partner.get(case.id(2)))
    partner.requests.clear()

    full = sync_run(partner=partner.partner, module=case.module, full=True)

    assert [r.get("date_from") for r in partner.requests] == [None]
    assert (full.kind, full.status, full.received, full.errors, full.removed) == ("FULL", "SUCCEEDED", 2, 1, 0)
    assert case.stored(partner.partner) == kept_before  # every one as it was, listed or not
    assert case.rendered(partner.partner) == kept_before
    assert case.stored(other.partner) == other.by_id()
    state = state_of(partner.partner, case.module)
    assert state.last_full_at == state.last_success_at
    assert state.last_full_at is not None
    assert state.last_full_at <= full.started_at


# --- failures ------------------------------------------------------------------------------------------------------


def _fail_down(partner: SenderPartner) -> None:
    partner.server.stop()


def _fail_401(partner: SenderPartner) -> None:
    partner.accepted_token = "a token we do not have"


def _fail_page_2(partner: SenderPartner) -> None:
    partner.refuse_from_offset = partner.max_limit


def _fail_html(partner: SenderPartner) -> None:
    partner.html = True


def _recover(partner: SenderPartner) -> None:
    if not partner.server.is_running():
        partner.server.start()
    partner.accepted_token = partner.partner.token_out()
    partner.refuse_from_offset = None
    partner.html = False


@pytest.mark.django_db
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize(
    ("fail", "reason"),
    [
        pytest.param(_fail_down, "cannot reach", id="partner-down"),
        pytest.param(_fail_401, "answered HTTP 401", id="401"),
        pytest.param(_fail_page_2, "answered HTTP 500", id="500-on-page-2"),
        pytest.param(_fail_html, "without an OCPI envelope", id="not-an-envelope"),
    ],
)
def test_a_failed_call_fails_the_run_and_the_next_run_asks_again_from_the_last_success(case, sender, fail, reason):
    partner = sender(case, count=10)
    sync_run(partner=partner.partner, module=case.module)
    last_success = state_of(partner.partner, case.module).last_success_at
    assert last_success is not None
    now = timezone.now()
    if case.mutable:  # changed ones land on pages 1, 2 and 3
        arrived = [case.id(1), case.id(6), case.id(10)]
        for n, object_id in enumerate(arrived):
            case.change(partner.get(object_id), now + timedelta(milliseconds=n))
    else:  # immutable ones never change: new ones land on pages 1, 2 and 3
        arrived = [case.id(11), case.id(12), case.id(13)]
        partner.objects += [case.make(*OWNER, 11 + n, now + timedelta(milliseconds=n)) for n in range(3)]
    partner.max_limit = 1
    stored_before = case.stored(partner.partner)
    fail(partner)

    failed = sync_run(partner=partner.partner, module=case.module)

    assert failed.status == SyncRun.Status.FAILED
    assert failed.finished_at is not None
    first_line = failed.message.splitlines()[0]
    assert first_line.startswith("Failed: "), failed.message
    assert reason in first_line, failed.message
    state = state_of(partner.partner, case.module)
    assert (state.last_success_at, state.running_since, state.last_full_at) == (last_success, None, None)
    if fail is _fail_page_2:  # page 1 was stored before page 2 failed
        assert (failed.pages, failed.received) == (1, 1)
        assert case.stored(partner.partner) == {**stored_before, arrived[0]: partner.get(arrived[0])}
    else:
        assert (failed.pages, failed.received) == (0, 0)
        assert case.stored(partner.partner) == stored_before
    _recover(partner)
    partner.requests.clear()

    recovered = sync_run(partner=partner.partner, module=case.module)

    assert partner.requests[0]["date_from"] == format_datetime(last_success)  # nothing skipped
    assert (recovered.status, recovered.received, recovered.errors) == ("SUCCEEDED", 3, 0)
    assert case.stored(partner.partner) == partner.by_id()


@pytest.mark.django_db
@pytest.mark.parametrize("case", CASES)
def test_a_partner_that_is_not_registered_or_offers_no_sender_fails_the_run(case, sender):
    partner = sender(case, count=2)
    Partner.objects.filter(pk=partner.partner.pk).update(status=Partner.Status.SUSPENDED)
    partner.partner.refresh_from_db()

    suspended = sync_run(partner=partner.partner, module=case.module)

    assert suspended.status == SyncRun.Status.FAILED
    assert suspended.message == f"Failed: {partner.partner} is not registered or offers no {case.module} sender"
    Partner.objects.filter(pk=partner.partner.pk).update(status=Partner.Status.REGISTERED)
    partner.partner.refresh_from_db()
    partner.partner.endpoints.filter(identifier=case.module).delete()

    no_sender = sync_run(partner=partner.partner, module=case.module)

    assert no_sender.status == SyncRun.Status.FAILED
    assert partner.requests == []
    assert case.stored(partner.partner) == {}
    assert state_of(partner.partner, case.module).last_success_at is None


@pytest.mark.django_db
def test_unknown_module_and_partner_are_refused_by_the_task(sender):
    partner = sender(LOCATIONS, count=1)

    assert sync_partner_task(partner.partner.pk, "nonsense") == "UNKNOWN_MODULE"
    assert sync_partner_task(partner.partner.pk + 1000, LOCATIONS.module) == "NO_PARTNER"
    assert not SyncRun.objects.exists()
    assert not SyncState.objects.exists()


# --- one sync at a time, progress ----------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("case", CASES)
def test_a_second_sync_of_the_same_partner_and_module_is_refused_while_one_runs(case, sender):
    partner = sender(case, count=6)
    other = sender(case, count=3, name="other-cpo", party=("FR", "OTH"))
    seen: dict[str, Any] = {}

    def meanwhile(n: int) -> None:
        """While our first request is served: the same sync again, then another partner's."""
        if n != 1:
            return
        try:
            seen["task"] = sync_partner_task(partner.partner.pk, case.module)
            try:
                sync_run(partner=partner.partner, module=case.module, full=True)
            except SyncBusy as exc:
                seen["busy"] = exc.message
            seen["other"] = sync_partner_task(other.partner.pk, case.module)
            seen["running"] = list(SyncRun.objects.filter(partner=partner.partner).values_list("status", flat=True))
        finally:
            connection.close()

    partner.on_request = meanwhile

    run = sync_run(partner=partner.partner, module=case.module)

    assert seen["task"] == "BUSY"
    assert seen["busy"].startswith(f"A {case.module} sync with {partner.partner} is running since ")
    assert seen["other"] == "SUCCEEDED"
    assert seen["running"] == ["RUNNING"]
    assert (run.status, run.received) == ("SUCCEEDED", 6)
    assert SyncRun.objects.filter(partner=partner.partner).count() == 1  # the refused ones left no run behind
    assert case.stored(partner.partner) == partner.by_id()
    assert case.stored(other.partner) == other.by_id()
    assert state_of(partner.partner, case.module).running_since is None
    # released: the next one runs
    assert sync_partner_task(partner.partner.pk, case.module) == "SUCCEEDED"


@pytest.mark.django_db
@pytest.mark.parametrize("case", CASES)
def test_a_recent_running_mark_refuses_and_a_stale_one_is_taken_over(case, sender):
    partner = sender(case, count=3)
    stale_run = SyncRun.objects.create(partner=partner.partner, module=case.module, kind=SyncRun.Kind.INCREMENTAL)
    recent = timezone.now() - SYNC_STALE_AFTER + timedelta(minutes=5)
    SyncState.objects.create(partner=partner.partner, module=case.module, running_since=recent)

    assert sync_partner_task(partner.partner.pk, case.module) == "BUSY"
    with pytest.raises(SyncBusy):
        sync_run(partner=partner.partner, module=case.module)

    assert partner.requests == []
    assert state_of(partner.partner, case.module).running_since == recent
    assert list(SyncRun.objects.values_list("pk", "status")) == [(stale_run.pk, "RUNNING")]
    stale = timezone.now() - SYNC_STALE_AFTER - timedelta(minutes=5)
    SyncState.objects.filter(partner=partner.partner).update(running_since=stale)

    run = sync_run(partner=partner.partner, module=case.module)

    assert (run.status, run.received) == ("SUCCEEDED", 3)
    stale_run.refresh_from_db()
    assert stale_run.status == SyncRun.Status.FAILED
    assert stale_run.finished_at is not None
    assert stale_run.message.startswith("Abandoned: ")
    assert state_of(partner.partner, case.module).running_since is None
    assert SYNC_STALE_AFTER.total_seconds() > (sync_partner_task.time_limit or 0)  # a live run is never taken over


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("case", CASES)
def test_progress_is_saved_after_every_page(case, sender):
    partner = sender(case, count=10, max_limit=4)
    case.make_invalid(partner.objects[1])
    progress: list[tuple[Any, ...]] = []

    def watch(n: int) -> None:
        try:
            run = SyncRun.objects.get(partner=partner.partner)
            progress.append((run.status, run.pages, run.received, run.errors, run.total, len(run.message.splitlines())))
        finally:
            connection.close()

    partner.on_request = watch

    run = sync_run(partner=partner.partner, module=case.module)

    assert progress == [
        ("RUNNING", 0, 0, 0, None, 0),
        ("RUNNING", 1, 3, 1, 10, 1),
        ("RUNNING", 2, 7, 1, 10, 1),
    ]
    assert (run.status, run.pages, run.received, run.errors, run.total) == ("SUCCEEDED", 3, 9, 1, 10)


# --- scheduling ----------------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("case", CASES)
def test_sync_targets_are_registered_partners_offering_a_sender(case, sender):
    sender(case, count=1, name="offering")
    receiver_only = sender(case, count=1, name="receiver-only", party=("FR", "RCV"))
    receiver_only.partner.endpoints.filter(identifier=case.module).update(role=InterfaceRole.RECEIVER)
    suspended = sender(case, count=1, name="suspended", party=("FR", "SUS"))
    Partner.objects.filter(pk=suspended.partner.pk).update(status=Partner.Status.SUSPENDED)
    make_partner(name="nothing-offered", roles=(("FR", "NOT", Role.CPO),))

    targets = [(p.name, module) for p, module in sync_targets() if module == case.module]

    assert targets == [("offering", case.module)]


def test_beat_schedule_runs_incremental_and_full_syncs_of_every_partner():
    schedule: dict[str, dict[str, Any]] = settings.CELERY_BEAT_SCHEDULE
    incremental, full = schedule["sync-incremental"], schedule["sync-full"]
    for entry in (incremental, full):
        assert entry["task"] == sync_all_task.name
        assert entry["task"] in app.tasks
        assert isinstance(entry["schedule"], crontab)
    assert incremental.get("kwargs", {}).get("full", False) is False
    assert full["kwargs"] == {"full": True}
    # the kwargs fit the task's signature, and the full sync runs once a day while the incremental one runs often
    inspect.signature(sync_all_task.run).bind(**full.get("kwargs", {}))
    inspect.signature(sync_all_task.run).bind(**incremental.get("kwargs", {}))
    assert (len(full["schedule"].hour), len(full["schedule"].minute)) == (1, 1)
    assert len(incremental["schedule"].hour) == 24
    assert len(incremental["schedule"].minute) > 1


@pytest.mark.django_db
@pytest.mark.parametrize("case", CASES)
def test_sync_all_task_queues_one_sync_per_target(case, sender):
    """In-process, tasks run eagerly: the dispatch itself; tests/test_sync_worker.py runs it on a real worker."""
    app.conf.task_always_eager = True
    try:
        first = sender(case, count=5, name="first")
        second = sender(case, count=2, name="second", party=("FR", "SEC"))
        receiver_only = sender(case, count=1, name="receiver-only", party=("FR", "RCV"))
        receiver_only.partner.endpoints.filter(identifier=case.module).update(role=InterfaceRole.RECEIVER)

        assert sync_all_task(full=True) == 2
    finally:
        app.conf.task_always_eager = False

    assert case.stored(first.partner) == first.by_id()
    assert case.stored(second.partner) == second.by_id()
    assert receiver_only.requests == []
    runs = SyncRun.objects.order_by("partner__name").values_list("partner__name", "kind", "status")
    assert list(runs) == [("first", "FULL", "SUCCEEDED"), ("second", "FULL", "SUCCEEDED")]
