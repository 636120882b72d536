"""Pushes addressed to a party a hub reports OFFLINE, PLANNED or SUSPENDED are held (not sent, not failed, not an
attempt) and go out when the hub reports it CONNECTED again (REFERENCE §13.3; ocpi_core.push hold checks)."""

import re
import time
from collections.abc import Callable
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from pytest_httpserver import HTTPServer

from config.celery_app import app
from conftest import envelope_body, make_partner
from hubclientinfo.services import clientinfo_put
from locations.services import Key, location_put
from ocpi_core.constants import Role
from ocpi_core.models import Delivery, Partner, PartnerEndpoint
from ocpi_core.push import HOLD_PREFIX, outbox_deliver
from ocpi_core.tests.test_tasks import redis_broker  # noqa: F401  (a fixture)
from tests.partner_server import location_body

URL = "/ocpi/2.2.1/hubclientinfo"
LOC1 = Key("NL", "OWN", "LOC1")


def receiving(server: HTTPServer, *, name: str, roles: tuple[tuple[str, str, str], ...]) -> tuple[Partner, str]:
    """A registered partner receiving Locations on the local HTTP server, which answers every PUT with success."""
    partner, token = make_partner(name=name, base_url=server.url_for("/ocpi"), roles=roles)
    PartnerEndpoint.objects.create(
        partner=partner, identifier="locations", role="RECEIVER", url=server.url_for(f"/{name}/2.2.1/locations")
    )
    server.expect_request(re.compile(rf"/{name}/.*"), method="PUT").respond_with_data(
        envelope_body(), content_type="application/json"
    )
    return partner, token


def info(status: str, stamp: str, country_code: str = "DE", party_id: str = "ABC") -> dict[str, Any]:
    return {"party_id": party_id, "country_code": country_code, "role": "EMSP", "status": status, "last_updated": stamp}


def wait_until(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout} s; {list(Delivery.objects.values('status', 'last_error'))}")
        time.sleep(0.05)
    return result


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("redis_broker")
def test_offline_party_is_held_and_connected_releases_it_on_a_real_worker(ocpi, own_parties, httpserver):
    _, token = receiving(httpserver, name="hub", roles=(("DE", "ABC", Role.EMSP), ("NL", "HUB", Role.HUB)))
    assert ocpi(token).put(f"{URL}/DE/ABC", json=info("OFFLINE", "2024-01-01T00:00:00Z")).status_code == 201

    with start_worker(app, pool="solo", queues=["push"], perform_ping_check=False, shutdown_timeout=30):
        location_put(partner=None, key=LOC1, data=location_body())  # writes the delivery, enqueued after commit
        held = wait_until(
            lambda: Delivery.objects.filter(last_error__startswith=HOLD_PREFIX).first(), "the delivery is held"
        )
        assert (held.status, held.attempts) == (Delivery.Status.PENDING, 0)
        assert "DE*ABC is OFFLINE" in held.last_error
        assert httpserver.log == []  # nothing sent to the offline party

        put = ocpi(token).put(f"{URL}/DE/ABC", json=info("CONNECTED", "2024-01-01T01:00:00Z"))
        assert put.status_code == 200
        wait_until(lambda: Delivery.objects.filter(status=Delivery.Status.DELIVERED).exists(), "released, delivered")

    (request, _response), *_ = httpserver.log
    assert request.method == "PUT"
    assert request.path.endswith("/locations/NL/OWN/LOC1")
    assert (request.headers["OCPI-to-country-code"], request.headers["OCPI-to-party-id"]) == ("DE", "ABC")
    assert Delivery.objects.get(pk=held.pk).attempts == 1


@pytest.mark.django_db(transaction=True)
def test_suspended_and_planned_hold_newer_changes_supersede_and_connected_is_not_held(own_parties, httpserver):
    hub, _ = make_partner(name="hub", roles=(("NL", "HUB", Role.HUB),))
    direct, _ = receiving(httpserver, name="direct", roles=(("DE", "ABC", Role.EMSP),))
    other, _ = receiving(httpserver, name="other", roles=(("DE", "XYZ", Role.EMSP),))
    clientinfo_put(partner=hub, country_code="DE", party_id="ABC", data=info("SUSPENDED", "2024-01-01T00:00:00Z"))
    clientinfo_put(
        partner=hub, country_code="DE", party_id="XYZ", data=info("CONNECTED", "2024-01-01T00:00:00Z", "DE", "XYZ")
    )

    location_put(partner=None, key=LOC1, data=location_body())
    first = Delivery.objects.get(partner=direct)
    to_other = Delivery.objects.get(partner=other)
    outbox_deliver(delivery_id=first.pk)
    outbox_deliver(delivery_id=to_other.pk)

    first.refresh_from_db()
    assert (first.status, first.attempts, first.last_error) == (
        Delivery.Status.PENDING,
        0,
        f"{HOLD_PREFIX}DE*ABC is SUSPENDED (hub client info from hub)",
    )
    assert Delivery.objects.get(pk=to_other.pk).status == Delivery.Status.DELIVERED  # its party is CONNECTED
    assert [request.path for request, _ in httpserver.log] == ["/other/2.2.1/locations/NL/OWN/LOC1"]

    # a newer change supersedes the held one; PLANNED holds too
    clientinfo_put(partner=hub, country_code="DE", party_id="ABC", data=info("PLANNED", "2024-01-02T00:00:00Z"))
    location_put(partner=None, key=LOC1, data=location_body(name="Renamed"))
    newer = Delivery.objects.filter(partner=direct).order_by("-pk").first()
    assert newer is not None
    assert Delivery.objects.get(pk=first.pk).status == Delivery.Status.SUPERSEDED
    outbox_deliver(delivery_id=newer.pk)
    newer.refresh_from_db()
    assert newer.last_error.endswith("DE*ABC is PLANNED (hub client info from hub)")

    # CONNECTED makes it due at once, with a fresh window; the next attempt sends it
    clientinfo_put(partner=hub, country_code="DE", party_id="ABC", data=info("CONNECTED", "2024-01-03T00:00:00Z"))
    newer.refresh_from_db()
    assert (newer.status, newer.last_error) == (Delivery.Status.PENDING, "")
    assert outbox_deliver(delivery_id=newer.pk).status == Delivery.Status.DELIVERED
    assert len(httpserver.log) == 2
