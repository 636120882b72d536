"""The embedded default (SQLite, `config.settings.local`, as `scripts/run` starts it) serves partners through the same
hot paths the PostgreSQL deployments use: token authentication, Sender lists, object GETs, a receiver PATCH. The rest
of the suite runs on PostgreSQL, so database-specific code on these paths is proven here, in a separate process."""

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import REPO

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


def test_partner_requests_work_on_the_embedded_sqlite_default(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "DJANGO_", "CELERY_", "OCPI_"))}
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
