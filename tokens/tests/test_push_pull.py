"""Own tokens reach CPO partners through the outbox (PUT new/replaced, PATCH valid/whitelist, `?type=` in the URL),
delivered by a real Celery worker once; partners' token lists are pulled (full sync invalidates what is no longer
listed)."""

import json
import time
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from config.celery_app import app
from conftest import envelope_body, make_partner
from ocpi_core.constants import Role
from ocpi_core.models import Delivery, Partner, PartnerEndpoint, SyncRun
from ocpi_core.push import outbox_deliver, push_module
from ocpi_core.sync import sync_run
from ocpi_core.tests.test_tasks import redis_broker  # noqa: F401  (a fixture)
from tokens.models import Token
from tokens.services import Key, token_change_own, token_expire_own, token_get, token_save_own
from tokens.tests.factories import own_token, partner_token, token_data

CPO_PATH = "/ocpi/2.2.1/tokens"


@pytest.fixture
def cpo_server(httpserver: HTTPServer, own_parties: Any) -> tuple[Partner, list[dict[str, Any]]]:
    """A registered CPO partner whose tokens Receiver is a local HTTP server recording what it receives."""
    received: list[dict[str, Any]] = []

    def handle(request: Request) -> Response:
        received.append(
            {"method": request.method, "path": request.path, "args": dict(request.args), "body": request.get_data()}
        )
        return Response(envelope_body(), mimetype="application/json")

    httpserver.expect_request(f"{CPO_PATH}/NL/OWE/CARD1").respond_with_handler(handle)
    partner, _ = make_partner(name="cpo", roles=(("DE", "CPX", Role.CPO),), base_url=httpserver.url_for("/ocpi"))
    PartnerEndpoint.objects.create(
        partner=partner, identifier="tokens", role="RECEIVER", url=httpserver.url_for(CPO_PATH)
    )
    return partner, received


def rows() -> list[tuple[str, str, str, list[str]]]:
    return list(Delivery.objects.order_by("pk").values_list("partner__name", "method", "object_path", "fields"))


def test_own_token_changes_queue_put_and_patch_for_cpo_receivers_only(cpo_server):
    make_partner(name="emsp-only", roles=(("FR", "EMS", Role.EMSP),))  # no tokens receiver: nothing
    token = own_token("CARD1")
    app_token = own_token("CARD1", type="APP_USER", whitelist="NEVER")

    token_change_own(token=token, changes={"valid": False})
    token_change_own(token=app_token, changes={"whitelist": "ALLOWED"})

    assert [(name, method, path) for name, method, path, _ in rows()] == [
        ("cpo", "PUT", "CARD1?type=RFID"),
        ("cpo", "PUT", "CARD1?type=APP_USER"),
        ("cpo", "PUT", "CARD1?type=RFID"),  # merged into the undelivered PUT: the whole token is sent
        ("cpo", "PUT", "CARD1?type=APP_USER"),
    ]
    assert Delivery.objects.filter(status=Delivery.Status.PENDING).count() == 2


def test_deliveries_carry_the_token_as_it_is_now(cpo_server):
    _, received = cpo_server
    token = own_token("CARD1")
    assert outbox_deliver(delivery_id=Delivery.objects.get().pk).status == Delivery.Status.DELIVERED

    token_change_own(token=token, changes={"valid": False})
    patch = Delivery.objects.get(status=Delivery.Status.PENDING)
    assert (patch.method, patch.fields) == ("PATCH", ["valid"])
    assert outbox_deliver(delivery_id=patch.pk).status == Delivery.Status.DELIVERED

    put, patched = received
    assert (put["method"], put["path"], put["args"]) == ("PUT", f"{CPO_PATH}/NL/OWE/CARD1", {"type": "RFID"})
    assert json.loads(put["body"]) == token_data("CARD1")
    current = json.loads(token_get(partner=None, key=Key("NL", "OWE", "CARD1")))
    assert patched["method"] == "PATCH"
    assert json.loads(patched["body"]) == {"valid": False, "last_updated": current["last_updated"]}


def test_expire_pushes_valid_false_and_authorizations_answer_expired(cpo_server):
    token = own_token("CARD1")
    Delivery.objects.all().delete()

    token_expire_own(token=token)

    assert rows() == [("cpo", "PATCH", "CARD1?type=RFID", ["valid"])]
    assert Token.objects.get().valid is False


def test_save_own_refuses_foreign_parties_and_changes_nothing(cpo_server):
    from ocpi_core.exceptions import InvalidParameters

    with pytest.raises(InvalidParameters, match="eMSP parties"):
        token_save_own(key=Key("NL", "OWN", "X1"), data=token_data("X1", party_id="OWN"))  # our CPO party
    with pytest.raises(InvalidParameters, match="whitelist"):
        token_save_own(key=Key("NL", "OWE", "X1"), data=token_data("X1", whitelist="SOMETIMES"))
    assert Token.objects.count() == 0
    assert Delivery.objects.count() == 0


def test_push_renderer_never_sends_a_partners_token(cpo_server):
    emsp, _ = make_partner(name="emsp", roles=(("DE", "PRT", Role.EMSP),))
    partner_token(emsp, "THEIRS")

    render = push_module("tokens").render
    assert render(country_code="DE", party_id="PRT", object_path="THEIRS?type=RFID", method="PUT", fields=[]) is None


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_delivers_an_issued_token(cpo_server, redis_broker):  # noqa: F811
    _, received = cpo_server

    with start_worker(app, pool="solo", queues=["push"], perform_ping_check=False, shutdown_timeout=30):
        token_save_own(key=Key("NL", "OWE", "CARD1"), data=token_data("CARD1"))
        deadline = time.monotonic() + 30
        while not Delivery.objects.filter(status=Delivery.Status.DELIVERED).exists():
            assert time.monotonic() < deadline, list(Delivery.objects.values_list("status", "last_error"))
            time.sleep(0.05)

    assert [r["method"] for r in received] == ["PUT"]
    assert json.loads(received[0]["body"]) == json.loads(token_get(partner=None, key=Key("NL", "OWE", "CARD1")))


# --- pull sync from an eMSP partner's Sender -------------------------------------------------------------------------


def _emsp_server(httpserver: HTTPServer, tokens: list[dict[str, Any]], page_size: int = 2) -> None:
    def handle(request: Request) -> Response:
        offset = int(request.args.get("offset", 0))
        page = tokens[offset : offset + page_size]
        headers = {"X-Total-Count": str(len(tokens)), "X-Limit": str(page_size)}
        if offset + page_size < len(tokens):
            url = httpserver.url_for("/ocpi/2.2.1/tokens")
            headers["Link"] = f'<{url}?offset={offset + page_size}&limit={page_size}>; rel="next"'
        return Response(envelope_body(page), headers=headers, mimetype="application/json")

    httpserver.expect_request("/ocpi/2.2.1/tokens").respond_with_handler(handle)


def test_pull_stores_tokens_and_a_full_sync_invalidates_vanished_ones(httpserver, own_parties):
    emsp, _ = make_partner(name="emsp", roles=(("DE", "PRT", Role.EMSP),), base_url=httpserver.url_for("/ocpi"))
    PartnerEndpoint.objects.create(
        partner=emsp, identifier="tokens", role="SENDER", url=httpserver.url_for("/ocpi/2.2.1/tokens")
    )
    listed = [token_data(f"P{n}", country_code="DE", party_id="PRT") for n in range(4)]
    listed.append(token_data("P1", country_code="DE", party_id="PRT", type="APP_USER"))  # same uid, other type
    listed[2]["whitelist"] = "SOMETIMES"  # one bad object does not stop the others
    own_token("MINE")
    _emsp_server(httpserver, listed)

    run = sync_run(partner=emsp, module="tokens")

    assert (run.status, run.pages, run.received, run.errors) == (SyncRun.Status.SUCCEEDED, 3, 4, 1)
    assert "whitelist" in run.message
    stored = sorted(Token.objects.filter(partner=emsp).values_list("uid", "type"))
    assert stored == [("P0", "RFID"), ("P1", "APP_USER"), ("P1", "RFID"), ("P3", "RFID")]
    assert json.loads(token_get(partner=emsp, key=Key("DE", "PRT", "P0"))) == listed[0]

    httpserver.clear()
    _emsp_server(httpserver, [listed[0], listed[4]])
    full = sync_run(partner=emsp, module="tokens", full=True)

    assert (full.status, full.removed) == (SyncRun.Status.SUCCEEDED, 2)
    valid = dict(
        ((uid, kind), ok) for uid, kind, ok in Token.objects.filter(partner=emsp).values_list("uid", "type", "valid")
    )
    assert valid == {("P0", "RFID"): True, ("P1", "APP_USER"): True, ("P1", "RFID"): False, ("P3", "RFID"): False}
    assert json.loads(token_get(partner=emsp, key=Key("DE", "PRT", "P3")))["valid"] is False  # the cache agrees
    assert Token.objects.get(partner__isnull=True).valid is True  # our own are untouched
