"""A list's count and offset anchors, once kept longer than OCPI_COUNT_CACHE_SECONDS, are recomputed by a background
thread of the process while requests get the last value (ocpi_core.pagination.kept): over real HTTP to a live
server, on the Locations fast path (PostgreSQL) and on the DRF path (Tariffs)."""

import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from django.core.cache import cache

from conftest import make_partner
from locations.tests.factories import own_location
from ocpi_core import pagination
from ocpi_core.constants import Role
from ocpi_core.models import Party
from tariffs.tests.factories import own_tariff

TTL = 1


@pytest.fixture
def client(
    own_parties: list[Party], transactional_db: None, settings: Any, ocpi: Callable[..., httpx.Client]
) -> httpx.Client:
    settings.OCPI_COUNT_CACHE_SECONDS = TTL
    settings.OCPI_TRAFFIC_LOG_ENABLED = False
    cache.clear()
    pagination._kept.clear()
    _, token = make_partner(roles=(("DE", "PRT", Role.EMSP),))
    return ocpi(token)


def total(client: httpx.Client, url: str) -> int:
    response = client.get(url)
    assert response.status_code == 200, response.text
    return int(response.headers["X-Total-Count"])


def refreshed() -> None:
    deadline = time.monotonic() + 10
    while pagination._refreshing:
        assert time.monotonic() < deadline, "the background refresh did not finish"
        time.sleep(0.01)


@pytest.mark.parametrize(
    ("url", "make"),
    [
        ("/ocpi/2.2.1/cpo/locations?limit=1", lambda i: own_location(f"LOC{i}")),
        ("/ocpi/2.2.1/cpo/tariffs?limit=1", lambda i: own_tariff(f"TAR{i}")),
    ],
)
def test_an_expired_count_is_served_once_more_while_the_process_recounts(
    client: httpx.Client, url: str, make: Callable[[int], Any]
) -> None:
    for i in range(3):
        make(i)
    assert total(client, url) == 3  # first use: counted in the request
    for i in range(3, 5):
        make(i)
    assert total(client, url) == 3  # kept
    time.sleep(TTL + 0.1)
    assert total(client, url) == 3  # expired: the last value, while a background thread recounts
    refreshed()
    assert total(client, url) == 5  # the new count, kept again
    make(5)
    time.sleep(2 * TTL + 0.1)
    assert total(client, url) == 6  # too old to serve even once more: counted in the request
