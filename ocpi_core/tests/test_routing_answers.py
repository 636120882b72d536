"""The routing headers of an answer (REFERENCE §2.10, transport_and_format "Direct response": to the requesting party,
from the receiving party) when the request named no party, or only its own (open routing): the answer still says who
answers (our only own party of the URL's interface) and to whom (the calling partner's only party in a role that
calls it), through real HTTP on the hot path and on DRF views alike. Where either side has several candidates, that
pair is left out rather than name the wrong party."""

from typing import Any

import httpx
import pytest

from conftest import make_partner
from ocpi_core.constants import Role
from ocpi_core.models import Party

FROM = ("OCPI-from-country-code", "OCPI-from-party-id")
TO = ("OCPI-to-country-code", "OCPI-to-party-id")
# the Sender list of the Locations hot path (ocpi_core.fastpath), one of a DRF view, and an error answer of each
CPO_URLS = [
    "/ocpi/2.2.1/cpo/locations",
    "/ocpi/2.2.1/cpo/tariffs",
    "/ocpi/2.2.1/cpo/locations?limit=many",
    "/ocpi/2.2.1/cpo/tariffs?offset=-1",
]


def pair(response: httpx.Response, names: tuple[str, str]) -> tuple[str, str] | None:
    values = tuple(response.headers.get(name) for name in names)
    return None if values == (None, None) else values  # type: ignore[return-value]


@pytest.mark.parametrize("url", CPO_URLS)
def test_a_direct_request_without_routing_headers_gets_both_pairs(ocpi: Any, registered_partner: Any, url: str):
    _, token = registered_partner

    response = ocpi(token).get(url)

    assert response.json()["status_code"] in (1000, 2001)
    assert pair(response, FROM) == ("NL", "OWN")  # our only CPO party answers a cpo/ URL
    assert pair(response, TO) == ("DE", "PRT")  # the partner's only eMSP party asked


@pytest.mark.parametrize("url", CPO_URLS[:2])
def test_an_open_routing_request_is_answered_from_the_party_that_answers(ocpi: Any, registered_partner: Any, url: str):
    _, token = registered_partner
    headers = {"OCPI-from-country-code": "de", "OCPI-from-party-id": "prt"}

    response = ocpi(token).get(url, headers=headers)

    assert pair(response, TO) == ("de", "prt")  # as the request named it
    assert pair(response, FROM) == ("NL", "OWN")


def test_an_emsp_url_is_answered_by_our_emsp_party_to_the_calling_cpo(ocpi: Any, own_parties: Any):
    _, token = make_partner(name="cpo", roles=(("DE", "CPX", Role.CPO), ("DE", "EMX", Role.EMSP)))

    response = ocpi(token).get("/ocpi/2.2.1/emsp/tokens")

    assert response.json()["status_code"] == 1000
    assert pair(response, FROM) == ("NL", "OWE")
    assert pair(response, TO) == ("DE", "CPX")  # of the partner's parties, the one whose role calls emsp/ URLs


def test_several_candidates_leave_that_pair_out(ocpi: Any, own_parties: Any):
    Party.objects.create(country_code="BE", party_id="TWO", role=Role.CPO, name="Second own CPO")
    _, token = make_partner(name="two", roles=(("DE", "EM1", Role.EMSP), ("DE", "EM2", Role.EMSP)))

    unnamed = ocpi(token).get("/ocpi/2.2.1/cpo/tariffs")
    named = ocpi(token).get(
        "/ocpi/2.2.1/cpo/tariffs",
        headers={
            "OCPI-from-country-code": "DE",
            "OCPI-from-party-id": "EM2",
            "OCPI-to-country-code": "BE",
            "OCPI-to-party-id": "TWO",
        },
    )

    assert unnamed.json()["status_code"] == 1000
    assert (pair(unnamed, FROM), pair(unnamed, TO)) == (None, None)
    assert (pair(named, FROM), pair(named, TO)) == (("BE", "TWO"), ("DE", "EM2"))


def test_configuration_modules_still_carry_none(ocpi: Any, registered_partner: Any):
    _, token = registered_partner

    for url in ("/ocpi/versions", "/ocpi/2.2.1", "/ocpi/2.2.1/credentials"):
        response = ocpi(token).get(url)
        assert response.json()["status_code"] == 1000
        assert (pair(response, FROM), pair(response, TO)) == (None, None), url


@pytest.mark.parametrize(
    ("method", "url", "caller"),
    [
        ("GET", "/ocpi/2.2.1/cpo/cdrs", ("DE", "EMX")),  # CDRs are pulled by eMSPs, not by NSPs or SCSPs
        ("PUT", "/ocpi/2.2.1/cpo/tokens/DE/EMX/T1", ("DE", "EMX")),  # tokens are pushed by eMSPs
        ("POST", "/ocpi/2.2.1/cpo/commands/STOP_SESSION", ("DE", "EMX")),  # commands are sent by eMSPs
        ("PUT", "/ocpi/2.2.1/cpo/chargingprofiles/S1", None),  # both an SCSP and an eMSP may: left out
        ("GET", "/ocpi/2.2.1/cpo/locations", None),  # all three pull locations: left out
    ],
)
def test_the_asking_party_is_the_one_whose_role_calls_that_module(
    ocpi: Any, own_parties: Any, method: str, url: str, caller: tuple[str, str] | None
):
    """REFERENCE §1.2: which roles call which module's interface. A platform with an eMSP, an NSP and an SCSP party
    calling without routing headers is answered `to` the one party that calls that module, or to none."""
    roles = (("DE", "EMX", Role.EMSP), ("DE", "NSX", Role.NSP), ("DE", "SCX", Role.SCSP))
    _, token = make_partner(name="multi", roles=roles)

    response = ocpi(token).request(method, url, json={} if method != "GET" else None)

    assert pair(response, FROM) == ("NL", "OWN"), response.text
    assert pair(response, TO) == caller, response.text
