"""Test data for the Tariffs module: OCPI Tariff bodies as dicts, `own_tariff` (through the service, so the cached
JSON and the outbox are right) and a connector row of ours that references tariffs."""

import json
from typing import Any

import pytest
from django.utils import timezone

from conftest import EXAMPLES_DIR, examples_dir
from locations.models import Connector, Evse, Location
from tariffs.models import Tariff
from tariffs.services import Key, tariff_put

STAMP = "2024-01-01T00:00:00Z"


def tariff_examples() -> dict[str, bool]:
    """The official Tariff examples by file name, with whether INDEX.md marks them valid (not **INVALID**).

    Read at collection time: empty when the examples folder is absent (the tests using them then skip).
    """
    index = EXAMPLES_DIR / "INDEX.md"
    if not index.is_file():
        return {}
    found: dict[str, bool] = {}
    for line in index.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[1].startswith("Tariffs /") and cells[0].startswith("`"):
            found[cells[0].strip("`")] = "INVALID" not in cells[-1]
    assert found, "INDEX.md lists no tariff examples"
    return found


def example_names(*, valid: bool) -> list[str]:
    """Names of the Tariff examples INDEX.md marks valid (or invalid); a placeholder that skips when absent."""
    names = sorted(name for name, ok in tariff_examples().items() if ok is valid)
    return names or ["examples-not-found"]


def example(name: str) -> dict[str, Any]:
    """One official example, parsed (skips the test when the examples folder is absent)."""
    path = examples_dir() / name
    if not path.is_file():
        pytest.skip(f"{path} not found")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def tariff_data(
    tariff_id: str = "T1",
    *,
    country_code: str = "NL",
    party_id: str = "OWN",
    last_updated: str = STAMP,
    **fields: Any,
) -> dict[str, Any]:
    """A valid OCPI Tariff: €0.25/kWh and a €0.50 start fee."""
    data: dict[str, Any] = {
        "country_code": country_code,
        "party_id": party_id,
        "id": tariff_id,
        "currency": "EUR",
        "elements": [
            {
                "price_components": [
                    {"type": "ENERGY", "price": 0.25, "vat": 21.0, "step_size": 1},
                    {"type": "FLAT", "price": 0.5, "vat": 21.0, "step_size": 1},
                ]
            }
        ],
        "last_updated": last_updated,
    }
    data.update(fields)
    return data


def own_tariff(tariff_id: str = "T1", *, last_updated: str = STAMP, **fields: Any) -> Tariff:
    """One of our own tariffs (NL*OWN), written through the service (cached JSON, outbox rows)."""
    data = tariff_data(tariff_id, last_updated=last_updated, **fields)
    result = tariff_put(partner=None, key=Key(data["country_code"], data["party_id"], tariff_id), data=data)
    return result.tariff


def own_connector(
    *tariff_ids: str, country_code: str = "NL", party_id: str = "OWN", status: str = "AVAILABLE"
) -> Connector:
    """A connector of ours (on a new location and EVSE of the party) listing `tariff_ids`."""
    now = timezone.now()
    count = Location.objects.count()
    location = Location.objects.create(
        country_code=country_code,
        party_id=party_id,
        ocpi_id=f"LOC{count}",
        address="Stationsplein 1",
        city="Amsterdam",
        country="NLD",
        coordinates={"latitude": "52.378900", "longitude": "4.900300"},
        time_zone="Europe/Amsterdam",
        last_updated=now,
    )
    evse = Evse.objects.create(location=location, uid=f"EVSE{count}", status=status, last_updated=now)
    return Connector.objects.create(
        evse=evse,
        ocpi_id="1",
        standard="IEC_62196_T2",
        format="SOCKET",
        power_type="AC_3_PHASE",
        max_voltage=230,
        max_amperage=16,
        tariff_ids=list(tariff_ids),
        last_updated=now,
    )
