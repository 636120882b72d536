"""Tariffs services: own tariffs write outbox rows (PUT for new and changed, DELETE for removed) for exactly the
partners with a tariffs RECEIVER endpoint, deliveries carry the tariff as it is now, an own tariff is not deleted
while one of our connectors lists it, and pull sync stores partners' tariffs and (full sync) deletes vanished ones."""

import json
from decimal import Decimal
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from conftest import envelope_body, make_partner
from ocpi_core.constants import Role
from ocpi_core.exceptions import InvalidParameters, NotFound
from ocpi_core.models import Delivery, Partner, PartnerEndpoint, SyncRun
from ocpi_core.push import outbox_deliver, push_module
from ocpi_core.sync import sync_run
from tariffs.models import Tariff
from tariffs.services import Key, tariff_delete, tariff_get, tariff_put, tariff_save_own
from tariffs.tests.factories import own_connector, own_tariff, tariff_data

STAMP2 = "2024-02-01T00:00:00Z"


def with_endpoint(partner: Partner, identifier: str, role: str, url: str) -> Partner:
    PartnerEndpoint.objects.create(partner=partner, identifier=identifier, role=role, url=url)
    return partner


@pytest.fixture
def receivers(own_parties: Any) -> tuple[Partner, Partner]:
    """An eMSP partner with a tariffs RECEIVER endpoint, and one with only a locations RECEIVER."""
    with_tariffs, _ = make_partner(name="with-tariffs", roles=(("DE", "EMS", Role.EMSP),))
    without, _ = make_partner(name="without", roles=(("FR", "EMS", Role.EMSP),))
    with_endpoint(with_tariffs, "tariffs", "RECEIVER", "http://127.0.0.1:9/ocpi/2.2.1/tariffs")
    with_endpoint(without, "locations", "RECEIVER", "http://127.0.0.1:9/ocpi/2.2.1/locations")
    with_endpoint(without, "tariffs", "SENDER", "http://127.0.0.1:9/ocpi/2.2.1/tariffs")
    return with_tariffs, without


def deliveries() -> list[tuple[str, str, str, str, str, str]]:
    return list(
        Delivery.objects.order_by("pk").values_list(
            "partner__name", "method", "country_code", "party_id", "object_path", "status"
        )
    )


# --- the outbox ------------------------------------------------------------------------------------------------------


def test_own_tariff_create_change_delete_queue_put_put_delete_for_receivers_only(receivers):
    own_tariff("T1")
    assert deliveries() == [("with-tariffs", "PUT", "NL", "OWN", "T1", "PENDING")]

    own_tariff("T1", last_updated=STAMP2, currency="CHF")
    assert deliveries() == [
        ("with-tariffs", "PUT", "NL", "OWN", "T1", "SUPERSEDED"),  # a newer change replaces the undelivered one
        ("with-tariffs", "PUT", "NL", "OWN", "T1", "PENDING"),
    ]

    tariff_delete(partner=None, key=Key("nl", "own", "t1"))
    assert deliveries()[-1] == ("with-tariffs", "DELETE", "NL", "OWN", "T1", "PENDING")
    assert [d[5] for d in deliveries()] == ["SUPERSEDED", "SUPERSEDED", "PENDING"]
    assert not Tariff.objects.exists()


def test_partners_without_a_tariffs_receiver_get_nothing(own_parties):
    make_partner(name="without", roles=(("FR", "EMS", Role.EMSP),))

    own_tariff("T1")
    tariff_delete(partner=None, key=Key("NL", "OWN", "T1"))

    assert deliveries() == []


def test_push_disabled_or_unregistered_partners_get_nothing(receivers):
    with_tariffs, _ = receivers
    Partner.objects.filter(pk=with_tariffs.pk).update(push_enabled=False)

    own_tariff("T1")

    assert deliveries() == []


def test_an_ignored_older_write_queues_nothing(receivers):
    own_tariff("T1", last_updated=STAMP2)
    Delivery.objects.all().delete()

    result = tariff_put(partner=None, key=Key("NL", "OWN", "T1"), data=tariff_data("T1", currency="CHF"))

    assert result.ignored
    assert Tariff.objects.get().currency == "EUR"
    assert deliveries() == []


def test_a_rejected_own_write_changes_nothing_and_queues_nothing(receivers):
    own_tariff("T1")
    before = list(Tariff.objects.values_list("doc", "last_updated"))
    Delivery.objects.all().delete()

    with pytest.raises(InvalidParameters, match="currency: must be an ISO 4217"):
        tariff_put(
            partner=None, key=Key("NL", "OWN", "T1"), data=tariff_data("T1", currency="eur", last_updated=STAMP2)
        )

    assert list(Tariff.objects.values_list("doc", "last_updated")) == before
    assert deliveries() == []


def test_own_tariffs_only_under_our_own_cpo_parties(receivers):
    with pytest.raises(InvalidParameters, match=r"NL\*OWE is not one of our CPO parties"):  # ours, but the eMSP
        tariff_put(partner=None, key=Key("NL", "OWE", "T1"), data=tariff_data("T1", party_id="OWE"))
    assert not Tariff.objects.exists()
    assert deliveries() == []


def test_python_callers_may_give_decimals_and_they_stay_exact(receivers):
    data = tariff_data("T1", max_price={"excl_vat": Decimal("60.00"), "incl_vat": Decimal("72.60")})
    data["elements"][0]["price_components"][0]["price"] = Decimal("0.3500")

    tariff_put(partner=None, key=Key("NL", "OWN", "T1"), data=data)

    tariff = Tariff.objects.get()
    assert str(tariff.elements[0]["price_components"][0]["price"]) == "0.3500"
    assert tariff.max_price is not None
    assert str(tariff.max_price["incl_vat"]) == "72.60"
    assert '"price":0.3500' in tariff.doc


def test_tariff_save_own_stamps_now_and_is_never_ignored(receivers):
    own_tariff("T1", last_updated="2999-01-01T00:00:00Z")  # a clock far ahead wrote it

    result = tariff_save_own(key=Key("NL", "OWN", "T1"), data=tariff_data("T1", currency="CHF"))

    assert not result.ignored
    assert Tariff.objects.get().currency == "CHF"
    assert deliveries()[-1][1:2] == ("PUT",)


# --- deleting an own tariff that connectors still use (REFERENCE §9.1) ----------------------------------------------


def test_delete_is_refused_while_one_of_our_connectors_lists_the_tariff(receivers):
    own_tariff("T1")
    connector = own_connector("OTHER", "t1")
    Delivery.objects.all().delete()

    with pytest.raises(InvalidParameters, match=r"T1 is still used by 1 connector\(s\) \(LOC0/EVSE0/1\)"):
        tariff_delete(partner=None, key=Key("NL", "OWN", "T1"))

    assert Tariff.objects.filter(ocpi_id="T1").exists()
    assert deliveries() == []

    connector.tariff_ids = ["OTHER"]
    connector.save()
    tariff_delete(partner=None, key=Key("NL", "OWN", "T1"))
    assert not Tariff.objects.exists()
    assert [d[1] for d in deliveries()] == ["DELETE"]


def test_connectors_of_removed_evses_other_parties_or_partners_do_not_block(receivers):
    from ocpi_core.models import Party

    Party.objects.create(country_code="BE", party_id="TWO", role=Role.CPO, name="Second CPO")
    own_tariff("T1")
    own_connector("T1", status="REMOVED")
    own_connector("T1", country_code="BE", party_id="TWO")  # another of our parties: its own tariff T1
    partner_connector = own_connector("T1")
    location = partner_connector.evse.location
    location.partner = receivers[0]
    location.save()

    tariff_delete(partner=None, key=Key("NL", "OWN", "T1"))

    assert not Tariff.objects.exists()


def test_a_similar_id_does_not_block(receivers):
    own_tariff("T1")
    own_connector("T10", "XT1")

    tariff_delete(partner=None, key=Key("NL", "OWN", "T1"))

    assert not Tariff.objects.exists()


def test_delete_of_an_unknown_tariff_is_not_found(receivers):
    with pytest.raises(NotFound):
        tariff_delete(partner=None, key=Key("NL", "OWN", "NOPE"))
    assert deliveries() == []


# --- delivering: the tariff as it is now -----------------------------------------------------------------------------


@pytest.fixture
def partner_server(httpserver: HTTPServer, own_parties: Any) -> tuple[Partner, list[dict[str, Any]]]:
    """A registered eMSP partner whose tariffs receiver is a local HTTP server recording what it receives."""
    received: list[dict[str, Any]] = []

    def handle(request: Request) -> Response:
        received.append({"method": request.method, "path": request.path, "body": request.get_data()})
        return Response(envelope_body(), mimetype="application/json")

    httpserver.expect_request("/ocpi/2.2.1/tariffs/NL/OWN/T1").respond_with_handler(handle)
    partner, _ = make_partner(name="emsp", roles=(("DE", "EMS", Role.EMSP),), base_url=httpserver.url_for("/ocpi"))
    with_endpoint(partner, "tariffs", "RECEIVER", httpserver.url_for("/ocpi/2.2.1/tariffs"))
    return partner, received


def test_put_then_delete_reach_the_partner_with_the_current_tariff(partner_server):
    _, received = partner_server
    own_tariff("T1")
    first = Delivery.objects.get()
    own_tariff("T1", last_updated=STAMP2, min_price={"excl_vat": 0.1234})  # changed before the first was sent

    assert outbox_deliver(delivery_id=first.pk).status == "NOOP"  # superseded: never sent
    latest = Delivery.objects.get(status=Delivery.Status.PENDING)
    assert outbox_deliver(delivery_id=latest.pk).status == Delivery.Status.DELIVERED

    assert [r["method"] for r in received] == ["PUT"]
    body = json.loads(received[0]["body"], parse_float=Decimal)
    assert body == json.loads(tariff_get(partner=None, key=Key("NL", "OWN", "T1")), parse_float=Decimal)
    assert body["min_price"] == {"excl_vat": Decimal("0.1234")}
    assert body["last_updated"] == STAMP2

    tariff_delete(partner=None, key=Key("NL", "OWN", "T1"))
    delete = Delivery.objects.get(method=Delivery.Method.DELETE)
    assert outbox_deliver(delivery_id=delete.pk).status == Delivery.Status.DELIVERED
    assert received[-1]["method"] == "DELETE"
    assert received[-1]["body"] == b""


def test_push_renderer_gives_the_current_tariff_or_none_when_gone(own_parties):
    render = push_module("tariffs").render
    own_tariff("T1")
    kwargs = {"country_code": "NL", "party_id": "OWN", "object_path": "T1", "method": "PUT", "fields": []}

    assert render(**kwargs) == tariff_data("T1")
    tariff_delete(partner=None, key=Key("NL", "OWN", "T1"))
    assert render(**kwargs) is None


def test_push_renderer_never_sends_a_partners_tariff(own_parties):
    cpo, _ = make_partner(name="cpo", roles=(("DE", "CPO", Role.CPO),))
    tariff_put(partner=cpo, key=Key("DE", "CPO", "T1"), data=tariff_data("T1", country_code="DE", party_id="CPO"))

    render = push_module("tariffs").render
    assert render(country_code="DE", party_id="CPO", object_path="T1", method="PUT", fields=[]) is None


# --- pull sync from a partner's Sender -------------------------------------------------------------------------------


def _cpo_server(httpserver: HTTPServer, tariffs: list[dict[str, Any]], page_size: int = 2) -> None:
    """A partner CPO's tariffs Sender: pages of `page_size` linked by `Link`."""

    def handle(request: Request) -> Response:
        offset = int(request.args.get("offset", 0))
        page = tariffs[offset : offset + page_size]
        headers = {"X-Total-Count": str(len(tariffs)), "X-Limit": str(page_size)}
        if offset + page_size < len(tariffs):
            url = httpserver.url_for("/ocpi/2.2.1/tariffs")
            headers["Link"] = f'<{url}?offset={offset + page_size}&limit={page_size}>; rel="next"'
        return Response(envelope_body(page), headers=headers, mimetype="application/json")

    httpserver.expect_request("/ocpi/2.2.1/tariffs").respond_with_handler(handle)


def test_pull_stores_partner_tariffs_and_a_full_sync_deletes_vanished_ones(httpserver, own_parties):
    cpo, _ = make_partner(name="cpo", roles=(("DE", "CPO", Role.CPO),), base_url=httpserver.url_for("/ocpi"))
    with_endpoint(cpo, "tariffs", "SENDER", httpserver.url_for("/ocpi/2.2.1/tariffs"))
    listed = [tariff_data(f"P{n}", country_code="DE", party_id="CPO") for n in range(5)]
    listed[3]["currency"] = "euro"  # one bad object does not stop the others
    other, _ = make_partner(name="other", roles=(("FR", "OTH", Role.CPO),))
    tariff_put(partner=other, key=Key("FR", "OTH", "X"), data=tariff_data("X", country_code="FR", party_id="OTH"))
    own_tariff("T1")
    _cpo_server(httpserver, listed)

    run = sync_run(partner=cpo, module="tariffs")

    assert (run.status, run.pages, run.received, run.errors) == (SyncRun.Status.SUCCEEDED, 3, 4, 1)
    assert "currency" in run.message
    assert sorted(Tariff.objects.filter(partner=cpo).values_list("ocpi_id", flat=True)) == ["P0", "P1", "P2", "P4"]
    assert json.loads(tariff_get(partner=cpo, key=Key("DE", "CPO", "P0"))) == listed[0]

    httpserver.clear()
    _cpo_server(httpserver, [listed[0], listed[2]])
    full = sync_run(partner=cpo, module="tariffs", full=True)

    assert (full.status, full.removed) == (SyncRun.Status.SUCCEEDED, 2)
    assert sorted(Tariff.objects.filter(partner=cpo).values_list("ocpi_id", flat=True)) == ["P0", "P2"]
    assert Tariff.objects.filter(partner=other).count() == 1  # other partners' and our own are untouched
    assert Tariff.objects.filter(partner__isnull=True).count() == 1
