"""eMSP Receiver /ocpi/2.2.1/emsp/cdrs through real HTTP (REFERENCE §8.2): POST stores a CDR and answers 201 with a
Location header, GET at that URL returns it, a repeated POST is idempotent, a different CDR under a stored id is
refused, CDRs are immutable; every error path answers an envelope and leaves what is stored as it was."""

from decimal import Decimal
from typing import Any

import pytest

from cdrs.models import Cdr
from cdrs.tests.factories import cdr_data, cdr_example
from conftest import make_partner
from ocpi_core.constants import Role
from ocpi_core.models import Party

URL = "/ocpi/2.2.1/emsp/cdrs"


@pytest.fixture
def cpo(own_parties: Any, ocpi_base_url: str) -> tuple[Any, str]:
    """A registered CPO partner owning BE*BEC (the party of the official example); our eMSP DE*TNM owns its token.
    Location headers point at the live server."""
    Party.objects.create(country_code="DE", party_id="TNM", role=Role.EMSP, name="Own eMSP TNM")
    return make_partner(name="cpo", roles=(("BE", "BEC", Role.CPO),))


def stored() -> list[tuple[Any, ...]]:
    """Everything stored about CDRs, to prove a rejected request changed nothing."""
    return sorted(Cdr.objects.values_list("pk", "partner_id", "country_code", "party_id", "ocpi_id", "doc"))


def assert_envelope(response: Any, http_status: int, status_code: int, *words: str) -> None:
    body = response.json()
    assert (response.status_code, body["status_code"]) == (http_status, status_code), response.text
    assert "timestamp" in body
    for word in words:
        assert word in body.get("status_message", ""), body


def test_the_official_example_is_stored_and_returned_at_its_location(ocpi, ocpi_base_url, cpo):
    partner, token = cpo
    example = cdr_example()

    posted = ocpi(token).post(URL, json=example)
    location = posted.headers["Location"]
    got = ocpi(token).get(location)

    assert_envelope(posted, 201, 1000)
    assert "data" not in posted.json()
    assert location.startswith(f"{ocpi_base_url}{URL}/")
    assert_envelope(got, 200, 1000)
    assert got.json()["data"] == example
    cdr = Cdr.objects.get()
    assert (cdr.partner_id, cdr.ocpi_id, cdr.token_uid, cdr.location_id) == (partner.pk, "12345", "012345678", "LOC1")
    assert cdr.data["total_cost"] == {"excl_vat": Decimal("4.00"), "incl_vat": Decimal("4.40")}  # exact, as written
    assert cdr.data["tariffs"][0]["elements"][0]["price_components"][0]["price"] == Decimal("2.00")


def test_posting_the_same_cdr_again_is_acknowledged_at_the_same_location(ocpi, cpo):
    _, token = cpo
    first = ocpi(token).post(URL, json=cdr_example())
    before = stored()

    again = ocpi(token).post(URL, json=cdr_example())

    assert_envelope(again, 200, 1000)
    assert again.headers["Location"] == first.headers["Location"]
    assert stored() == before


def test_a_different_cdr_reusing_a_stored_id_is_refused_and_nothing_changes(ocpi, cpo):
    _, token = cpo
    ocpi(token).post(URL, json=cdr_example())
    before = stored()
    changed = cdr_example()
    changed["total_cost"] = {"excl_vat": 5.00, "incl_vat": 5.50}

    refused = ocpi(token).post(URL, json=changed)
    case_only = ocpi(token).post(URL, json={**changed, "id": "12345", "country_code": "be"})

    assert_envelope(refused, 200, 2001, "id:", "immutable")
    assert_envelope(case_only, 200, 2001, "id:")
    assert stored() == before


def test_another_partner_cannot_reuse_or_read_a_stored_cdr(ocpi, cpo):
    _, token = cpo
    posted = ocpi(token).post(URL, json=cdr_example())
    _, other = make_partner(name="other", roles=(("BE", "XXX", Role.CPO),))

    got = ocpi(other).get(posted.headers["Location"])

    assert_envelope(got, 404, 2000)


def test_a_credit_cdr_is_accepted_and_linked_to_the_original(ocpi, cpo):
    _, token = cpo
    original = cdr_data("CDR1", token=("DE", "TNM"))
    credit = cdr_data(
        "CDR1-CRED",
        token=("DE", "TNM"),
        credit=True,
        credit_reference_id="CDR1",
        total_cost={"excl_vat": -2.8125, "incl_vat": -3.403125},
        total_energy_cost={"excl_vat": -2.8125, "incl_vat": -3.403125},
        last_updated="2024-01-02T00:00:00Z",
    )
    ocpi(token).post(URL, json=original)

    posted = ocpi(token).post(URL, json=credit)

    assert_envelope(posted, 201, 1000)
    stored_credit = Cdr.objects.get(ocpi_id="CDR1-CRED")
    assert stored_credit.credit is True
    assert stored_credit.credit_of == Cdr.objects.get(ocpi_id="CDR1")
    assert stored_credit.data["total_cost"]["excl_vat"] == Decimal("-2.8125")
    assert ocpi(token).get(posted.headers["Location"]).json()["data"] == credit


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"id": "X" * 37}, "id"),
        ({"id": "X" * 40, "credit": True, "credit_reference_id": "CDR0"}, "id"),
        ({"credit": True}, "credit_reference_id"),
        ({"credit_reference_id": "CDR0"}, "credit"),
        ({"currency": "eur"}, "currency"),
        ({"currency": "EURO"}, "currency"),
        ({"auth_method": "RFID"}, "auth_method"),
        ({"start_date_time": "2024-01-01T10:00:00+01:00"}, "start_date_time"),
        ({"end_date_time": "2024-01-01T09:00:00Z"}, "end_date_time"),
        ({"cdr_location": None}, "cdr_location"),
        ({"charging_periods": []}, "charging_periods"),
        ({"total_cost": {"incl_vat": 1}}, "total_cost.excl_vat"),
        ({"total_cost": {"excl_vat": -1, "incl_vat": -1.21}}, "total_cost.excl_vat"),
        ({"total_cost": {"excl_vat": 2, "incl_vat": 1}}, "total_cost.incl_vat"),
        ({"total_energy": "11.25"}, "total_energy"),
        ({"total_time": -1}, "total_time"),
        ({"total_parking_time": 2}, "total_parking_time"),
        ({"remark": "x" * 256}, "remark"),
        ({"session_id": "s" * 37}, "session_id"),
        ({"credit": "yes"}, "credit"),
    ],
)
def test_invalid_cdrs_are_refused_naming_the_field(ocpi, cpo, change, field):
    _, token = cpo
    data = cdr_data(token=("DE", "TNM"))
    data.update(change)

    refused = ocpi(token).post(URL, json=data)

    assert_envelope(refused, 200, 2001, f"{field}:")
    assert stored() == []


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("cdr_token", "uid"), "u" * 37, "cdr_token.uid"),
        (("cdr_token", "type"), "CARD", "cdr_token.type"),
        (("cdr_token", "country_code"), None, "cdr_token.country_code"),
        (("cdr_location", "address"), "a" * 46, "cdr_location.address"),
        (("cdr_location", "state"), "s" * 21, "cdr_location.state"),
        (("cdr_location", "connector_standard"), "TYPE2", "cdr_location.connector_standard"),
        (("cdr_location", "coordinates"), {"latitude": "51.0", "longitude": "3.7"}, "cdr_location.coordinates"),
    ],
)
def test_invalid_nested_fields_are_named_by_their_path(ocpi, cpo, path, value, field):
    _, token = cpo
    data = cdr_data(token=("DE", "TNM"))
    data[path[0]][path[1]] = value

    refused = ocpi(token).post(URL, json=data)

    assert_envelope(refused, 200, 2001, field)
    assert stored() == []


def test_bad_embedded_tariffs_periods_and_signed_data_are_named(ocpi, cpo):
    _, token = cpo
    data = cdr_data(token=("DE", "TNM"))
    data["tariffs"][0]["elements"][0]["price_components"][0]["type"] = "KWH"
    data["charging_periods"][0]["dimensions"][0]["type"] = "KWH"
    data["signed_data"] = {"encoding_method": "OCMF", "signed_values": []}

    refused = ocpi(token).post(URL, json=data)

    assert_envelope(
        refused,
        200,
        2001,
        "tariffs[0].elements[0].price_components[0].type",
        "charging_periods[0].dimensions[0].type",
        "signed_data.signed_values",
    )
    assert stored() == []


def test_a_cdr_of_a_party_the_caller_does_not_own_is_refused(ocpi, cpo):
    _, token = cpo
    refused = ocpi(token).post(URL, json=cdr_data(country_code="FR", party_id="OTH", token=("DE", "TNM")))

    assert_envelope(refused, 200, 2001, "country_code/party_id", "FR*OTH")
    assert stored() == []


def test_a_cdr_for_a_token_that_is_not_ours_is_refused(ocpi, cpo):
    _, token = cpo
    refused = ocpi(token).post(URL, json=cdr_data(token=("FR", "ABC")))

    assert_envelope(refused, 200, 2001, "cdr_token", "FR*ABC")
    assert stored() == []


@pytest.mark.parametrize(("body", "http_status"), [(b"[]", 200), (b'"cdr"', 200), (b"{", 400), (b"null", 200)])
def test_bodies_that_are_no_cdr_object_answer_an_envelope(ocpi, cpo, body, http_status):
    """Valid JSON that is no CDR is an OCPI error (HTTP 200); a body that is not JSON an HTTP one."""
    _, token = cpo
    refused = ocpi(token).post(URL, content=body, headers={"Content-Type": "application/json"})

    assert refused.status_code == http_status
    assert refused.json()["status_code"] == 2001
    assert stored() == []


def test_cdrs_are_immutable_and_the_collection_is_not_listed(ocpi, cpo):
    _, token = cpo
    location = ocpi(token).post(URL, json=cdr_example()).headers["Location"]
    before = stored()

    answers = [
        ocpi(token).put(location, json=cdr_example()),
        ocpi(token).patch(location, json={"remark": "x"}),
        ocpi(token).delete(location),
        ocpi(token).get(URL),
        ocpi(token).put(URL, json=cdr_example()),
    ]

    for answer in answers:
        assert_envelope(answer, 405, 2000)
    assert stored() == before


@pytest.mark.parametrize("suffix", ["/abc", "/999999", "/1" + "0" * 30])
def test_unknown_cdr_urls_answer_404_envelopes(ocpi, cpo, suffix):
    _, token = cpo
    assert_envelope(ocpi(token).get(URL + suffix), 404, 2000)


def test_without_a_credentials_token_nothing_is_stored(ocpi, cpo):
    answer = ocpi("not-a-token").post(URL, json=cdr_example())

    assert answer.status_code == 401
    assert stored() == []
