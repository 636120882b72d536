"""eMSP Receiver /ocpi/2.2.1/emsp/tariffs/{country_code}/{party_id}/{tariff_id} through real HTTP (REFERENCE §9.2):
PUT creates and replaces, GET returns what was stored, DELETE removes; every error path answers an envelope and
leaves what is stored as it was."""

from decimal import Decimal
from typing import Any

import pytest

from conftest import make_partner
from ocpi_core.constants import Role
from ocpi_core.models import Delivery
from tariffs.models import Tariff
from tariffs.tests.factories import example, example_names, own_tariff, tariff_data

URL = "/ocpi/2.2.1/emsp/tariffs"
STAMP2 = "2024-03-01T00:00:00Z"


@pytest.fixture
def cpo(own_parties: Any) -> tuple[Any, str]:
    """A registered CPO partner owning DE*ALL (the party of the official examples) and NL*TNM."""
    return make_partner(name="cpo", roles=(("DE", "ALL", Role.CPO), ("NL", "TNM", Role.CPO)))


def stored() -> list[tuple[Any, ...]]:
    """Everything stored about tariffs, to prove a rejected request changed nothing."""
    return sorted(
        Tariff.objects.values_list("partner_id", "country_code", "party_id", "ocpi_id", "last_updated", "doc")
    )


def assert_envelope(response: Any, http_status: int, status_code: int, *words: str) -> None:
    body = response.json()
    assert (response.status_code, body["status_code"]) == (http_status, status_code), response.text
    assert "timestamp" in body
    for word in words:
        assert word in body.get("status_message", ""), body


# --- PUT, GET, DELETE ------------------------------------------------------------------------------------------------


def test_put_creates_then_get_returns_it(ocpi, cpo):
    _, token = cpo
    data = tariff_data("T1", country_code="DE", party_id="ALL", type="REGULAR")

    put = ocpi(token).put(f"{URL}/DE/ALL/T1", json=data)
    got = ocpi(token).get(f"{URL}/DE/ALL/T1")

    assert_envelope(put, 201, 1000)
    assert "data" not in put.json()
    assert_envelope(got, 200, 1000)
    assert got.json()["data"] == data
    tariff = Tariff.objects.get()
    assert (tariff.partner_id, tariff.currency, tariff.type) == (cpo[0].pk, "EUR", "REGULAR")


def test_put_replaces_and_fields_left_out_are_gone(ocpi, cpo):
    _, token = cpo
    first = tariff_data("T1", country_code="DE", party_id="ALL", tariff_alt_url="https://cpo.example.com/t1")
    second = tariff_data("T1", country_code="DE", party_id="ALL", last_updated="2024-02-01T00:00:00Z")
    second["elements"] = [{"price_components": [{"type": "TIME", "price": 2.0, "step_size": 60}]}]
    ocpi(token).put(f"{URL}/DE/ALL/T1", json=first)

    put = ocpi(token).put(f"{URL}/DE/ALL/T1", json=second)
    got = ocpi(token).get(f"{URL}/DE/ALL/T1").json()["data"]

    assert_envelope(put, 200, 1000)
    assert got == second
    assert "tariff_alt_url" not in got
    assert Tariff.objects.count() == 1


def test_ids_are_case_insensitive_and_keep_the_stored_spelling(ocpi, cpo):
    _, token = cpo
    ocpi(token).put(f"{URL}/DE/ALL/abc", json=tariff_data("abc", country_code="DE", party_id="ALL"))

    again = ocpi(token).put(
        f"{URL}/de/all/ABC", json=tariff_data("ABC", country_code="de", party_id="all", last_updated=STAMP2)
    )
    got = ocpi(token).get(f"{URL}/DE/ALL/Abc")

    assert_envelope(again, 200, 1000)
    assert got.json()["data"]["id"] == "ABC"
    assert Tariff.objects.count() == 1


def test_older_last_updated_is_acknowledged_and_ignored(ocpi, cpo):
    _, token = cpo
    newer = tariff_data("T1", country_code="DE", party_id="ALL", last_updated=STAMP2)
    older = tariff_data("T1", country_code="DE", party_id="ALL", currency="CHF")
    ocpi(token).put(f"{URL}/DE/ALL/T1", json=newer)
    before = stored()

    put = ocpi(token).put(f"{URL}/DE/ALL/T1", json=older)

    assert_envelope(put, 200, 1000)
    assert stored() == before
    assert ocpi(token).get(f"{URL}/DE/ALL/T1").json()["data"] == newer


def test_delete_removes_then_get_and_delete_are_404(ocpi, cpo):
    _, token = cpo
    ocpi(token).put(f"{URL}/DE/ALL/T1", json=tariff_data("T1", country_code="DE", party_id="ALL"))
    ocpi(token).put(f"{URL}/DE/ALL/T2", json=tariff_data("T2", country_code="DE", party_id="ALL"))

    deleted = ocpi(token).delete(f"{URL}/DE/ALL/t1")

    assert_envelope(deleted, 200, 1000)
    assert list(Tariff.objects.values_list("ocpi_id", flat=True)) == ["T2"]
    assert_envelope(ocpi(token).get(f"{URL}/DE/ALL/T1"), 404, 2000, "T1")
    assert_envelope(ocpi(token).delete(f"{URL}/DE/ALL/T1"), 404, 2000, "T1")
    assert list(Tariff.objects.values_list("ocpi_id", flat=True)) == ["T2"]


def test_receiving_a_partners_tariff_pushes_nothing(ocpi, cpo):
    _, token = cpo
    make_partner(name="emsp", roles=(("FR", "EMS", Role.EMSP),))  # would receive our own tariffs

    ocpi(token).put(f"{URL}/DE/ALL/T1", json=tariff_data("T1", country_code="DE", party_id="ALL"))
    ocpi(token).delete(f"{URL}/DE/ALL/T1")

    assert not Delivery.objects.exists()


@pytest.mark.parametrize("method", ["patch", "post"])
def test_patch_and_post_are_405_with_an_envelope(ocpi, cpo, method):
    _, token = cpo
    ocpi(token).put(f"{URL}/DE/ALL/T1", json=tariff_data("T1", country_code="DE", party_id="ALL"))
    before = stored()

    response = getattr(ocpi(token), method)(f"{URL}/DE/ALL/T1", json={"currency": "CHF", "last_updated": STAMP2})

    assert_envelope(response, 405, 2000)
    assert stored() == before


def test_unknown_tariff_get_is_404(ocpi, cpo):
    _, token = cpo
    assert_envelope(ocpi(token).get(f"{URL}/DE/ALL/NOPE"), 404, 2000, "NOPE")


def test_without_token_401_and_nothing_stored(ocpi, cpo):
    response = ocpi().put(f"{URL}/DE/ALL/T1", json=tariff_data("T1", country_code="DE", party_id="ALL"))

    assert_envelope(response, 401, 2000)
    assert response.headers["WWW-Authenticate"] == "Token"
    assert stored() == []


# --- 2001: the body is refused, naming the field ---------------------------------------------------------------------


def _element(*components: dict[str, Any], **restrictions: Any) -> dict[str, Any]:
    element: dict[str, Any] = {"price_components": list(components)}
    if restrictions:
        element["restrictions"] = restrictions
    return element


_FLAT = {"type": "FLAT", "price": 1.0, "step_size": 1}
_ENERGY = {"type": "ENERGY", "price": 0.25, "step_size": 1}

INVALID_BODIES: dict[str, tuple[dict[str, Any], str]] = {
    "body id differs from URL": ({"id": "OTHER"}, "id: 'OTHER' in the body does not match 'T1'"),
    "body country differs": ({"country_code": "NL"}, "country_code:"),
    "body party differs": ({"party_id": "XXX"}, "party_id:"),
    "currency missing": ({"currency": None}, "currency: is required"),
    "currency lower case": ({"currency": "eur"}, "currency: must be an ISO 4217 code"),
    "currency too long": ({"currency": "EURO"}, "currency: must be at most 3 characters"),
    "last_updated missing": ({"last_updated": None}, "last_updated: is required"),
    "last_updated with offset": ({"last_updated": "2024-01-01T00:00:00+01:00"}, "last_updated: must be an OCPI"),
    "no elements": ({"elements": []}, "elements: must contain at least one element"),
    "element without components": ({"elements": [{"price_components": []}]}, "elements[0].price_components: must"),
    "component without price": (
        {"elements": [_element({"type": "ENERGY", "step_size": 1})]},
        "elements[0].price_components[0].price: is required",
    ),
    "price is a string": (
        {"elements": [_element({**_ENERGY, "price": "0.25"})]},
        "elements[0].price_components[0].price: must be a number",
    ),
    "unknown dimension": (
        {"elements": [_element({**_ENERGY, "type": "KWH"})]},
        "elements[0].price_components[0].type: must be one of the TariffDimensionType values",
    ),
    "negative step_size": (
        {"elements": [_element({**_ENERGY, "step_size": -1})]},
        "elements[0].price_components[0].step_size: must not be negative",
    ),
    "reservation element with ENERGY": (
        {"elements": [_element(_ENERGY), _element(_FLAT, _ENERGY, reservation="RESERVATION")]},
        "elements[1].price_components[1].type: a RESERVATION element may only contain FLAT and TIME",
    ),
    "start_time 25:00": (
        {"elements": [_element(_ENERGY, start_time="25:00")]},
        "elements[0].restrictions.start_time: does not match the pattern",
    ),
    "end_time without colon": (
        {"elements": [_element(_ENERGY, end_time="1800")]},
        "elements[0].restrictions.end_time: does not match the pattern",
    ),
    "start_date month 13": (
        {"elements": [_element(_ENERGY, start_date="2024-13-01")]},
        "elements[0].restrictions.start_date: does not match the pattern",
    ),
    "end_date with time": (
        {"elements": [_element(_ENERGY, end_date="2024-01-01T00:00")]},
        "elements[0].restrictions.end_date: must be at most 10 characters",
    ),
    "unknown day": (
        {"elements": [_element(_ENERGY, day_of_week=["MON"])]},
        "elements[0].restrictions.day_of_week[0]: must be one of the DayOfWeek values",
    ),
    "negative min_price": ({"min_price": {"excl_vat": -1.0}}, "min_price.excl_vat: must not be negative"),
    "negative max_price incl": (
        {"max_price": {"excl_vat": 1.0, "incl_vat": -1.0}},
        "max_price.incl_vat: must not be negative",
    ),
    "excl above incl": ({"max_price": {"excl_vat": 11.0, "incl_vat": 10.0}}, "max_price.excl_vat: must not be more"),
    "min above max": (
        {"min_price": {"excl_vat": 20.0}, "max_price": {"excl_vat": 10.0}},
        "min_price.excl_vat: must not be more than max_price.excl_vat",
    ),
    "end before start": (
        {"start_date_time": "2024-02-01T00:00:00Z", "end_date_time": "2024-01-01T00:00:00Z"},
        "end_date_time: must be after start_date_time",
    ),
    "unknown type": ({"type": "CHEAP"}, "type: must be one of the TariffType values"),
    "alt text too long": (
        {"tariff_alt_text": [{"language": "en", "text": "x" * 513}]},
        "tariff_alt_text[0].text: must be at most 512 characters",
    ),
}


@pytest.mark.parametrize("case", list(INVALID_BODIES), ids=list(INVALID_BODIES))
def test_invalid_body_is_2001_naming_the_field_and_nothing_changes(ocpi, cpo, case):
    _, token = cpo
    existing = tariff_data("T1", country_code="DE", party_id="ALL")
    ocpi(token).put(f"{URL}/DE/ALL/T1", json=existing)
    before = stored()
    changes, message = INVALID_BODIES[case]
    body = {**tariff_data("T1", country_code="DE", party_id="ALL", last_updated=STAMP2), **changes}
    body = {name: value for name, value in body.items() if value is not None}

    response = ocpi(token).put(f"{URL}/DE/ALL/T1", json=body)

    assert_envelope(response, 200, 2001, message)
    assert stored() == before
    assert ocpi(token).get(f"{URL}/DE/ALL/T1").json()["data"] == existing


def test_a_body_that_is_not_an_object_is_2001(ocpi, cpo):
    _, token = cpo
    response = ocpi(token).put(f"{URL}/DE/ALL/T1", json=[tariff_data("T1", country_code="DE", party_id="ALL")])

    assert_envelope(response, 200, 2001, "body: must be a JSON object")
    assert stored() == []


# --- ownership: a partner writes only under its own parties ----------------------------------------------------------


def test_put_under_another_partys_ids_is_404_and_nothing_stored(ocpi, cpo):
    _, token = cpo
    response = ocpi(token).put(f"{URL}/FR/XYZ/T1", json=tariff_data("T1", country_code="FR", party_id="XYZ"))

    assert_envelope(response, 404, 2000, "FR/XYZ")
    assert stored() == []


def test_another_partners_tariff_cannot_be_read_replaced_or_deleted(ocpi, cpo):
    _, token = cpo
    _, rival = make_partner(name="rival", roles=(("DE", "ALL", Role.CPO),))  # claims the same party
    ocpi(token).put(f"{URL}/DE/ALL/T1", json=tariff_data("T1", country_code="DE", party_id="ALL"))
    before = stored()

    put = ocpi(rival).put(f"{URL}/DE/ALL/T1", json=tariff_data("T1", country_code="DE", party_id="ALL", currency="CHF"))
    got = ocpi(rival).get(f"{URL}/DE/ALL/T1")
    deleted = ocpi(rival).delete(f"{URL}/DE/ALL/T1")

    for response in (put, got, deleted):
        assert_envelope(response, 404, 2000)
    assert stored() == before


def test_our_own_tariff_is_not_reachable_through_the_receiver(ocpi, own_parties):
    _, token = make_partner(name="claims-ours", roles=(("NL", "OWN", Role.CPO),))
    own_tariff("T1")
    before = stored()

    put = ocpi(token).put(f"{URL}/NL/OWN/T1", json=tariff_data("T1", currency="CHF", last_updated=STAMP2))
    deleted = ocpi(token).delete(f"{URL}/NL/OWN/T1")
    got = ocpi(token).get(f"{URL}/NL/OWN/T1")

    for response in (put, deleted, got):
        assert_envelope(response, 404, 2000)
    assert stored() == before


def test_a_hub_relays_tariffs_of_other_parties(ocpi, own_parties):
    _, token = make_partner(name="hub", roles=(("DE", "HUB", Role.HUB),))

    put = ocpi(token).put(f"{URL}/FR/XYZ/T1", json=tariff_data("T1", country_code="FR", party_id="XYZ"))

    assert_envelope(put, 201, 1000)
    assert ocpi(token).get(f"{URL}/FR/XYZ/T1").json()["data"]["party_id"] == "XYZ"


# --- the official examples -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", example_names(valid=True))
def test_every_valid_example_round_trips_field_by_field(ocpi, cpo, name):
    _, token = cpo
    data = example(name)
    url = f"{URL}/{data['country_code']}/{data['party_id']}/{data['id']}"

    put = ocpi(token).put(url, json=data)
    got = ocpi(token).get(url)

    assert_envelope(put, 201, 1000)
    back = got.json()["data"]
    assert set(back) == set(data)
    for field, value in data.items():
        assert back[field] == value, field  # numbers compare equal: 2.50 == 2.5


def test_the_invalid_put_example_is_2001_naming_the_fields(ocpi, cpo):
    _, token = cpo
    data = example("tariff_put_example.json")

    as_sent = ocpi(token).put(f"{URL}/NL/TNM/12", json=data)  # the spec's URL
    under_body_ids = ocpi(token).put(f"{URL}/DE/ALL/12", json=data)
    dated = ocpi(token).put(f"{URL}/NL/TNM/12", json={**data, "last_updated": STAMP2})

    assert_envelope(as_sent, 200, 2001, "last_updated: is required")
    assert_envelope(under_body_ids, 200, 2001, "last_updated: is required")
    assert_envelope(dated, 200, 2001, "country_code: 'DE' in the body does not match 'NL'")
    assert stored() == []


# --- money stays exact -----------------------------------------------------------------------------------------------


def test_prices_are_stored_and_read_back_as_exact_decimals(ocpi, cpo):
    _, token = cpo
    data = tariff_data(
        "T1",
        country_code="DE",
        party_id="ALL",
        min_price={"excl_vat": 0.1, "incl_vat": 0.121},
        max_price={"excl_vat": 99.99, "incl_vat": 120.9879},
    )
    data["elements"] = [
        _element({"type": "ENERGY", "price": 0.1234, "vat": 19.0, "step_size": 1}),
        _element({"type": "TIME", "price": 1.1, "step_size": 60}, min_kwh=0.3, max_power=22.5),
    ]

    ocpi(token).put(f"{URL}/DE/ALL/T1", json=data)
    got = ocpi(token).get(f"{URL}/DE/ALL/T1")
    tariff = Tariff.objects.get()

    energy, time = tariff.elements[0]["price_components"][0], tariff.elements[1]["price_components"][0]
    assert isinstance(energy["price"], Decimal)
    assert energy["price"] == Decimal("0.1234")
    assert str(energy["price"]) == "0.1234"
    assert energy["vat"] == Decimal("19.0")
    assert time["price"] == Decimal("1.1")  # 1.1 as a binary float is 1.100000000000000088817...
    assert type(energy["step_size"]) is int
    assert tariff.elements[1]["restrictions"] == {"min_kwh": Decimal("0.3"), "max_power": Decimal("22.5")}
    assert tariff.min_price == {"excl_vat": Decimal("0.1"), "incl_vat": Decimal("0.121")}
    assert tariff.max_price == {"excl_vat": Decimal("99.99"), "incl_vat": Decimal("120.9879")}
    assert b'"price":0.1234' in got.content
    assert got.json()["data"] == data
