"""Our own sessions (we are the CPO): session_start / session_update / session_stop, the snapshot taken at the start,
the `session_completed` signal, and the push to exactly the eMSP that owns the token (outbox rows here, and a real
Celery worker consuming from Redis delivering to a partner served over local HTTP)."""

import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Response

from conftest import envelope_body, make_partner
from ocpi_core.constants import Role
from ocpi_core.exceptions import InvalidParameters, UnknownLocation
from ocpi_core.models import Delivery, Partner, PartnerEndpoint
from ocpi_core.push import outbox_deliver, push_module
from ocpi_core.tests.test_tasks import redis_broker  # noqa: F401  (a fixture)
from sessions_app.models import Session
from sessions_app.services import session_start, session_stop, session_token_partner, session_update
from sessions_app.signals import session_completed
from sessions_app.tests.factories import cdr_token, own_charging_location
from tests.partner_server import Answer, PartnerServer, Received
from tests.test_push_worker import push_worker, wait_until

pytestmark = pytest.mark.usefixtures("own_parties")

PERIOD = {"start_date_time": "2024-01-01T00:00:00Z", "dimensions": [{"type": "ENERGY", "volume": Decimal("1.125")}]}


def emsp(name: str, party: tuple[str, str], endpoint: str = "http://127.0.0.1:9/ocpi/2.2.1/sessions") -> Partner:
    """A registered eMSP partner with a Sessions Receiver."""
    partner, _ = make_partner(name=name, roles=((*party, Role.EMSP),))
    PartnerEndpoint.objects.create(partner=partner, identifier="sessions", role="RECEIVER", url=endpoint)
    return partner


def start(session_id: str = "S1", party: tuple[str, str] = ("DE", "PRT"), **kwargs: Any) -> Session:
    return session_start(
        location_id="loc1",  # CiString: found case-insensitively, stored as the location spells it
        evse_uid="EVSE1",
        connector_id="1",
        cdr_token=cdr_token(*party),
        auth_method="COMMAND",
        authorization_reference="REF1",
        session_id=session_id,
        **kwargs,
    )


def pending() -> list[tuple[str, str, str, list[str]]]:
    return [
        (d.partner.name, d.method, d.object_path, d.fields)
        for d in Delivery.objects.filter(status=Delivery.Status.PENDING).select_related("partner").order_by("pk")
    ]


def deliver_all() -> None:
    Delivery.objects.filter(status=Delivery.Status.PENDING).update(status=Delivery.Status.DELIVERED)


@pytest.fixture
def location(db: None) -> Any:
    return own_charging_location(tariff_ids=("T1",), currency="SEK")


def test_start_snapshot_currency_and_push_to_the_token_owner_only(location: Any) -> None:
    a, b = emsp("a", ("DE", "PRT")), emsp("b", ("FR", "BBB"))
    Delivery.objects.all().delete()  # the location's own pushes
    session = start()
    assert pending() == [("a", "PUT", "S1", [])]
    assert session_token_partner(session) == a
    assert b.pk != a.pk
    assert (session.location_id, session.currency, session.status, session.kwh) == ("LOC1", "SEK", "ACTIVE", 0)
    assert session.authorization_reference == "REF1"
    assert session.partner is None
    snapshot: Any = Session.objects.get().snapshot
    assert snapshot["time_zone"] == "Europe/Amsterdam"
    assert [e["uid"] for e in snapshot["location"]["evses"]] == ["EVSE1"]
    assert [c["id"] for c in snapshot["location"]["evses"][0]["connectors"]] == ["1"]
    assert [t["id"] for t in snapshot["tariffs"]] == ["T1"]
    price = snapshot["tariffs"][0]["elements"][0]["price_components"][0]["price"]
    assert price == Decimal("0.25")
    assert isinstance(price, Decimal)

    body = push_module("sessions").render(country_code="NL", party_id="OWN", object_path="S1", method="PUT", fields=[])
    assert body is not None
    assert body["id"] == "S1"
    assert body["cdr_token"]["party_id"] == "PRT"


def test_update_and_stop_push_patches_and_puts_to_the_same_partner(location: Any) -> None:
    emsp("a", ("DE", "PRT"))
    emsp("b", ("FR", "BBB"))
    session = start()
    deliver_all()
    session = session_update(session=session, kwh=Decimal("3.210"))
    assert pending() == [("a", "PATCH", "S1", ["kwh", "last_updated"])]
    render = push_module("sessions").render
    patch = render(country_code="NL", party_id="OWN", object_path="S1", method="PATCH", fields=["kwh", "last_updated"])
    assert patch is not None
    assert set(patch) == {"kwh", "last_updated"}
    assert patch["kwh"] == Decimal("3.210")
    deliver_all()

    session = session_update(session=session, charging_period=PERIOD)
    assert pending() == [("a", "PUT", "S1", [])]  # a period is sent with the whole Session: never appended twice
    assert Session.objects.get().charging_periods == [PERIOD]
    deliver_all()

    session = session_stop(session=session)
    assert pending()[0][:2] == ("a", "PATCH")
    assert set(pending()[0][3]) == {"end_date_time", "status", "last_updated"}
    stored = Session.objects.get()
    assert stored.status == "COMPLETED"
    assert stored.end_date_time is not None
    with pytest.raises(InvalidParameters):
        session_update(session=stored, kwh=Decimal(5))
    assert Session.objects.get().kwh == Decimal("3.21")


def test_no_push_without_a_registered_token_owner(location: Any) -> None:
    emsp("b", ("FR", "BBB"))
    Delivery.objects.all().delete()
    start(party=("IT", "ZZZ"))
    assert pending() == []


def test_session_completed_is_sent_once_on_stop(location: Any) -> None:
    received: list[Session] = []

    def receiver(sender: Any, session: Session, **kwargs: Any) -> None:
        received.append(session)

    session_completed.connect(receiver, weak=False)
    try:
        session = start()
        session_update(session=session, kwh=Decimal(1))
        assert received == []
        session_stop(session=session)
        with pytest.raises(InvalidParameters):
            session_stop(session=session)
    finally:
        session_completed.disconnect(receiver)
    assert [s.ocpi_id for s in received] == ["S1"]
    assert received[0].status == "COMPLETED"


def test_start_refuses_what_does_not_fit(location: Any) -> None:
    with pytest.raises(UnknownLocation):
        session_start(
            location_id="NOPE", evse_uid="EVSE1", connector_id="1", cdr_token=cdr_token(), auth_method="COMMAND"
        )
    cases: list[dict[str, Any]] = [
        {"evse_uid": "NOPE"},
        {"connector_id": "9"},
        {"auth_method": "MAGIC"},
        {"cdr_token": {"uid": "X"}},
        {"status": "RESERVED"},
    ]
    for case in cases:
        args: dict[str, Any] = {
            "location_id": "LOC1",
            "evse_uid": "EVSE1",
            "connector_id": "1",
            "cdr_token": cdr_token(),
            "auth_method": "COMMAND",
            **case,
        }
        with pytest.raises(InvalidParameters):
            session_start(**args)
    start()
    with pytest.raises(InvalidParameters):
        start()  # the id exists already
    assert Session.objects.count() == 1


# --- a real Celery worker ---


@pytest.fixture
def server() -> Iterator[PartnerServer]:
    partner_server = PartnerServer(rule=lambda request: Answer() if "/sessions/" in request.path else None).start()
    yield partner_server
    partner_server.stop()


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("redis_broker")
def test_worker_delivers_start_update_stop_to_the_token_owner(server: PartnerServer, settings: Any) -> None:
    settings.OCPI_PUSH_ORDER_DELAY_SECONDS = 0.2
    own_charging_location()
    emsp("a", ("DE", "PRT"), server.endpoint("a").replace("/locations", "/sessions"))
    emsp("b", ("FR", "BBB"), server.endpoint("b").replace("/locations", "/sessions"))
    Delivery.objects.all().delete()

    def sessions(requests: list[Received]) -> list[Received]:
        return [r for r in requests if "/sessions/" in r.path]

    with push_worker():
        session = start()
        wait_until(lambda: len(sessions(server.requests())) >= 1, "PUT delivered")
        session = session_update(session=session, kwh=Decimal("7.5"))
        wait_until(lambda: len(sessions(server.requests())) >= 2, "PATCH delivered")
        session_stop(session=session)
        wait_until(lambda: len(sessions(server.requests())) >= 3, "stop delivered")
    got = sessions(server.requests())
    assert [(r.method, r.path.split("/sessions/", 1)[1]) for r in got] == [
        ("PUT", "NL/OWN/S1"),
        ("PATCH", "NL/OWN/S1"),
        ("PATCH", "NL/OWN/S1"),
    ]
    assert all("/a/" in r.path or r.path.startswith("/a") for r in got), [r.path for r in got]
    assert got[0].body["cdr_token"]["party_id"] == "PRT"
    assert got[0].body["status"] == "ACTIVE"
    assert got[1].body["kwh"] == 7.5
    assert set(got[1].body) == {"kwh", "last_updated"}
    assert got[2].body["status"] == "COMPLETED"
    assert "end_date_time" in got[2].body
    assert got[0].headers.get("OCPI-to-party-id") == "PRT"


def test_push_is_addressed_to_the_token_owner_among_the_partners_emsp_parties(
    location: Any, httpserver: HTTPServer
) -> None:
    """A partner platform hosting several eMSP parties: the session (and its CDR) go to the one owning the token,
    and OCPI-to-* name that party, not the partner's first eMSP party (REFERENCE §2.10: to = receiving party)."""
    httpserver.expect_request(re.compile(".*")).respond_with_response(
        Response(envelope_body(), 200, mimetype="application/json")
    )
    partner, _ = make_partner(name="multi", roles=(("DE", "AAA", Role.EMSP), ("DE", "PRT", Role.EMSP)))
    for module in ("sessions", "cdrs"):
        PartnerEndpoint.objects.create(
            partner=partner, identifier=module, role="RECEIVER", url=httpserver.url_for(f"/ocpi/2.2.1/{module}")
        )
    Delivery.objects.all().delete()  # the location's own pushes

    session = start(party=("DE", "PRT"))
    session_update(session=session, kwh=Decimal("2"))
    session_stop(session=session)
    for delivery in Delivery.objects.filter(status=Delivery.Status.PENDING).order_by("pk"):
        outbox_deliver(delivery_id=delivery.pk)

    sent = [(request.method, request.path.rsplit("/", 1)[-1]) for request, _ in httpserver.log]
    assert sent == [("PUT", "S1"), ("POST", "cdrs")]  # the PATCHes merged into the undelivered PUT
    for request, _ in httpserver.log:
        routing = {name.lower(): value for name, value in request.headers.items() if name.lower().startswith("ocpi-")}
        assert routing == {
            "ocpi-from-country-code": "NL",
            "ocpi-from-party-id": "OWN",
            "ocpi-to-country-code": "DE",
            "ocpi-to-party-id": "PRT",
        }
