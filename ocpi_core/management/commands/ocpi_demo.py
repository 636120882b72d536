"""`manage.py ocpi_demo`: our own demo parties (a CPO and an eMSP), the demo CPO's locations and tariffs, the
demo eMSP's tokens, and a few completed sessions of the demo eMSP's card at the demo CPO's chargers with their priced
CDRs.

Idempotent: what exists is left as it is (an operator's later edits survive a second run). New objects are written
through the module services, so their cached JSON is built and an outbox row is written for every registered partner
receiving the module (none on a fresh bootstrap). Ids carry the CPO's party id, so instances started with different
`--party-prefix`es publish distinct ids.
"""

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.apps import apps
from django.conf import settings
from django.utils import timezone

from ocpi_core.constants import Role
from ocpi_core.envelope import format_datetime
from ocpi_core.management.base import JsonCommand
from ocpi_core.models import Party
from ocpi_core.services import own_party_ensure

DEMO_PARTIES = (
    ("NL", "DMC", Role.CPO, "Demo Charging (CPO)", "https://example.com/cpo"),
    ("NL", "DME", Role.EMSP, "Demo Mobility (eMSP)", "https://example.com/emsp"),
)


def demo_tariff_ids(party_id: str) -> dict[str, str]:
    """The demo tariffs' ids by purpose (connectors reference them)."""
    return {"ac": f"{party_id}-AC-STANDARD", "dc": f"{party_id}-DC-FAST", "garage": f"{party_id}-AC-GARAGE"}


def demo_tariffs(party: Party, stamp: str) -> list[dict[str, Any]]:
    """Three tariffs of the demo CPO, in EUR, prices excl. VAT (Decimal: money is never a float)."""
    ids = demo_tariff_ids(party.party_id)
    vat = Decimal("21.0")

    def owner(tariff_id: str) -> dict[str, Any]:
        return {"country_code": party.country_code, "party_id": party.party_id, "id": tariff_id, "currency": "EUR"}

    return [
        {  # €0.35/kWh plus a €0.50 start fee
            **owner(ids["ac"]),
            "type": "REGULAR",
            "tariff_alt_text": [{"language": "en", "text": "Standard AC charging"}],
            "elements": [
                {
                    "price_components": [
                        {"type": "FLAT", "price": Decimal("0.50"), "vat": vat, "step_size": 1},
                        {"type": "ENERGY", "price": Decimal("0.35"), "vat": vat, "step_size": 1},
                    ]
                }
            ],
            "last_updated": stamp,
        },
        {  # fast charging: per kWh, plus a per-hour time fee after the first 45 minutes (blocks of a minute)
            **owner(ids["dc"]),
            "type": "REGULAR",
            "tariff_alt_url": "https://example.com/cpo/tariffs/dc-fast",
            "elements": [
                {"price_components": [{"type": "ENERGY", "price": Decimal("0.59"), "vat": vat, "step_size": 1}]},
                {
                    "price_components": [{"type": "TIME", "price": Decimal("12.00"), "vat": vat, "step_size": 60}],
                    "restrictions": {"min_duration": 2700},
                },
            ],
            "max_price": {"excl_vat": Decimal("60.00"), "incl_vat": Decimal("72.60")},
            "last_updated": stamp,
        },
        {  # garage: per kWh, and parking while not charging: €2.50/h on weekdays 07:00-19:00, €1.00/h otherwise
            **owner(ids["garage"]),
            "type": "REGULAR",
            "elements": [
                {"price_components": [{"type": "ENERGY", "price": Decimal("0.35"), "vat": vat, "step_size": 1}]},
                {
                    "price_components": [
                        {"type": "PARKING_TIME", "price": Decimal("2.50"), "vat": vat, "step_size": 900}
                    ],
                    "restrictions": {
                        "start_time": "07:00",
                        "end_time": "19:00",
                        "day_of_week": ["MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY"],
                    },
                },
                {
                    "price_components": [
                        {"type": "PARKING_TIME", "price": Decimal("1.00"), "vat": vat, "step_size": 900}
                    ]
                },
            ],
            "last_updated": stamp,
        },
    ]


# (standard, format, power_type, max_voltage, max_amperage, max_electric_power): usual connectors. AC voltages are
# line to neutral (REFERENCE §6.4): 3 x 230 V x 16 A = 11 kW.
_CONNECTOR_KINDS: dict[str, tuple[str, str, str, int, int, int]] = {
    "ac": ("IEC_62196_T2", "SOCKET", "AC_3_PHASE", 230, 16, 11000),
    "ccs": ("IEC_62196_T2_COMBO", "CABLE", "DC", 920, 200, 150000),
    "chademo": ("CHADEMO", "CABLE", "DC", 500, 125, 50000),
}


def _connector(connector_id: str, kind: str, tariff_id: str, stamp: str) -> dict[str, Any]:
    standard, fmt, power_type, voltage, amperage, power = _CONNECTOR_KINDS[kind]
    return {
        "id": connector_id,
        "standard": standard,
        "format": fmt,
        "power_type": power_type,
        "max_voltage": voltage,
        "max_amperage": amperage,
        "max_electric_power": power,
        "tariff_ids": [tariff_id],
        "terms_and_conditions": "https://example.com/cpo/terms",
        "last_updated": stamp,
    }


def _evse(
    party: Party, site: int, number: int, status: str, connectors: list[dict[str, Any]], stamp: str, **extra: Any
) -> dict[str, Any]:
    """EVSE `number` of demo site `site` (eMI3 EVSE ID: NL*DMC*E000102 is site 1, EVSE 2)."""
    return {
        "uid": f"{party.party_id}-{site:04d}-{number:02d}",
        "evse_id": f"{party.country_code}*{party.party_id}*E{site:04d}{number:02d}",
        "status": status,
        "capabilities": [
            "CHARGING_PROFILE_CAPABLE",
            "CHARGING_PREFERENCES_CAPABLE",
            "RESERVABLE",
            "RFID_READER",
            "REMOTE_START_STOP_CAPABLE",
            "UNLOCK_CAPABLE",
        ],
        "connectors": connectors,
        "physical_reference": str(number),
        **extra,
        "last_updated": stamp,
    }


def demo_locations(party: Party, stamp: str) -> list[dict[str, Any]]:
    """Three locations of the demo CPO in three cities (valid OCPI 2.2.1 Locations)."""
    pid, tariffs = party.party_id, demo_tariff_ids(party.party_id)
    operator = {"name": party.name or "Demo Charging", "website": "https://example.com/cpo"}

    def owner(location_id: str) -> dict[str, Any]:
        return {"country_code": party.country_code, "party_id": pid, "id": location_id, "publish": True}

    amsterdam, utrecht, rotterdam = f"{pid}-AMSTERDAM-01", f"{pid}-UTRECHT-01", f"{pid}-ROTTERDAM-01"
    garage_evses = [
        _evse(
            party,
            1,
            n,
            status,
            [_connector("1", "ac", tariffs["garage"], stamp)],
            stamp,
            floor_level="-1",
        )
        for n, status in ((1, "AVAILABLE"), (2, "CHARGING"), (3, "AVAILABLE"), (4, "OUTOFORDER"))
    ]
    return [
        {
            **owner(amsterdam),
            "name": "Parking Oosterdok",
            "address": "Oosterdokskade 5",
            "city": "Amsterdam",
            "postal_code": "1011 AD",
            "country": "NLD",
            "coordinates": {"latitude": "52.376310", "longitude": "4.908640"},
            "parking_type": "PARKING_GARAGE",
            "evses": garage_evses,
            "directions": [{"language": "en", "text": "Chargers on level -1, next to the lifts"}],
            "operator": operator,
            "facilities": ["PARKING_LOT", "TRAIN_STATION"],
            "time_zone": "Europe/Amsterdam",
            "opening_times": {
                "twentyfourseven": False,
                "regular_hours": [
                    *({"weekday": day, "period_begin": "06:00", "period_end": "23:30"} for day in range(1, 6)),
                    *({"weekday": day, "period_begin": "08:00", "period_end": "22:00"} for day in (6, 7)),
                ],
            },
            "charging_when_closed": True,
            "last_updated": stamp,
        },
        {
            **owner(utrecht),
            "name": "Utrecht Science Park fast charging",
            "address": "Heidelberglaan 8",
            "city": "Utrecht",
            "postal_code": "3584 CS",
            "country": "NLD",
            "coordinates": {"latitude": "52.085290", "longitude": "5.174570"},
            "parking_type": "PARKING_LOT",
            "evses": [
                _evse(
                    party,
                    2,
                    n,
                    status,
                    [
                        _connector("1", "ccs", tariffs["dc"], stamp),
                        _connector("2", "chademo", tariffs["dc"], stamp),
                    ],
                    stamp,
                )
                for n, status in ((1, "AVAILABLE"), (2, "CHARGING"))
            ],
            "operator": operator,
            "facilities": ["CAFE", "BUS_STOP"],
            "time_zone": "Europe/Amsterdam",
            "opening_times": {"twentyfourseven": True},
            "energy_mix": {
                "is_green_energy": True,
                "energy_sources": [
                    {"source": "WIND", "percentage": 70},
                    {"source": "SOLAR", "percentage": 30},
                ],
                "environ_impact": [{"category": "CARBON_DIOXIDE", "amount": 0}],
                "supplier_name": "Demo Green Power",
                "energy_product_name": "100% Dutch wind and sun",
            },
            "last_updated": stamp,
        },
        {
            **owner(rotterdam),
            "name": "Markthal street chargers",
            "address": "Binnenrotte 100",
            "city": "Rotterdam",
            "postal_code": "3011 HC",
            "country": "NLD",
            "coordinates": {"latitude": "51.920030", "longitude": "4.486950"},
            "parking_type": "ON_STREET",
            "evses": [
                _evse(party, 3, 1, "AVAILABLE", [_connector("1", "ac", tariffs["ac"], stamp)], stamp),
                _evse(party, 3, 2, "BLOCKED", [_connector("1", "ac", tariffs["ac"], stamp)], stamp),
            ],
            "operator": operator,
            "facilities": ["MALL", "METRO_STATION"],
            "time_zone": "Europe/Amsterdam",
            "last_updated": stamp,
        },
    ]


def _load_tariffs(party: Party, stamp: str) -> list[str]:
    """The demo tariffs that did not exist yet, created through the tariffs services."""
    if not apps.is_installed("tariffs"):
        return []
    from tariffs.services import Key, tariff_find, tariff_put

    created = []
    for data in demo_tariffs(party, stamp):
        key = Key(party.country_code, party.party_id, data["id"])
        if tariff_find(key) is None:
            tariff_put(partner=None, key=key, data=data)
            created.append(data["id"])
    return created


def _load_locations(party: Party, stamp: str) -> list[str]:
    """The demo locations that did not exist yet, created through the locations services."""
    if not apps.is_installed("locations"):
        return []
    from locations.services import Key, location_find, location_put

    created = []
    for data in demo_locations(party, stamp):
        key = Key(party.country_code, party.party_id, data["id"])
        if location_find(key) is None:
            location_put(partner=None, key=key, data=data)
            created.append(data["id"])
    return created


def demo_tokens(party: Party) -> list[dict[str, Any]]:
    """Three cards and an app account of the demo eMSP: a whitelisted RFID card, a card checked in real time, a
    blocked card and an app user (contract ids per eMI3: country, party, instance)."""
    cc, pid = party.country_code, party.party_id

    def token(uid: str, token_type: str, contract: str, visual: str, whitelist: str, valid: bool) -> dict[str, Any]:
        return {
            "country_code": cc,
            "party_id": pid,
            "uid": uid,
            "type": token_type,
            "contract_id": f"{cc}{pid}C{contract}",
            "visual_number": visual,
            "issuer": "Demo Mobility",
            "valid": valid,
            "whitelist": whitelist,
            "language": "en",
        }

    return [
        token(f"{pid}0001A1", "RFID", "00000001", "DEMO-0001", "ALLOWED", True),
        token(f"{pid}0002B2", "RFID", "00000002", "DEMO-0002", "NEVER", True),
        token(f"{pid}0003C3", "RFID", "00000003", "DEMO-0003", "ALLOWED", False),
        token(f"{pid}-APP-0004", "APP_USER", "00000004", "DEMO-APP-4", "ALLOWED", True),
    ]


def _load_tokens(party: Party) -> list[str]:
    """The demo eMSP's tokens that did not exist yet, issued through the tokens services."""
    if not apps.is_installed("tokens"):
        return []
    from tokens.services import Key, token_find, token_save_own

    created = []
    for data in demo_tokens(party):
        key = Key(party.country_code, party.party_id, data["uid"], data["type"])
        if token_find(key) is None:
            token_save_own(key=key, data=data)
            created.append(data["uid"])
    return created


# Completed demo sessions: (number, location suffix, site, EVSE, connector, hours before now it started, periods);
# a period is (minutes, kWh, charging minutes, parking minutes): charging at 11 kW AC or up to 72 kW DC, and the
# garage session ends parked (ENERGY 0, PARKING_TIME), so each tariff's dimensions show up in a CDR.
_DEMO_SESSIONS: tuple[tuple[int, str, int, int, str, int, tuple[tuple[int, str, int, int], ...]], ...] = (
    (1, "ROTTERDAM-01", 3, 1, "1", 30, ((20, "3.6", 20, 0), (20, "3.5", 20, 0), (15, "2.4", 15, 0))),
    (
        2,
        "UTRECHT-01",
        2,
        1,
        "1",
        27,
        ((15, "18.0", 15, 0), (15, "16.5", 15, 0), (15, "12.0", 15, 0), (20, "7.5", 20, 0)),
    ),
    (3, "AMSTERDAM-01", 1, 1, "1", 50, ((60, "10.5", 60, 0), (45, "6.2", 45, 0), (75, "0", 0, 75))),
)


def demo_session_ids(party_id: str) -> list[str]:
    """The demo sessions' ids (deterministic: a second run finds them)."""
    return [f"{party_id}-DEMO-SESSION-{number}" for number, *_ in _DEMO_SESSIONS]


def _hours(minutes: int) -> Decimal:
    return (Decimal(minutes) / 60).quantize(Decimal("0.000001")).normalize()


def _load_sessions(cpo: Party, emsp: Party, now: datetime) -> tuple[list[str], list[str]]:
    """(sessions, CDRs) created: completed own sessions of the demo eMSP's first card at the demo CPO's locations,
    run through session_start / session_update / session_stop, so the CDR is generated and priced as for any
    session. Sessions that exist are left alone (one query on a second run)."""
    if not (apps.is_installed("sessions_app") and apps.is_installed("cdrs") and apps.is_installed("locations")):
        return [], []
    from cdrs.models import Cdr
    from sessions_app.models import Session
    from sessions_app.services import session_start, session_stop, session_update

    ids = demo_session_ids(cpo.party_id)
    existing = {
        ocpi_id.upper()
        for ocpi_id in Session.objects.filter(
            partner__isnull=True, country_code=cpo.country_code, party_id=cpo.party_id, ocpi_id__in=ids
        ).values_list("ocpi_id", flat=True)
    }
    card = demo_tokens(emsp)[0]
    cdr_token = {name: card[name] for name in ("country_code", "party_id", "uid", "type", "contract_id")}
    hour = now.replace(minute=0, second=0, microsecond=0)
    sessions: list[str] = []
    cdrs: list[str] = []
    for (_number, suffix, site, evse, connector, hours_ago, periods), session_id in zip(
        _DEMO_SESSIONS, ids, strict=True
    ):
        if session_id.upper() in existing:
            continue
        at = hour - timedelta(hours=hours_ago)
        session = session_start(
            location_id=f"{cpo.party_id}-{suffix}",
            evse_uid=f"{cpo.party_id}-{site:04d}-{evse:02d}",
            connector_id=connector,
            cdr_token=cdr_token,
            auth_method="WHITELIST",
            session_id=session_id,
            start=at,
            country_code=cpo.country_code,
            party_id=cpo.party_id,
        )
        kwh = Decimal(0)
        for minutes, energy, charging, parking in periods:
            dimensions: list[dict[str, Any]] = [{"type": "ENERGY", "volume": Decimal(energy)}]
            if charging:
                dimensions.append({"type": "TIME", "volume": _hours(charging)})
            if parking:
                dimensions.append({"type": "PARKING_TIME", "volume": _hours(parking)})
            kwh += Decimal(energy)
            period = {"start_date_time": format_datetime(at), "dimensions": dimensions}
            at += timedelta(minutes=minutes)
            session_update(session=session, kwh=kwh, charging_period=period, at=at)
        session_stop(session=session, at=at)
        sessions.append(session_id)
        cdr = Cdr.objects.filter(partner__isnull=True, session_id=session_id, credit=False).order_by("pk").first()
        if cdr is not None:
            cdrs.append(cdr.ocpi_id)
    return sessions, cdrs


class Command(JsonCommand):
    help = (
        "Load demo data: our own CPO and eMSP parties, the CPO's locations and tariffs, the eMSP's tokens, and a few "
        "completed sessions of the eMSP's card at the CPO's locations with their priced CDRs."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--country-code", default=None, help="Country code of the demo parties (default NL)")
        parser.add_argument("--party-prefix", default=None, help="Two letters prefixed to C/E for the party ids")

    def run(self, **options: Any) -> dict[str, Any]:
        parties = []
        cpo: Party | None = None
        emsp: Party | None = None
        for country_code, party_id, role, name, website in DEMO_PARTIES:
            cc = (options["country_code"] or country_code).upper()
            pid = (options["party_prefix"] + party_id[-1]) if options["party_prefix"] else party_id
            party = own_party_ensure(country_code=cc, party_id=pid.upper(), role=role, name=name, website=website)
            parties.append(str(party))
            if role == Role.CPO:
                cpo = party
            else:
                emsp = party
        stamp = format_datetime(timezone.now())
        # tariffs first: the locations' connectors reference them
        tariffs = _load_tariffs(cpo, stamp) if cpo else []
        locations = _load_locations(cpo, stamp) if cpo else []
        tokens = _load_tokens(emsp) if emsp else []
        sessions, cdrs = _load_sessions(cpo, emsp, timezone.now()) if cpo and emsp else ([], [])
        return {
            "ok": True,
            "own_parties": parties,
            "created": {
                "tariffs": tariffs,
                "locations": locations,
                "tokens": tokens,
                "sessions": sessions,
                "cdrs": cdrs,
            },
            "base_url": settings.OCPI_BASE_URL,
        }
