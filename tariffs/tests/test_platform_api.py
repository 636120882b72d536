"""Platform API for our own tariffs (/api/tariffs/): JWT staff only; writes go through the tariffs services, so every
change lands in the row, the cached JSON (prices digit for digit) and the push outbox of partners receiving tariffs;
a refused request changes none of them."""

from decimal import Decimal
from typing import Any

import orjson
import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from conftest import make_partner
from ocpi_core.constants import Role
from ocpi_core.envelope import parse_datetime
from ocpi_core.models import Delivery, Partner, PartnerEndpoint, Party
from ocpi_core.validation import validate
from tariffs.models import Tariff
from tariffs.services import Key, tariff_put
from tariffs.tests.factories import own_connector, tariff_data

PASSWORD = "correct horse battery staple"
BASE = "/api/tariffs/"
T1 = f"{BASE}NL/OWN/T1"


def body(tariff_id: str = "T1", **fields: Any) -> dict[str, Any]:
    """A valid own Tariff without last_updated (the platform API stamps it)."""
    data = tariff_data(tariff_id, **fields)
    if "last_updated" not in fields:
        del data["last_updated"]
    return data


@pytest.fixture
def receiver(own_parties: list[Party]) -> Partner:
    """A registered eMSP partner offering the tariffs RECEIVER interface."""
    partner, _ = make_partner(name="receiver")
    PartnerEndpoint.objects.create(
        partner=partner, identifier="tariffs", role="RECEIVER", url="http://127.0.0.1:9/ocpi/2.2.1/tariffs"
    )
    return partner


def send(client: Client, method: str, path: str, data: Any = None) -> Any:
    payload = orjson.dumps(data) if data is not None else None
    return getattr(client, method)(path, data=payload, content_type="application/json")


def stored() -> tuple[Any, ...]:
    return (
        sorted(Tariff.objects.values_list("ocpi_id", "last_updated", "doc")),
        sorted(Delivery.objects.values_list("pk", "status", "method", "object_path")),
    )


def pending(partner: Partner) -> list[tuple[str, str]]:
    return [
        (d.method, d.object_path)
        for d in Delivery.objects.filter(partner=partner, status=Delivery.Status.PENDING).order_by("pk")
    ]


def created(client: Client, data: dict[str, Any] | None = None) -> dict[str, Any]:
    response = send(client, "post", BASE, data or body())
    assert response.status_code == 201, response.content
    return response.json()


ENDPOINTS = [("get", BASE), ("post", BASE), ("get", T1), ("put", T1), ("delete", T1)]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_every_endpoint_needs_a_jwt(client: Client, own_parties: list[Party], method: str, path: str) -> None:
    response = send(client, method, path, body() if method in ("post", "put") else None)
    assert response.status_code == 401
    assert not Tariff.objects.exists()


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_every_endpoint_is_for_staff_only(client: Client, own_parties: list[Party], method: str, path: str) -> None:
    get_user_model().objects.create_user("visitor", password=PASSWORD)
    tokens = client.post("/api/token/", {"username": "visitor", "password": PASSWORD}, content_type="application/json")
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {tokens.json()['access']}"
    response = send(client, method, path, body() if method in ("post", "put") else None)
    assert response.status_code == 403
    assert not Tariff.objects.exists()


def test_create_stores_the_tariff_exactly_and_queues_a_push(staff: Client, receiver: Partner) -> None:
    data = body(max_price={"excl_vat": 10.10, "incl_vat": 12.22})
    data["elements"][0]["price_components"][0]["price"] = 2.50

    before = timezone.now().replace(microsecond=0)
    response = send(staff, "post", BASE, data)

    assert response.status_code == 201, response.content
    assert response["Location"] == T1
    result = response.json()
    validate("Tariff", result)
    assert parse_datetime(result["last_updated"]) >= before  # left out: stamped with the time of the request
    assert b'"price":2.5,' in response.content
    assert b'"max_price":{"excl_vat":10.1,"incl_vat":12.22}' in response.content  # never through a binary float
    row = Tariff.objects.get()
    elements: Any = row.elements  # Decimals from the exact JSON column
    assert (row.partner, row.ocpi_id, elements[0]["price_components"][0]["price"]) == (None, "T1", Decimal("2.5"))
    assert row.doc.encode() == response.content
    assert staff.get(T1).content == response.content
    assert pending(receiver) == [("PUT", "T1")]


def test_create_of_an_existing_id_is_409_and_changes_nothing(staff: Client, receiver: Partner) -> None:
    created(staff)
    before = stored()
    response = send(staff, "post", BASE, body(currency="USD"))
    assert response.status_code == 409
    assert stored() == before


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"currency": "eur"}, "currency: must be an ISO 4217 code"),
        ({"elements": []}, "elements: must contain at least one element"),
        ({"tariff_alt_url": 7}, "tariff_alt_url: must be a string"),
        ({"min_price": {"excl_vat": 5, "incl_vat": 4}}, "min_price.excl_vat: must not be more than incl_vat"),
    ],
)
def test_invalid_body_is_400_naming_the_field_and_stores_nothing(
    staff: Client, receiver: Partner, change: dict[str, Any], message: str
) -> None:
    response = send(staff, "post", BASE, {**body(), **change})
    assert response.status_code == 400
    assert message in response.json()["detail"]
    assert not Tariff.objects.exists()
    assert not Delivery.objects.exists()


@pytest.mark.parametrize("party_id", ["PRT", "OWE", "ZZZ"])  # a partner's party, our own eMSP party, nobody's
def test_create_under_a_party_that_is_not_our_own_cpo_is_400(staff: Client, receiver: Partner, party_id: str) -> None:
    response = send(staff, "post", BASE, body(party_id=party_id))
    assert response.status_code == 400
    assert f"NL*{party_id} is not one of our CPO parties" in response.json()["detail"]
    assert not Tariff.objects.exists()
    assert not Delivery.objects.exists()


def test_put_creates_then_replaces(staff: Client, receiver: Partner) -> None:
    first = send(staff, "put", T1, body())
    assert first.status_code == 201
    Delivery.objects.update(status=Delivery.Status.DELIVERED)

    response = send(staff, "put", T1, body(type="AD_HOC_PAYMENT"))

    assert response.status_code == 200
    assert response.json()["type"] == "AD_HOC_PAYMENT"
    assert Tariff.objects.get().type == "AD_HOC_PAYMENT"
    assert pending(receiver) == [("PUT", "T1")]


def test_put_older_than_stored_or_with_another_id_changes_nothing(staff: Client, receiver: Partner) -> None:
    created(staff)
    before = stored()

    older = send(staff, "put", T1, body(type="AD_HOC_PAYMENT", last_updated="2020-01-01T00:00:00Z"))
    other = send(staff, "put", T1, body("T2"))

    assert older.status_code == 409
    assert (other.status_code, other.json()["detail"].split(":")[0]) == (400, "id")
    assert stored() == before


def test_get_of_an_unknown_or_partners_tariff_is_404(staff: Client) -> None:
    partner, _ = make_partner(name="cpo", roles=(("DE", "PRT", Role.CPO),))
    tariff_put(partner=partner, key=Key("DE", "PRT", "T1"), data=tariff_data("T1", country_code="DE", party_id="PRT"))
    assert staff.get(T1).status_code == 404
    assert staff.get(f"{BASE}DE/PRT/T1").status_code == 404
    assert send(staff, "delete", f"{BASE}DE/PRT/T1").status_code == 404
    assert Tariff.objects.count() == 1


def test_delete_removes_the_tariff_and_pushes_a_delete(staff: Client, receiver: Partner) -> None:
    created(staff)
    Delivery.objects.update(status=Delivery.Status.DELIVERED)

    response = send(staff, "delete", T1)

    assert response.status_code == 204
    assert not Tariff.objects.exists()
    assert pending(receiver) == [("DELETE", "T1")]
    assert send(staff, "delete", T1).status_code == 404


def test_delete_of_a_tariff_a_connector_uses_is_400_and_changes_nothing(staff: Client, receiver: Partner) -> None:
    created(staff)
    own_connector("T1")
    before = stored()

    response = send(staff, "delete", T1)

    assert response.status_code == 400
    assert "still used by 1 connector" in response.json()["detail"]
    assert stored() == before


def test_list_pages_and_filters_own_tariffs_only(staff: Client, own_parties: list[Party]) -> None:
    Party.objects.create(country_code="NL", party_id="TWO", role=Role.CPO, name="Second CPO")
    for tariff_id in ("T1", "T2"):
        created(staff, body(tariff_id))
    created(staff, body("T3", party_id="TWO"))
    partner, _ = make_partner(name="cpo", roles=(("DE", "PRT", Role.CPO),))
    tariff_put(partner=partner, key=Key("DE", "PRT", "T9"), data=tariff_data("T9", country_code="DE", party_id="PRT"))

    everything = staff.get(BASE).json()
    assert (everything["count"], [t["id"] for t in everything["results"]]) == (3, ["T1", "T2", "T3"])
    assert [t["id"] for t in staff.get(BASE, {"party": "NL*TWO"}).json()["results"]] == ["T3"]
    page = staff.get(BASE, {"limit": 2}).json()
    assert (len(page["results"]), page["previous"]) == (2, None)
    assert [t["id"] for t in staff.get(page["next"]).json()["results"]] == ["T3"]
