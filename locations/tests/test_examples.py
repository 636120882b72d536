"""The spec's official Location examples through the eMSP Receiver (REFERENCE §6.3), read from the examples folder
beside the repository (never copied into it). INDEX.md there says which examples are valid: those are accepted and
come back from GET field by field; the ones it marks INVALID are rejected with 2001 naming the fields.
"""

import json
import re
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from conftest import EXAMPLES_DIR, examples_dir, make_partner
from locations.models import Connector, Evse, Location
from locations.services import location_render_rows
from locations.tests.factories import location_data
from ocpi_core.constants import Role, StatusCode
from ocpi_core.exceptions import InvalidParameters

BASE = "/ocpi/2.2.1/emsp/locations"
# the parties the examples are written for; one partner owns them all
EXAMPLE_PARTIES = (("BE", "BEC"), ("SE", "EVC"), ("NL", "ALF"), ("NL", "ALL"), ("DE", "ALL"), ("NL", "TNM"))
# the PATCH examples name …/locations/NL/TNM/1012[/3255|3256[/2]]; applied to location_example.json they go to its
# own ids (EVSE 3256 is the one with connector 2)
EXAMPLE_IDS = {"NL": "BE", "TNM": "BEC", "1012": "LOC1", "3255": "3256", "3256": "3256"}
_ROW = re.compile(r"^\| `(?P<file>[^`]+)` \| (?P<module>[^|]+) \| (?P<where>[^|]+) \| (?P<verdict>[^|]+) \|$")


def _index() -> list[dict[str, str]]:
    """The rows of INDEX.md's table: file, module, where, verdict (empty when the folder is absent)."""
    index = EXAMPLES_DIR / "INDEX.md"
    if not index.is_file():
        return []
    rows = (_ROW.match(line.strip()) for line in index.read_text().splitlines())
    return [{k: v.strip() for k, v in row.groupdict().items()} for row in rows if row]


def _valid(row: dict[str, str]) -> bool:
    return row["verdict"].startswith("OK")


def _files(predicate: Callable[[dict[str, str]], bool]) -> list[Any]:
    """Example files of INDEX.md matching `predicate`, as test params (one skipping param when there are none)."""
    names = [row["file"] for row in _index() if predicate(row)]
    return names or [pytest.param("absent", marks=pytest.mark.skip(reason=f"no OCPI examples at {EXAMPLES_DIR}"))]


def _read(name: str) -> Any:
    return json.loads((examples_dir() / name).read_text())


def snapshot() -> dict[str, Any]:
    return {
        "locations": list(Location.objects.order_by("pk").values()),
        "evses": list(Evse.objects.order_by("pk").values()),
        "connectors": list(Connector.objects.order_by("pk").values()),
    }


def ok(response: httpx.Response, http_status: int = 200) -> Any:
    body = response.json()
    assert (response.status_code, body["status_code"]) == (http_status, StatusCode.SUCCESS), response.text
    return body.get("data")


def location_url(data: dict[str, Any]) -> str:
    return f"{BASE}/{data['country_code']}/{data['party_id']}/{data['id']}"


@pytest.fixture
def cpo(ocpi: Callable[..., httpx.Client], own_parties: Any) -> httpx.Client:
    """A partner holding every CPO party the examples use."""
    _, token = make_partner(name="examples", roles=tuple((cc, pid, Role.CPO) for cc, pid in EXAMPLE_PARTIES))
    return ocpi(token)


@pytest.fixture
def example_location(cpo: httpx.Client) -> dict[str, Any]:
    """location_example.json, stored at BE/BEC/LOC1."""
    example = _read("location_example.json")
    ok(cpo.put(location_url(example), json=example), 201)
    return example


def _is_location(row: dict[str, str]) -> bool:
    return row["module"] == "Locations / Location" and _valid(row)


@pytest.mark.parametrize("name", _files(_is_location))
def test_every_valid_location_example_round_trips(cpo: httpx.Client, name: str) -> None:
    example = _read(name)

    ok(cpo.put(location_url(example), json=example), 201)

    got = ok(cpo.get(location_url(example)))
    assert set(got) == set(example)
    for field, value in example.items():  # field by field, so a difference names its field
        assert got[field] == value, field
    stored = Location.objects.get()
    assert orjson.loads(stored.doc) == location_render_rows(stored.pk) == example
    for evse in example.get("evses", []):  # and each EVSE and Connector at its own URL
        assert ok(cpo.get(f"{location_url(example)}/{evse['uid']}")) == evse
        for connector in evse["connectors"]:
            assert ok(cpo.get(f"{location_url(example)}/{evse['uid']}/{connector['id']}")) == connector


def _patch_url(where: str) -> str:
    """The example's URL (`…/locations/NL/TNM/1012/3255/2`) with location_example.json's ids."""
    match = re.search(r"locations/([^`]+)`", where)
    assert match, where
    return "/".join([BASE, *(EXAMPLE_IDS.get(part, part) for part in match.group(1).split("/"))])


def _is_patch(row: dict[str, str]) -> bool:
    return row["file"].startswith("location_patch_example") and _valid(row)


@pytest.mark.parametrize("name", _files(_is_patch))
def test_every_patch_example_applies_to_the_stored_example(
    cpo: httpx.Client, example_location: dict[str, Any], name: str
) -> None:
    row = next(row for row in _index() if row["file"] == name)
    url = _patch_url(row["where"])
    patch = _read(name)
    depth = url.count("/") - BASE.count("/") - 2  # 1 location, 2 EVSE, 3 connector

    ok(cpo.patch(url, json=patch))

    got = ok(cpo.get(url))
    for field, value in patch.items():  # every patched field reads back as sent
        assert got[field] == value, field
    location = ok(cpo.get(location_url(example_location)))
    assert location["last_updated"] == patch["last_updated"]  # the child bumped its location
    if depth == 3:
        assert ok(cpo.get(url.rsplit("/", 1)[0]))["last_updated"] == patch["last_updated"]  # and its EVSE
    # everything else is as the example stored it
    expected = json.loads(json.dumps(example_location))
    target: dict[str, Any] = expected
    ids = url[len(BASE) + 1 :].split("/")[3:]
    if ids:
        target = next(e for e in expected["evses"] if e["uid"] == ids[0])
        target["last_updated"] = patch["last_updated"]
        if len(ids) == 2:
            target = next(c for c in target["connectors"] if c["id"] == ids[1])
    target.update(patch)
    expected["last_updated"] = patch["last_updated"]
    assert location == expected
    stored = Location.objects.get()
    assert orjson.loads(stored.doc) == location_render_rows(stored.pk) == location


def _is_invalid_location(row: dict[str, str]) -> bool:
    return row["module"].startswith("Locations /") and "INVALID" in row["verdict"]


@pytest.mark.parametrize("name", _files(_is_invalid_location))
def test_every_invalid_example_is_rejected_naming_the_fields(
    cpo: httpx.Client, example_location: dict[str, Any], name: str
) -> None:
    assert name == "location_put_example_add_evse.json", "a new INVALID Locations example: say what it breaks"
    example = _read(name)
    before = snapshot()

    response = cpo.put(f"{BASE}/BE/BEC/LOC1/{example['uid']}", json=example)

    body = response.json()
    assert (response.status_code, body["status_code"]) == (InvalidParameters.http_status, StatusCode.INVALID_PARAMETERS)
    message = body["status_message"]
    for field in (  # the defects INDEX.md lists
        "physical_reference",
        "connectors[0].power_type",
        "connectors[0].max_voltage",
        "connectors[0].max_amperage",
        "connectors[0].last_updated",
    ):
        assert field in message, message
    assert snapshot() == before


def _is_fragment(row: dict[str, str]) -> bool:
    return row["module"] in ("Locations / Hours", "Locations / EnergyMix") and _valid(row)


def test_every_hours_and_energy_mix_example_is_accepted_in_a_location(cpo: httpx.Client) -> None:
    names = [row["file"] for row in _index() if _is_fragment(row)]
    if not names:
        pytest.skip(f"no OCPI examples at {EXAMPLES_DIR}")
    failures = []
    for number, name in enumerate(names):  # one location each, in one test: a live-server test costs a flush
        fragment = _read(name)
        if "opening_times" not in fragment and "energy_mix" not in fragment:
            fragment = {"opening_times": fragment}  # a bare Hours value of Location.opening_times
        location = location_data(f"FRAGMENT{number}", country_code="BE", party_id="BEC", **fragment)
        put = cpo.put(location_url(location), json=location)
        got = cpo.get(location_url(location)).json().get("data")
        if (put.status_code, put.json()["status_code"], got) != (201, StatusCode.SUCCESS, location):
            failures.append(f"{name}: {put.text} / {got}")
    assert not failures, "\n".join(failures)
    assert len(names) >= 7  # INDEX.md lists three EnergyMix and four Hours examples
