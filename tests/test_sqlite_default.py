"""The embedded default (SQLite, `config.settings.local`, as `scripts/run` starts it) serves partners through the same
hot paths the PostgreSQL deployments use: token authentication, Sender lists, object GETs, a receiver PATCH. The rest
of the suite runs on PostgreSQL, so database-specific code on these paths is proven here, in a separate process."""

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO
from ocpi_core.crypto import token_hash
from ocpi_core.hot import SQLITE_TRIGGERS
from tests.platforms import platforms, server_logs_on_failure

LIST = "/ocpi/2.2.1/cpo/locations"

# Runs inside the child process (Django set up on a fresh SQLite database).
_SCRIPT = r"""
import base64, json
from urllib.parse import urlsplit
import django
django.setup()
from django.core.management import call_command
from django.test import Client
from conftest import make_partner
from ocpi_core.constants import Role

call_command("migrate", "--noinput", "-v", "0")
call_command("ocpi_demo", stdout=open("/dev/null", "w"))
partner, token = make_partner(roles=(("DE", "PRT", Role.EMSP), ("DE", "CPX", Role.CPO)))
client = Client(HTTP_AUTHORIZATION="Token " + base64.b64encode(token.encode()).decode(), HTTP_HOST="127.0.0.1")
out = {}
out["versions"] = client.get("/ocpi/versions").status_code
page = client.get("/ocpi/2.2.1/cpo/locations?limit=2")
out["page"] = [page.status_code, page.headers.get("X-Total-Count"), bool(page.headers.get("Link"))]
link = urlsplit(page.headers["Link"].split(">")[0].lstrip("<"))
link = f"{link.path}?{link.query}"
out["next"] = [item["id"] for item in client.get(link).json()["data"]]
out["offset"] = [item["id"] for item in client.get("/ocpi/2.2.1/cpo/locations?offset=1&limit=5").json()["data"]]
out["tokens"] = client.get("/ocpi/2.2.1/emsp/tokens").json()["status_code"]
location = {
    "country_code": "DE", "party_id": "CPX", "id": "L1", "publish": True, "address": "Street 1", "city": "Berlin",
    "country": "DEU", "coordinates": {"latitude": "52.520008", "longitude": "13.404954"}, "time_zone": "Europe/Berlin",
    "evses": [{"uid": "E1", "status": "AVAILABLE", "connectors": [{"id": "1", "standard": "IEC_62196_T2",
    "format": "SOCKET", "power_type": "AC_3_PHASE", "max_voltage": 230, "max_amperage": 16,
    "last_updated": "2024-01-01T00:00:00Z"}], "last_updated": "2024-01-01T00:00:00Z"}],
    "last_updated": "2024-01-01T00:00:00Z",
}
url = "/ocpi/2.2.1/emsp/locations/DE/CPX/L1"
out["put"] = client.put(url, location, content_type="application/json").status_code
patch = {"status": "CHARGING", "last_updated": "2024-01-02T00:00:00Z"}
out["patch"] = client.patch(url + "/E1", patch, content_type="application/json").json()["status_code"]
out["evse"] = client.get(url).json()["data"]["evses"][0]["status"]
print(json.dumps(out))
"""


def _child_env() -> dict[str, str]:
    """This process's environment without the suite's database, settings and broker (a child sets its own)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "DJANGO_", "CELERY_", "OCPI_"))}


def test_partner_requests_work_on_the_embedded_sqlite_default(tmp_path: Path) -> None:
    env = _child_env()
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.local",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        CELERY_BROKER_URL="",
        CELERY_EMBEDDED_BROKER_DIR=str(tmp_path / "broker"),
        PYTHONPATH=str(REPO),
    )
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT], cwd=REPO, env=env, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])

    assert out["versions"] == 200
    assert out["page"] == [200, "3", True]  # the demo CPO's three locations
    assert len(out["next"]) == 1
    assert len(out["offset"]) == 2
    assert out["tokens"] == 1000
    assert out["put"] == 201
    assert out["patch"] == 1000
    assert out["evse"] == "CHARGING"


# --- served by gunicorn, as scripts/run serves it --------------------------------------------------------------------

_PARTNER = r"""
import json
from conftest import make_partner
from ocpi_core.constants import Role
partner, token = make_partner(name="sqlite-peer", roles=(("DE", "PRT", Role.EMSP),))
print(json.dumps(token))
"""


def test_the_embedded_default_keeps_tokens_and_hears_changes_from_other_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite as scripts/run serves it (gunicorn, two workers): the database in write-ahead-log mode, the traffic log
    written off the request path, and the partner behind a token kept per worker (ocpi_core.hot.SqliteChangeCounter)
    while every change another process commits, by any means, reaches both workers at their next request."""
    monkeypatch.delenv("TEST_DATABASE_URL", raising=False)  # Database.create: an SQLite file, whatever the suite uses
    with platforms(tmp_path, ("sq", "XS"), extra_env={"OCPI_HOT_CACHE_SECONDS": "60"}) as (platform,):
        assert platform.database is not None
        assert platform.database.sqlite_path is not None
        token = platform.shell(_PARTNER)
        elsewhere = sqlite3.connect(platform.database.sqlite_path, timeout=20, isolation_level=None)
        hashed = token_hash(token)
        row = elsewhere.execute("SELECT * FROM ocpi_core_partnertoken WHERE token_hash = ?", [hashed]).fetchone()
        columns = [c[0] for c in elsewhere.execute("SELECT * FROM ocpi_core_partnertoken LIMIT 0").description]

        def statuses() -> set[int]:  # enough requests that both workers serve some (2**-19 that one serves none)
            return {platform.get(LIST, token).status_code for _ in range(20)}

        with server_logs_on_failure(platform):
            assert elsewhere.execute("PRAGMA journal_mode").fetchone() == ("wal",)
            assert statuses() == {200}

            elsewhere.execute("DELETE FROM ocpi_core_partnertoken WHERE token_hash = ?", [hashed])  # revoked elsewhere
            assert statuses() == {401}
            marks = ", ".join("?" * len(columns))
            insert = f"INSERT INTO ocpi_core_partnertoken ({', '.join(columns)}) VALUES ({marks})"  # noqa: S608
            elsewhere.execute(insert, row)
            assert statuses() == {200}

            # Without the counter's triggers a revocation goes unheard: the kept token still opens the door (so it
            # is kept, and the counter is what closes it above). All of them: a write to another of their tables
            # meanwhile (a worker noting the partner's contact, once a minute) would empty the caches too.
            for trigger in SQLITE_TRIGGERS:
                elsewhere.execute(f'DROP TRIGGER "{trigger}"')
            elsewhere.execute("DELETE FROM ocpi_core_partnertoken WHERE token_hash = ?", [hashed])
            assert statuses() == {200}

            deadline = time.monotonic() + 10  # the traffic log: written by each worker's writer thread, batched
            while (elsewhere.execute("SELECT count(*) FROM ocpi_core_trafficlog").fetchone() or (0,))[0] < 80:
                assert time.monotonic() < deadline, "the traffic log rows were not written"
                time.sleep(0.1)
        elsewhere.close()


_ON_SQLITE = ["tests/test_fast_path.py", "dashboard/tests/test_rollup.py", "dashboard/tests/test_session_rollup.py"]


def test_the_hot_paths_answer_as_drf_on_sqlite_too(tmp_path: Path) -> None:
    """The fast path serves the embedded default too (ocpi_core.db.fast_fetch), and the EVSE PATCH and the status
    history write hand-written statements there (locations.services, dashboard.rollup): tests/test_fast_path.py,
    which makes every request both ways and compares the answers and what is stored, and the rollup's tests
    (dashboard/tests/test_rollup.py: in order, out of order, ties, receiver PATCHes), run on SQLite; so do the
    session rollup's (kWh rounded as SQLite stores them, two writers of one row in turn)."""
    env = _child_env()
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.test",
        PYTHONHASHSEED="0",
        TEST_DATABASE_URL=f"sqlite:///{tmp_path / 'test.sqlite3'}",  # not the file of a suite running on SQLite
    )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", "-q", *_ON_SQLITE],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    summary = done.stdout.strip().splitlines()[-1]
    assert " passed" in summary
    assert "4 skipped" in summary, summary  # the two that end a PostgreSQL backend, the two exact decimal sums
