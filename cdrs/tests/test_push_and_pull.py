"""CDRs between platforms: our CDR POSTed by a real Celery worker (Redis broker) to the token's eMSP, a local HTTP
server that answers with a Location header; and CDRs pulled from a CPO partner's Sender list (local HTTP server)."""

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from cdrs.models import Cdr
from cdrs.tests.factories import cdr_data
from config.celery_app import app
from conftest import envelope_body, make_partner
from ocpi_core.constants import Role
from ocpi_core.models import Delivery, PartnerEndpoint, SyncRun
from ocpi_core.sync import sync_run
from ocpi_core.tests.test_tasks import redis_broker  # noqa: F401  (a fixture)
from sessions_app.services import session_start, session_stop, session_update
from sessions_app.tests.factories import cdr_token, own_charging_location
from tests.test_push_worker import wait_until

START = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def _fast_push(settings: Any) -> None:
    settings.OCPI_PUSH_RETRY_BASE_SECONDS = 0.2
    settings.OCPI_PUSH_RETRY_MAX_SECONDS = 2.0
    settings.OCPI_PUSH_SWEEP_GRACE_SECONDS = 0.0


@pytest.fixture
def push_worker(redis_broker: str, _fast_push: None) -> Iterator[Any]:  # noqa: F811
    """A real Celery worker consuming the push queue from Redis, in a thread of this process."""
    with start_worker(app, pool="solo", queues=["push"], perform_ping_check=False, shutdown_timeout=30) as worker:
        yield worker


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_the_cdr_of_a_stopped_session_reaches_the_emsp_and_its_location_is_kept(
    own_parties: Any, httpserver: HTTPServer, push_worker: Any
) -> None:
    received: list[dict[str, Any]] = []
    stored_at = "https://emsp.example.com/ocpi/2.2.1/emsp/cdrs/777"

    def emsp_receiver(request: Request) -> Response:
        received.append({"method": request.method, "headers": dict(request.headers), "body": request.data})
        return Response(envelope_body(), 201, headers={"Location": stored_at}, mimetype="application/json")

    httpserver.expect_request("/ocpi/2.2.1/emsp/cdrs", method="POST").respond_with_handler(emsp_receiver)
    emsp, _ = make_partner(name="emsp", roles=(("DE", "PRT", Role.EMSP),), base_url=httpserver.url_for("/ocpi"))
    PartnerEndpoint.objects.create(
        partner=emsp, identifier="cdrs", role="RECEIVER", url=httpserver.url_for("/ocpi/2.2.1/emsp/cdrs")
    )
    own_charging_location()
    session = session_start(
        location_id="LOC1",
        evse_uid="EVSE1",
        connector_id="1",
        cdr_token=cdr_token(),
        auth_method="WHITELIST",
        start=START,
    )
    period = {"start_date_time": "2024-03-01T09:00:00Z", "dimensions": [{"type": "ENERGY", "volume": Decimal("10")}]}
    session_update(session=session, kwh=Decimal("10"), charging_period=period, at=START + timedelta(minutes=1))

    session_stop(session=session, at=START + timedelta(hours=1))

    wait_until(
        lambda: Delivery.objects.filter(module="cdrs", status=Delivery.Status.DELIVERED).exists(), "the CDR POST"
    )
    cdr = Cdr.objects.get()
    assert len(received) == 1
    assert received[0]["method"] == "POST"
    assert json.loads(received[0]["body"]) == json.loads(cdr.doc)
    assert (received[0]["headers"]["Ocpi-To-Country-Code"], received[0]["headers"]["Ocpi-To-Party-Id"]) == ("DE", "PRT")
    assert json.loads(received[0]["body"])["total_cost"] == {"excl_vat": 3.0, "incl_vat": 3.63}
    assert cdr.receiver_location == stored_at


@pytest.fixture
def cpo_server(httpserver: HTTPServer, own_parties: Any) -> tuple[Any, list[Any]]:
    """A CPO partner (BE*BEC) whose CDRs Sender lists `pages[0]` (our eMSP NL*OWE owns the tokens)."""
    pages: list[Any] = [[]]
    partner, _ = make_partner(name="cpo", roles=(("BE", "BEC", Role.CPO),), base_url=httpserver.url_for("/ocpi"))
    PartnerEndpoint.objects.create(
        partner=partner, identifier="cdrs", role="SENDER", url=httpserver.url_for("/ocpi/2.2.1/cpo/cdrs")
    )

    def sender(request: Request) -> Response:
        data = pages[0]
        return Response(envelope_body(data), headers={"X-Total-Count": str(len(data))}, mimetype="application/json")

    httpserver.expect_request("/ocpi/2.2.1/cpo/cdrs", method="GET").respond_with_handler(sender)
    return partner, pages


@pytest.mark.django_db
def test_cdrs_are_pulled_once_bad_ones_reported_and_none_removed_by_a_full_sync(cpo_server: Any) -> None:
    partner, pages = cpo_server
    bad = cdr_data("BAD", currency="euro")
    pages[0] = [cdr_data("P1"), cdr_data("P2", last_updated="2024-01-02T00:00:00Z"), bad]

    first = sync_run(partner=partner, module="cdrs")
    again = sync_run(partner=partner, module="cdrs")
    pages[0] = []
    full = sync_run(partner=partner, module="cdrs", full=True)

    assert (first.status, first.received, first.errors) == (SyncRun.Status.SUCCEEDED, 2, 1)
    assert "BE*BEC BAD" in first.message
    assert "currency" in first.message
    assert (again.received, again.errors) == (2, 1)  # the same CDRs again: acknowledged, not duplicated
    assert (full.status, full.removed) == (SyncRun.Status.SUCCEEDED, 0)
    assert sorted(Cdr.objects.filter(partner=partner).values_list("ocpi_id", flat=True)) == ["P1", "P2"]
    assert Cdr.objects.get(ocpi_id="P1").data["total_cost"]["incl_vat"] == Decimal("3.403125")
