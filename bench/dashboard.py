"""Dashboard bench: N sessions over a year (plus EVSE status history) COPYed into a scratch PostgreSQL database, then
the dashboard's server time, in-process through the full middleware stack (django.test.Client, staff login).

    .venv/bin/python bench/dashboard.py --sessions 200000 [--database-url postgres://postgres@127.0.0.1:5432/postgres]

The scratch database (`--name`, default bench_dashboard) is dropped and created again; nothing else is touched.
The dashboard reads sessions, not CDRs (a CDR's energy is only in its JSON): no CDRs are generated.
"""

import argparse
import functools
import importlib.util
import os
import random
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def scratch_database(url: str, name: str) -> str:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=200_000)
    parser.add_argument("--locations", type=int, default=300)
    parser.add_argument("--evses", type=int, default=2, help="EVSEs per location")
    parser.add_argument("--status-changes", type=int, default=6, help="status changes per EVSE per day")
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--name", default="bench_dashboard")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    os.environ["TEST_DATABASE_URL"] = scratch_database(args.database_url, args.name)
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from rest_framework.test import APIClient

    from locations.models import Evse, Location
    from ocpi_core.constants import Role
    from ocpi_core.models import Partner, Party

    settings.ALLOWED_HOSTS = ["*"]
    call_command("migrate", verbosity=0)
    from dashboard import services  # imported now: the code measured is the code that was migrated

    rng = random.Random(6)
    now = datetime.now(UTC).replace(microsecond=0)
    year_ago = now - timedelta(days=365)

    t0 = time.perf_counter()
    partners = [Partner.objects.create(name=f"partner {i}", status=Partner.Status.REGISTERED) for i in range(6)]
    parties = [
        Party.objects.create(country_code="DE", party_id=f"P{i:02d}", role=Role.EMSP, partner=p, name=p.name)
        for i, p in enumerate(partners)
    ]
    mixes = [
        {
            "is_green_energy": True,
            "energy_sources": [{"source": "WIND", "percentage": 70}, {"source": "GAS", "percentage": 30}],
            "environ_impact": [{"category": "CARBON_DIOXIDE", "amount": 120}],
        },
        {"is_green_energy": False, "environ_impact": [{"category": "CARBON_DIOXIDE", "amount": 380}]},
        None,
    ]
    locations = Location.objects.bulk_create(
        Location(
            country_code="NL",
            party_id="OWN",
            ocpi_id=f"LOC{i:05d}",
            name=f"Location {i}",
            address="Stationsplein 1",
            city="Amsterdam",
            country="NLD",
            coordinates={"latitude": "52.378900", "longitude": "4.900300"},
            time_zone="Europe/Amsterdam",
            energy_mix=mixes[i % len(mixes)],
            last_updated=year_ago,
        )
        for i in range(args.locations)
    )
    evses = Evse.objects.bulk_create(
        Evse(location=loc, position=j, uid=f"{loc.ocpi_id}-{j}", status="AVAILABLE", last_updated=year_ago)
        for loc in locations
        for j in range(args.evses)
    )
    statuses = ["AVAILABLE", "CHARGING", "AVAILABLE", "CHARGING", "OUTOFORDER", "AVAILABLE"]
    with connection.cursor() as cursor:
        raw = cursor.cursor
        with raw.copy(
            "COPY sessions_app_session (partner_id, country_code, party_id, ocpi_id, start_date_time, end_date_time,"
            " kwh, cdr_token, token_country_code, token_party_id, token_uid, auth_method, location_id, evse_uid,"
            " connector_id, currency, status, last_updated, doc, charging_preferences_result, created_at, updated_at)"
            " FROM STDIN"
        ) as copy:
            span = int((now - year_ago).total_seconds())
            for i in range(args.sessions):
                start = year_ago + timedelta(seconds=rng.randrange(span))
                end = start + timedelta(minutes=rng.randrange(10, 300))
                theirs = rng.random() < 0.2
                party = parties[rng.randrange(len(parties))]
                location = locations[rng.randrange(len(locations))]
                copy.write_row(
                    (
                        partners[rng.randrange(len(partners))].pk if theirs else None,
                        "DE" if theirs else "NL",
                        "CPO" if theirs else "OWN",
                        f"S{i:09d}",
                        start,
                        end,
                        f"{rng.uniform(1, 60):.3f}",
                        "{}",
                        "NL" if theirs else party.country_code,
                        "OWE" if theirs else party.party_id,
                        f"U{i % 5000}",
                        "WHITELIST",
                        f"PLOC{i % 50}" if theirs else location.ocpi_id,
                        "E1",
                        "1",
                        "EUR",
                        "COMPLETED",
                        end,
                        "",
                        "",
                        end,
                        end,
                    )
                )
        history = 0
        with raw.copy("COPY dashboard_evsestatuschange (evse_id, status, since) FROM STDIN") as copy:
            for evse in evses:
                when = year_ago
                step = 86400 // max(1, args.status_changes)
                while when < now:
                    copy.write_row((evse.pk, statuses[history % len(statuses)], when))
                    history += 1
                    when += timedelta(seconds=rng.randrange(step // 2, step * 3 // 2))
    generated = time.perf_counter() - t0
    rolled = time.perf_counter()
    if importlib.util.find_spec("dashboard.rollup") is not None:  # not in a tree from before the rollup
        from dashboard.rollup import rollup_rebuild

        rollup_rebuild()  # the daily availability rollup, from the COPYed history (COPY bypasses the ORM's upkeep)
    rolled = time.perf_counter() - rolled
    sessions_rolled = time.perf_counter()
    session_rollup = importlib.util.find_spec("dashboard.session_rollup") is not None  # not before the rollup
    if session_rollup:
        from dashboard.session_rollup import session_rollup_rebuild

        session_rollup_rebuild()  # the daily session rollup, from the COPYed sessions (COPY bypasses its upkeep)
    sessions_rolled = time.perf_counter() - sessions_rolled
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")

    user = get_user_model().objects.create_user("bench", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(user)
    api = APIClient()
    api.force_authenticate(user)
    print(f"generated {args.sessions} sessions and {history} EVSE status changes in {generated:.1f} s")
    print(f"availability rollup built in {rolled:.1f} s")
    if session_rollup:
        print(f"session rollup built in {sessions_rolled:.1f} s")
    year = {"from": (now - timedelta(days=364)).date().isoformat()}
    at_location = {"location": locations[7].ocpi_id}
    of_partner = {"partner": str(partners[2].pk)}

    def timed(label: str, call: Callable[[], object]) -> None:
        times = []
        for _ in range(args.repeat + 1):
            started = time.perf_counter()
            call()
            times.append((time.perf_counter() - started) * 1000)
        times = times[1:]  # the first call warms caches and connections
        print(f"{label}: median {statistics.median(times):.0f} ms, min {min(times):.0f} ms ({args.repeat} requests)")

    def get(http: Client, url: str, params: dict[str, str]) -> Callable[[], object]:
        def call() -> object:
            response = http.get(url, params)
            assert response.status_code == 200, response.status_code
            return response

        return call

    for label, http, url, params in [
        ("page, default 30 days", client, "/admin/dashboard/", {}),
        ("page, 365 days", client, "/admin/dashboard/", year),
        ("CSV, 30 days", client, "/admin/dashboard/", {"format": "csv"}),
        ("API JSON, 30 days", api, "/api/dashboard/", {}),
        ("API JSON, 365 days", api, "/api/dashboard/", year),
        ("API JSON, 365 days, one location", api, "/api/dashboard/", {**year, **at_location}),
        ("API JSON, 365 days, one partner", api, "/api/dashboard/", {**year, **of_partner}),
        ("API JSON, 365 days, location and partner", api, "/api/dashboard/", {**year, **at_location, **of_partner}),
    ]:
        timed(label, get(http, url, params))
    # the session figures alone (energy, sessions, averages, energy mix): dashboard_figures without availability
    # and health, which read other tables
    services.availability = lambda *a, **k: {}  # type: ignore[assignment]
    services.health = dict  # type: ignore[assignment]
    for label, params in [
        ("session figures, 30 days", {}),
        ("session figures, 365 days", year),
        ("session figures, 365 days, one location", {**year, **at_location}),
        ("session figures, 365 days, one partner", {**year, **of_partner}),
        ("session figures, 365 days, location and partner", {**year, **at_location, **of_partner}),
    ]:
        filters = services.filters_parse(params)
        timed(label, functools.partial(services.dashboard_figures, filters))


if __name__ == "__main__":
    main()
