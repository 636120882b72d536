"""Bench data, written straight into an (empty, migrated) PostgreSQL database with COPY (or an SQLite one in
batches, for `bench/run.py --database sqlite`).

- our own parties (what `ocpi_demo` loads: NL*DMC CPO, NL*DME eMSP) and N own locations of NL*DMC, each with 1-8
  EVSEs of 1-3 connectors, realistic and valid per the spec;
- one registered partner ("bench-cpo", parties DE*BPC CPO and DE*BPE eMSP) with a known token, used by the load tool,
  and M locations it owns (stored as if it had PUT them into our eMSP receiver) for the PATCH scenario;
- optionally the partners that receive our pushes (one per `--push-partner URL`, locations RECEIVER at that URL).

Every row is built from an OCPI object through the locations app's own mappers, and the cached `doc` is rendered by
`locations.services.location_render` from those same rows; a sample is then re-rendered from the database the way the
services do it and compared byte for byte, and validated with `ocpi_core.validation.validate`.

Run by bench/run.py (which sets DATABASE_URL, the secrets and the settings module); writes `bench.json` (token, ids,
counts), `partner_evses.txt` and `bare.json` (what the bare reference app serves) into `--out`.
"""

import argparse
import os
import random
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

import django  # noqa: E402

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, models, transaction  # noqa: E402

from locations.models import Connector, Evse, Location  # noqa: E402
from locations.services import CONNECTOR, EVSE, LOCATION, _with_children, location_render  # noqa: E402
from ocpi_core.constants import InterfaceRole, ModuleID, Role  # noqa: E402
from ocpi_core.crypto import token_encrypt, token_generate, token_hash, token_hint  # noqa: E402
from ocpi_core.envelope import dumps, format_datetime  # noqa: E402
from ocpi_core.models import Partner, PartnerEndpoint, PartnerToken, Party  # noqa: E402
from ocpi_core.validation import validate  # noqa: E402

OWN_CC, OWN_PID = "NL", "DMC"  # ocpi_demo's CPO party
PARTNER_CC, PARTNER_CPO, PARTNER_EMSP = "DE", "BPC", "BPE"
BATCH = 2000

CITIES = [
    ("Amsterdam", "1011", 52.3676, 4.9041),
    ("Rotterdam", "3011", 51.9244, 4.4777),
    ("Utrecht", "3511", 52.0907, 5.1214),
    ("Den Haag", "2511", 52.0705, 4.3007),
    ("Eindhoven", "5611", 51.4416, 5.4697),
    ("Groningen", "9711", 53.2194, 6.5665),
    ("Tilburg", "5038", 51.5555, 5.0913),
    ("Almere", "1315", 52.3508, 5.2647),
    ("Breda", "4811", 51.5719, 4.7683),
    ("Nijmegen", "6511", 51.8126, 5.8372),
    ("Köln", "50667", 50.9375, 6.9603),
    ("Düsseldorf", "40213", 51.2277, 6.7735),
]
STREETS = ["Stationsplein", "Kerkstraat", "Dorpsstraat", "Marktplein", "Industrieweg", "Havenweg", "Parklaan"]
OPERATORS = [
    {"name": "Demo Charging", "website": "https://example.com/cpo"},
    {
        "name": "Demo Charging Fast",
        "website": "https://example.com/fast",
        "logo": {
            "url": "https://example.com/img/fast-logo.png",
            "thumbnail": "https://example.com/img/fast-logo-thumb.png",
            "category": "OPERATOR",
            "type": "png",
            "width": 512,
            "height": 512,
        },
    },
]
FACILITIES = ["HOTEL", "RESTAURANT", "CAFE", "MALL", "SUPERMARKET", "PARKING_LOT", "TRAIN_STATION", "WIFI"]
PARKING = ["ON_STREET", "PARKING_LOT", "PARKING_GARAGE", "UNDERGROUND_GARAGE", "ALONG_MOTORWAY"]
CAPABILITIES = ["RFID_READER", "REMOTE_START_STOP_CAPABLE", "UNLOCK_CAPABLE", "RESERVABLE", "CONTACTLESS_CARD_SUPPORT"]
STATUSES = ["AVAILABLE"] * 6 + ["CHARGING"] * 3 + ["OUTOFORDER", "INOPERATIVE", "BLOCKED", "UNKNOWN"]
AC = [("IEC_62196_T2", "SOCKET", "AC_3_PHASE", 400, 32, 22000), ("IEC_62196_T2", "CABLE", "AC_3_PHASE", 400, 16, 11000)]
DC = [("IEC_62196_T2_COMBO", "CABLE", "DC", 920, 500, 300000), ("CHADEMO", "CABLE", "DC", 500, 125, 50000)]
EPOCH = datetime(2025, 1, 1, tzinfo=UTC)


def _coordinate(value: float) -> str:
    return f"{value:.6f}"


def location_data(rng: random.Random, country_code: str, party_id: str, ocpi_id: str, stamp: datetime) -> dict:
    """One realistic OCPI Location (every EVSE/connector last_updated <= the location's)."""
    city, postal, lat, lon = rng.choice(CITIES)
    lat += rng.uniform(-0.05, 0.05)
    lon += rng.uniform(-0.05, 0.05)
    dutch = postal.isdigit() and len(postal) == 4
    evses = []
    fast = rng.random() < 0.25
    for n in range(1, rng.randint(1, 8) + 1):
        evse_stamp = stamp - timedelta(seconds=rng.randint(0, 86400))
        connectors = []
        kinds = DC if fast else AC
        for c in range(1, rng.randint(1, 3) + 1):
            standard, fmt, power, volt, amp, watt = kinds[(n + c) % len(kinds)]
            connector: dict[str, Any] = {
                "id": str(c),
                "standard": standard,
                "format": fmt,
                "power_type": power,
                "max_voltage": volt,
                "max_amperage": amp,
                "max_electric_power": watt,
                "tariff_ids": ["DC-STD" if power == "DC" else "AC-STD"],
                "last_updated": format_datetime(evse_stamp - timedelta(seconds=rng.randint(0, 86400))),
            }
            if rng.random() < 0.3:
                connector["terms_and_conditions"] = "https://example.com/terms"
            connectors.append(connector)
        evse: dict[str, Any] = {
            "uid": f"{ocpi_id}-{n}",
            "evse_id": f"{country_code}*{party_id}*E{ocpi_id}{n}",
            "status": rng.choice(STATUSES),
            "capabilities": rng.sample(CAPABILITIES, rng.randint(1, 4)),
            "connectors": connectors,
            "physical_reference": str(n),
            "last_updated": format_datetime(evse_stamp),
        }
        if rng.random() < 0.3:
            evse["floor_level"] = str(rng.randint(-2, 3))
        if rng.random() < 0.2:
            evse["coordinates"] = {"latitude": _coordinate(lat + n * 1e-5), "longitude": _coordinate(lon)}
        if rng.random() < 0.2:
            evse["parking_restrictions"] = ["EV_ONLY"]
        evses.append(evse)
    data: dict[str, Any] = {
        "country_code": country_code,
        "party_id": party_id,
        "id": ocpi_id,
        "publish": True,
        "name": f"{city} {rng.choice(STREETS)} {rng.randint(1, 200)}",
        "address": f"{rng.choice(STREETS)} {rng.randint(1, 300)}",
        "city": city,
        "postal_code": f"{postal} {rng.choice('ABCDEFGH')}{rng.choice('KLMNPRST')}" if dutch else postal,
        "country": "NLD" if dutch else "DEU",
        "coordinates": {"latitude": _coordinate(lat), "longitude": _coordinate(lon)},
        "parking_type": rng.choice(PARKING),
        "evses": evses,
        "operator": rng.choice(OPERATORS),
        "facilities": rng.sample(FACILITIES, rng.randint(0, 3)),
        "time_zone": "Europe/Amsterdam" if dutch else "Europe/Berlin",
        "last_updated": format_datetime(stamp),
    }
    if not data["facilities"]:
        del data["facilities"]
    if rng.random() < 0.7:
        data["opening_times"] = {"twentyfourseven": True}
    else:
        data["opening_times"] = {
            "twentyfourseven": False,
            "regular_hours": [{"weekday": d, "period_begin": "07:00", "period_end": "22:00"} for d in range(1, 8)],
        }
        data["charging_when_closed"] = rng.random() < 0.5
    if rng.random() < 0.3:
        data["directions"] = [{"language": "nl", "text": "Ingang via de slagboom, laadpalen op niveau -1"}]
    if rng.random() < 0.2:
        data["energy_mix"] = {
            "is_green_energy": True,
            "energy_sources": [{"source": "SOLAR", "percentage": 40}, {"source": "WIND", "percentage": 60}],
            "supplier_name": "Groene Stroom BV",
            "energy_product_name": "100% groen",
        }
    if rng.random() < 0.2:
        data["images"] = [
            {
                "url": f"https://example.com/img/{ocpi_id}.jpg",
                "thumbnail": f"https://example.com/img/{ocpi_id}-thumb.jpg",
                "category": "LOCATION",
                "type": "jpeg",
                "width": 800,
                "height": 600,
            }
        ]
    if rng.random() < 0.02:  # a few private locations, visible to listed tokens (still listed to partners)
        data["publish"] = False
        data["publish_allowed_to"] = [{"uid": f"TOKEN{ocpi_id}", "type": "RFID"}]
    return data


class Ids:
    """Explicit primary keys: the database is fresh, so COPY writes them and the sequences are set afterwards."""

    def __init__(self) -> None:
        # after what is there already (ocpi_demo's locations)
        self.location = Location.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        self.evse = Evse.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        self.connector = Connector.objects.order_by("-pk").values_list("pk", flat=True).first() or 0

    def next(self, name: str) -> int:
        value = getattr(self, name) + 1
        setattr(self, name, value)
        return value


def _jsonb(value: Any) -> Any:
    """A JSON value as it comes back from a PostgreSQL jsonb column: object keys shorter first, then bytewise."""
    if isinstance(value, dict):
        return {k: _jsonb(value[k]) for k in sorted(value, key=lambda k: (len(k.encode()), k.encode()))}
    if isinstance(value, list):
        return [_jsonb(v) for v in value]
    return value


def _values(mapper: Any, data: dict) -> dict[str, Any]:
    """Column values of one OCPI object as the services store them (JSON columns read back from jsonb)."""
    return {name: _jsonb(value) for name, value in mapper.from_ocpi(data).items()}


def build(data: dict, partner_id: int | None, ids: Ids, now: datetime) -> tuple[Location, list[Evse], list[Connector]]:
    """Model rows for one Location object, mapped like the services map a PUT; `doc` rendered from them exactly as
    `location_doc_refresh` renders it after re-reading the rows."""
    location = Location(
        pk=ids.next("location"), partner_id=partner_id, created_at=now, updated_at=now, **_values(LOCATION, data)
    )
    evses: list[Evse] = []
    connectors: list[Connector] = []
    for position, evse_data in enumerate(data.get("evses") or []):
        evse = Evse(pk=ids.next("evse"), location=location, position=position, **_values(EVSE, evse_data))
        own_connectors = [
            Connector(pk=ids.next("connector"), evse=evse, position=index, **_values(CONNECTOR, c))
            for index, c in enumerate(evse_data["connectors"])
        ]
        evse._prefetched_objects_cache = {"connectors": own_connectors}  # type: ignore[attr-defined]
        evses.append(evse)
        connectors.extend(own_connectors)
    location._prefetched_objects_cache = {"evses": evses}  # type: ignore[attr-defined]
    location.doc = dumps(location_render(location)).decode()
    return location, evses, connectors


def _db_value(field: models.Field, obj: models.Model) -> Any:
    value = getattr(obj, field.attname)
    if value is None:
        return None
    if isinstance(field, models.JSONField):
        return orjson.dumps(value).decode()
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def copy_rows(model: type[models.Model], rows: list[Any]) -> None:
    if not rows:
        return
    if connection.vendor == "sqlite":  # the embedded default (bench/run.py --database sqlite): no COPY there
        model._default_manager.bulk_create(rows, batch_size=500)
        return
    fields = list(model._meta.concrete_fields)
    columns = ", ".join(connection.ops.quote_name(str(f.column)) for f in fields)
    with connection.cursor() as cursor:
        raw = cursor.cursor  # the psycopg 3 cursor under Django's wrapper
        with raw.copy(f"COPY {model._meta.db_table} ({columns}) FROM STDIN") as copy:
            for obj in rows:
                copy.write_row([_db_value(f, obj) for f in fields])


def reset_sequences() -> None:
    if connection.vendor == "sqlite":
        return  # SQLite's AUTOINCREMENT follows the largest id written
    with connection.cursor() as cursor:
        for model in (Location, Evse, Connector):
            table = model._meta.db_table
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE((SELECT MAX(id) FROM {table}), 1))"  # noqa: S608
            )


def stamps(rng: random.Random, count: int) -> Iterator[datetime]:
    """Increasing last_updated values, second resolution, with ties (several locations changed in one second)."""
    stamp = EPOCH
    for _ in range(count):
        stamp += timedelta(seconds=rng.choice((0, 1, 1, 2, 3, 5)))
        yield stamp


def generate_locations(
    *,
    rng: random.Random,
    count: int,
    country_code: str,
    party_id: str,
    id_format: str,
    partner_id: int | None,
    ids: Ids,
    evse_paths: list[str] | None = None,
) -> None:
    """Write `count` locations in batches of BATCH (one transaction each)."""
    now = datetime.now(UTC)
    batch: tuple[list[Location], list[Evse], list[Connector]] = ([], [], [])
    for number, stamp in enumerate(stamps(rng, count), start=1):
        data = location_data(rng, country_code, party_id, id_format % number, stamp)
        location, evses, connectors = build(data, partner_id, ids, now)
        if evse_paths is not None:
            evse_paths.extend(f"{location.ocpi_id}/{evse.uid}" for evse in evses)
        batch[0].append(location)
        batch[1].extend(evses)
        batch[2].extend(connectors)
        if len(batch[0]) >= BATCH or number == count:
            with transaction.atomic():
                copy_rows(Location, batch[0])
                copy_rows(Evse, batch[1])
                copy_rows(Connector, batch[2])
            batch = ([], [], [])


def partner_create(
    *, name: str, roles: tuple[tuple[str, str, str], ...], receiver_url: str | None = None
) -> tuple[Partner, str]:
    """A registered partner with a credentials token (like conftest.make_partner); returns (partner, clear token)."""
    base = receiver_url.rstrip("/") if receiver_url else "http://127.0.0.1:9/ocpi"
    token_out = token_generate()
    partner = Partner.objects.create(
        name=name,
        status=Partner.Status.REGISTERED,
        versions_url=f"{base}/versions",
        version="2.2.1",
        token_out_encrypted=token_encrypt(token_out),
        token_out_hint=token_hint(token_out),
        registered_at=datetime.now(UTC),
    )
    token = token_generate()
    PartnerToken.objects.create(
        partner=partner, token_hash=token_hash(token), kind=PartnerToken.Kind.CREDENTIALS, hint=token_hint(token)
    )
    PartnerEndpoint.objects.create(
        partner=partner, identifier=ModuleID.CREDENTIALS, role=InterfaceRole.SENDER, url=f"{base}/2.2.1/credentials"
    )
    if receiver_url:
        PartnerEndpoint.objects.create(
            partner=partner, identifier=ModuleID.LOCATIONS, role=InterfaceRole.RECEIVER, url=f"{base}/2.2.1/locations"
        )
    for country_code, party_id, role in roles:
        Party.objects.create(
            partner=partner, country_code=country_code, party_id=party_id, role=role, name=f"{name} {role}"
        )
    return partner, token


def verify_sample(rng: random.Random, size: int = 200) -> dict[str, int]:
    """Re-render a sample from the database the way the services do and compare; validate the documents."""
    last = Location.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    sample = sorted({rng.randint(1, last) for _ in range(size)})
    checked = 0
    for location in _with_children(Location.objects.filter(pk__in=sample)):
        fresh = dumps(location_render(location)).decode()
        if fresh != location.doc:
            raise SystemExit(f"doc of location pk={location.pk} differs from what the services render")
        validate("Location", orjson.loads(location.doc))
        checked += 1
    return {"docs_checked": checked}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--locations", type=int, required=True, help="own locations (NL*DMC)")
    parser.add_argument("--partner-locations", type=int, default=None, help="bench partner's (default N/10, >=1000)")
    parser.add_argument("--push-partner", action="append", default=[], help="receiver base URL of a push partner")
    parser.add_argument("--page", type=int, default=50, help="page size the bare app's page holds")
    parser.add_argument("--seed", type=int, default=2211)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    if connection.vendor not in ("postgresql", "sqlite"):
        raise SystemExit("generate.py writes to PostgreSQL (COPY) or SQLite: point DATABASE_URL at one")
    if Partner.objects.filter(name="bench-cpo").exists():
        raise SystemExit("the database already holds bench data: run.py drops and recreates it")
    partner_count = args.partner_locations if args.partner_locations is not None else max(1000, args.locations // 10)
    rng = random.Random(args.seed)
    started = time.perf_counter()

    with open(os.devnull, "w") as devnull:  # own parties NL*DMC / NL*DME (and the demo's few locations and tariffs)
        call_command("ocpi_demo", stdout=devnull)
    partner, token = partner_create(
        name="bench-cpo", roles=((PARTNER_CC, PARTNER_CPO, Role.CPO), (PARTNER_CC, PARTNER_EMSP, Role.EMSP))
    )
    for number, url in enumerate(args.push_partner, start=1):
        partner_create(name=f"push-{number}", roles=(("DE", f"PP{number}", Role.EMSP),), receiver_url=url)

    ids = Ids()
    generate_locations(
        rng=rng,
        count=args.locations,
        country_code=OWN_CC,
        party_id=OWN_PID,
        id_format="LOC%07d",
        partner_id=None,
        ids=ids,
    )
    evse_paths: list[str] = []
    generate_locations(
        rng=rng,
        count=partner_count,
        country_code=PARTNER_CC,
        party_id=PARTNER_CPO,
        id_format="PLOC%06d",
        partner_id=partner.pk,
        ids=ids,
        evse_paths=evse_paths,
    )
    reset_sequences()
    with connection.cursor() as cursor:
        # fresh statistics (and on PostgreSQL the visibility map), as a long-running database has
        cursor.execute("VACUUM ANALYZE" if connection.vendor == "postgresql" else "ANALYZE")
    generated = time.perf_counter() - started
    checks = verify_sample(rng)

    # What the Sender list serves (the same visibility rule as locations.api.views.own_locations): the first page
    # and the total, for the bare reference app.
    listed = Location.objects.filter(partner__isnull=True).exclude(publish=False, publish_allowed_to=None)
    page_docs = list(listed.order_by("last_updated", "pk").values_list("doc", flat=True)[: args.page])
    total = listed.count()
    one = Location.objects.filter(partner__isnull=True, ocpi_id="LOC0000001").values_list("doc", flat=True).get()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "partner_evses.txt").write_text("\n".join(evse_paths) + "\n")
    (args.out / "bare.json").write_bytes(orjson.dumps({"page_docs": page_docs, "total": total, "location_doc": one}))
    summary = {
        "token": token,
        "own": {"country_code": OWN_CC, "party_id": OWN_PID, "count": args.locations, "listed": total},
        "partner": {
            "country_code": PARTNER_CC,
            "party_id": PARTNER_CPO,
            "count": partner_count,
            "evses": len(evse_paths),
        },
        "rows": {"locations": ids.location, "evses": ids.evse, "connectors": ids.connector},
        "push_partners": len(args.push_partner),
        "seconds": round(generated, 1),
        **checks,
    }
    (args.out / "bench.json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    print(orjson.dumps({k: v for k, v in summary.items() if k != "token"}).decode())


if __name__ == "__main__":
    main()
