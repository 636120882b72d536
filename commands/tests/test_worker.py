"""Commands end to end on a real Celery worker consuming the "commands" queue from a real Redis: the command is
answered over HTTP, carried out by the simulator in the worker, and the CommandResult POSTed to the eMSP's
response_url (a local HTTP server); a silent charger gets TIMEOUT from the watchdog task."""

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import pytest
from celery.contrib.testing.worker import start_worker
from pytest_httpserver import HTTPServer

from commands.models import Command
from commands.tasks import command_watchdog_task
from commands.tests.factories import start_session
from config.celery_app import app
from conftest import envelope_body, make_partner
from gateway.models import SimulatedEvse
from locations.models import Evse
from locations.tests.factories import own_location
from ocpi_core.tests.test_tasks import redis_broker  # noqa: F401  (a fixture)
from sessions_app.models import Session

pytestmark = [
    pytest.mark.worker,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("own_parties", "redis_broker"),
]


@contextmanager
def commands_worker() -> Iterator[Any]:
    with start_worker(app, pool="solo", queues=["commands"], perform_ping_check=False, shutdown_timeout=30) as worker:
        assert worker.consumer.connection.transport.driver_type == "redis"  # type: ignore[attr-defined]
        yield worker


def wait_until(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout} s; commands: {list(Command.objects.values())}")
        time.sleep(0.05)
    return result


def received(httpserver: HTTPServer) -> list[dict[str, Any]]:
    return [orjson.loads(request.get_data()) for request, _ in httpserver.log if request.path == "/cb"]


def test_command_result_reaches_the_emsp_through_the_worker(ocpi: Any, httpserver: HTTPServer) -> None:
    own_location("LOC1", evses=1)
    _partner, token = make_partner(name="emsp", roles=(("DE", "PRT", "EMSP"),))
    httpserver.expect_request("/cb", method="POST").respond_with_data(envelope_body(), content_type="application/json")
    body = start_session(httpserver.url_for("/cb"), evse_uid="LOC1-1", authorization_reference="REF-W")

    with commands_worker():
        answer = ocpi(token).post("/ocpi/2.2.1/cpo/commands/START_SESSION", json=body).json()
        assert answer["data"]["result"] == "ACCEPTED"
        wait_until(lambda: received(httpserver), "CommandResult POST")

    assert received(httpserver) == [{"result": "ACCEPTED"}]
    assert Command.objects.get().result_delivery == "DELIVERED"
    assert Session.objects.get().authorization_reference == "REF-W"
    assert Evse.objects.get(uid="LOC1-1").status == "CHARGING"


def test_watchdog_task_sends_timeout_through_the_worker(ocpi: Any, httpserver: HTTPServer, settings: Any) -> None:
    settings.OCPI_COMMAND_TIMEOUT = 1
    own_location("LOC1", evses=1)
    SimulatedEvse.objects.create(evse=Evse.objects.get(uid="LOC1-1"), behaviour="NO_ANSWER")
    _partner, token = make_partner(name="emsp", roles=(("DE", "PRT", "EMSP"),))
    httpserver.expect_request("/cb", method="POST").respond_with_data(envelope_body(), content_type="application/json")

    with commands_worker():
        answer = ocpi(token).post(
            "/ocpi/2.2.1/cpo/commands/START_SESSION", json=start_session(httpserver.url_for("/cb"))
        )
        assert answer.json()["data"] == {"result": "ACCEPTED", "timeout": 1}
        wait_until(lambda: Command.objects.filter(gateway="simulator").exists(), "command stored")
        time.sleep(1.2)
        command_watchdog_task.delay()
        wait_until(lambda: received(httpserver), "TIMEOUT POST")

    assert received(httpserver) == [{"result": "TIMEOUT"}]
    assert Command.objects.get().state == "TIMED_OUT"
    assert not Session.objects.exists()
