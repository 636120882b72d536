"""The webhook gateway: a received command is POSTed, HMAC-signed, to the operator's charge point system (a local
server that verifies the signature); that system reports the outcome through the platform API, and the
CommandResult then reaches the eMSP. Celery runs eagerly here (the real worker is proven in commands/tests)."""

import hashlib
import hmac
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from django.test import Client
from kombu import pools as kombu_pools
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from commands.models import Command
from commands.services import command_execute
from commands.tests.factories import start_session
from config.celery_app import app
from conftest import envelope_body, make_partner
from gateway.models import Backend
from gateway.services import location_gateway_set
from gateway.webhook import webhook_signature
from locations.tests.factories import own_location
from ocpi_core.models import Party

pytestmark = pytest.mark.django_db(transaction=True)

SECRET = "webhook-secret-for-tests"


@pytest.fixture
def eager() -> Iterator[None]:
    saved = app.conf.task_always_eager
    # Worker tests force-close the memory broker's pool, which kombu keeps cached per URL: start from fresh pools
    kombu_pools.reset()
    app._pool = None  # type: ignore[attr-defined]
    app.amqp._producer_pool = None  # type: ignore[attr-defined]
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = saved


def test_signature_is_hmac_sha256_of_the_body(settings: Any) -> None:
    settings.GATEWAY_WEBHOOK_SECRET = SECRET
    body = b'{"a":1}'
    assert webhook_signature(body) == "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert webhook_signature(body) != webhook_signature(b'{"a":2}')


def test_command_goes_signed_to_the_operator_system_and_result_comes_back(
    eager: None, staff: Client, ocpi: Any, httpserver: HTTPServer, settings: Any
) -> None:
    settings.GATEWAY_WEBHOOK_SECRET = SECRET
    location = own_location("LOC1", evses=1)
    location_gateway_set(location=location, backend=Backend.WEBHOOK, webhook_url=httpserver.url_for("/csms"))
    _partner, token = make_partner(name="emsp", roles=(("DE", "PRT", "EMSP"),))
    verified: list[dict[str, Any]] = []

    def csms(request: Request) -> Response:
        body = request.get_data()
        expected = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(request.headers.get("X-Signature", ""), expected):
            return Response("bad signature", status=401)
        verified.append(orjson.loads(body))
        return Response("{}", content_type="application/json")

    httpserver.expect_request("/csms", method="POST").respond_with_handler(csms)
    httpserver.expect_request("/cb", method="POST").respond_with_data(envelope_body(), content_type="application/json")

    answer = ocpi(token).post(
        "/ocpi/2.2.1/cpo/commands/START_SESSION",
        json=start_session(httpserver.url_for("/cb"), evse_uid="LOC1-1", authorization_reference="R7"),
    )
    command = Command.objects.get()
    assert answer.json()["data"]["result"] == "ACCEPTED"
    assert command.gateway == "webhook"

    assert len(verified) == 1  # the gateway task ran after the commit (eagerly here), the outcome comes later
    assert command_execute(command_id=command.pk) is None  # a task delivered twice: nothing is sent again
    assert len(verified) == 1
    event = verified[0]
    assert (event["event"], event["command_id"], event["command_type"]) == ("command", command.pk, "START_SESSION")
    assert (event["location_id"], event["evse_uid"], event["authorization_reference"]) == ("LOC1", "LOC1-1", "R7")
    assert event["token"]["uid"] == "APP0001"

    reported = staff.post(f"/api/commands/{command.pk}/result", {"result": "ACCEPTED"}, content_type="application/json")

    assert reported.status_code == 200, reported.content
    command.refresh_from_db()
    assert (command.state, command.result, command.result_delivery) == ("DONE", "ACCEPTED", "DELIVERED")
    callbacks = [orjson.loads(r.get_data()) for r, _ in httpserver.log if r.path == "/cb"]
    assert callbacks == [{"result": "ACCEPTED"}]

    again = staff.post(f"/api/commands/{command.pk}/result", {"result": "FAILED"}, content_type="application/json")
    assert again.status_code == 400
    bad = staff.post(f"/api/commands/{command.pk}/result", {"result": "MAYBE"}, content_type="application/json")
    assert bad.status_code == 400
    command.refresh_from_db()
    assert command.result == "ACCEPTED"


def test_webhook_with_a_wrong_secret_is_refused_by_the_receiver(
    eager: None, ocpi: Any, httpserver: HTTPServer, settings: Any
) -> None:
    settings.GATEWAY_WEBHOOK_SECRET = "another-secret"
    from gateway.webhook import webhook_send

    def csms(request: Request) -> Response:
        expected = "sha256=" + hmac.new(SECRET.encode(), request.get_data(), hashlib.sha256).hexdigest()
        ok = hmac.compare_digest(request.headers.get("X-Signature", ""), expected)
        return Response("{}", status=200 if ok else 401)

    httpserver.expect_request("/csms", method="POST").respond_with_handler(csms)
    webhook_send(url=httpserver.url_for("/csms"), payload={"event": "command"})
    assert httpserver.log[0][1].status_code == 401


def test_without_a_secret_nothing_is_sent_and_the_command_fails(settings: Any, own_parties: list[Party]) -> None:
    from gateway.base import GatewayCommand
    from gateway.webhook import WebhookGateway

    settings.GATEWAY_WEBHOOK_SECRET = ""
    request = GatewayCommand(
        command_id=1, command_type="UNLOCK_CONNECTOR", country_code="NL", party_id="OWN", location_id="L"
    )
    assert WebhookGateway(webhook_url="http://127.0.0.1:9/hook").unlock_connector(command=request) == "FAILED"
