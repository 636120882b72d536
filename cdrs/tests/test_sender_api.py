"""CPO Sender GET /ocpi/2.2.1/cpo/cdrs through real HTTP (REFERENCE §8.2, §2.7): our own CDRs, only those of the
calling partner's tokens, paginated with date filters, as stored (exact numbers)."""

import json
from typing import Any

import pytest

from cdrs.tests.factories import own_cdr
from conftest import make_partner
from ocpi_core.constants import Role

URL = "/ocpi/2.2.1/cpo/cdrs"


@pytest.fixture
def emsp(own_parties: Any, ocpi_base_url: str) -> tuple[Any, str]:
    """A registered eMSP partner owning DE*PRT, whose tokens some of our CDRs carry."""
    return make_partner(name="emsp", roles=(("DE", "PRT", Role.EMSP),))


def test_a_partner_gets_only_the_cdrs_of_its_own_tokens(ocpi, emsp):
    _, token = emsp
    mine = [own_cdr("A1"), own_cdr("A2")]
    own_cdr("B1", token=("FR", "OTH"))
    make_partner(name="other", roles=(("FR", "OTH", Role.EMSP),))

    answer = ocpi(token).get(URL)

    body = answer.json()
    assert (answer.status_code, body["status_code"]) == (200, 1000)
    assert [cdr["id"] for cdr in body["data"]] == ["A1", "A2"]
    assert body["data"][0] == json.loads(mine[0].doc)  # the stored document, as is
    assert body["data"][0]["total_cost"] == {"excl_vat": 2.8125, "incl_vat": 3.403125}
    assert answer.headers["X-Total-Count"] == "2"


def test_the_list_pages_with_link_and_keeps_date_filters(ocpi, emsp):
    _, token = emsp
    for index in range(5):
        own_cdr(f"P{index}", last_updated=f"2024-01-0{index + 1}T00:00:00Z")

    first = ocpi(token).get(URL, params={"limit": 2, "date_from": "2024-01-02T00:00:00Z"})
    second = ocpi(token).get(first.headers["Link"].split(";")[0].strip("<>"))
    windowed = ocpi(token).get(URL, params={"date_from": "2024-01-02T00:00:00Z", "date_to": "2024-01-04T00:00:00Z"})

    assert [cdr["id"] for cdr in first.json()["data"]] == ["P1", "P2"]
    assert first.headers["X-Total-Count"] == "4"
    assert 'rel="next"' in first.headers["Link"]
    assert "date_from=2024-01-02" in first.headers["Link"]
    assert [cdr["id"] for cdr in second.json()["data"]] == ["P3", "P4"]
    assert "Link" not in second.headers
    assert [cdr["id"] for cdr in windowed.json()["data"]] == ["P1", "P2"]


def test_a_partner_without_cdrs_gets_an_empty_list(ocpi, emsp):
    own_cdr("B1", token=("FR", "OTH"))
    _, token = emsp

    answer = ocpi(token).get(URL)

    assert answer.json()["data"] == []
    assert answer.headers["X-Total-Count"] == "0"


def test_bad_paging_parameters_answer_2001(ocpi, emsp):
    _, token = emsp
    answer = ocpi(token).get(URL, params={"date_from": "yesterday"})

    assert (answer.status_code, answer.json()["status_code"]) == (200, 2001)


def test_routing_to_a_party_that_is_not_ours_answers_404(ocpi, emsp):
    own_cdr("A1")
    _, token = emsp
    headers = {
        "OCPI-to-country-code": "FR",
        "OCPI-to-party-id": "XXX",
        "OCPI-from-country-code": "DE",
        "OCPI-from-party-id": "PRT",
    }

    answer = ocpi(token).get(URL, headers=headers)

    assert answer.status_code == 404
    assert answer.json()["status_code"] == 2000


def test_the_sender_answers_no_writes(ocpi, emsp):
    _, token = emsp
    assert ocpi(token).post(URL, json={}).status_code == 405
