"""Platform API for CDRs (/api/cdrs/): JWT staff only; every CDR readable as stored, the pricing breakdown of our own,
credit CDRs issued through the service (queued for the eMSP); a refused credit changes nothing."""

import json
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from cdrs.models import Cdr
from cdrs.services import cdr_receive
from cdrs.tests.factories import cdr_data, own_cdr
from conftest import make_partner
from ocpi_core.constants import Role
from ocpi_core.models import Delivery, Partner, PartnerEndpoint, Party

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"
BASE = "/api/cdrs/"


@pytest.fixture
def emsp(own_parties: list[Party]) -> Partner:
    partner, _ = make_partner(name="emsp", roles=(("DE", "PRT", Role.EMSP),))
    PartnerEndpoint.objects.create(
        partner=partner, identifier="cdrs", role="RECEIVER", url="http://127.0.0.1:9/ocpi/2.2.1/emsp/cdrs"
    )
    return partner


@pytest.fixture
def theirs(own_parties: list[Party]) -> Cdr:
    """A CDR a CPO partner (BE*BEC) sent us for a token of our eMSP NL*OWE."""
    partner, _ = make_partner(name="cpo", roles=(("BE", "BEC", Role.CPO),))
    return cdr_receive(partner=partner, data=cdr_data("THEIRS")).cdr


def test_lists_every_cdr_with_filters(staff, emsp, theirs):
    mine = own_cdr("MINE")

    everything = staff.get(BASE).json()
    own_only = staff.get(BASE, {"owner": "own"}).json()
    by_party = staff.get(BASE, {"party": "BE*BEC"}).json()

    assert everything["count"] == 2
    assert {item["cdr"]["id"] for item in everything["results"]} == {"MINE", "THEIRS"}
    assert [(item["pk"], item["own"]) for item in own_only["results"]] == [(mine.pk, True)]
    assert [(item["cdr"]["id"], item["partner"]) for item in by_party["results"]] == [("THEIRS", "cpo")]


def test_gets_a_cdr_as_stored_and_the_breakdown_of_our_own(staff, emsp, theirs):
    mine = own_cdr("MINE")

    got = staff.get(f"{BASE}{mine.pk}")
    pricing = staff.get(f"{BASE}{mine.pk}/pricing")
    not_priced_here = staff.get(f"{BASE}{theirs.pk}/pricing")

    assert got.status_code == 200
    assert got.content.decode() == mine.doc  # digit for digit
    assert pricing.json() == mine.pricing
    assert not_priced_here.status_code == 404
    assert staff.get(f"{BASE}999999").status_code == 404


def test_cdr_paths_take_a_trailing_slash_like_the_other_resources(staff, emsp, theirs):
    # the OpenAPI document publishes /api/cdrs/{cdr_pk}/ and .../pricing/: both spellings answer
    mine = own_cdr("MINE")

    assert staff.get(f"{BASE}{mine.pk}/").content.decode() == mine.doc
    assert staff.get(f"{BASE}{mine.pk}/pricing/").json() == mine.pricing
    assert staff.get(f"{BASE}{theirs.pk}/reconciliation/").json()["pk"] == theirs.pk


def test_issues_a_credit_cdr_once(staff, emsp, theirs):
    mine = own_cdr("MINE")

    issued = staff.post(f"{BASE}{mine.pk}/credit")
    again = staff.post(f"{BASE}{mine.pk}/credit")
    partners = staff.post(f"{BASE}{theirs.pk}/credit")

    assert issued.status_code == 201
    data = json.loads(issued.content)
    assert (data["id"], data["credit"], data["credit_reference_id"]) == ("MINE-C", True, "MINE")
    assert data["total_cost"] == {"excl_vat": -2.8125, "incl_vat": -3.403125}
    assert issued["Location"] == f"{BASE}{Cdr.objects.get(ocpi_id='MINE-C').pk}"
    assert (again.status_code, partners.status_code) == (400, 400)
    assert Cdr.objects.count() == 3
    assert list(Delivery.objects.filter(module="cdrs").values_list("object_path", flat=True).order_by("pk")) == [
        "MINE",
        "MINE-C",
    ]


def test_only_staff_with_a_token(own_parties: Any):
    get_user_model().objects.create_user("user", password=PASSWORD, is_staff=False)
    client = Client()
    assert client.get(BASE).status_code == 401
    tokens = client.post("/api/token/", {"username": "user", "password": PASSWORD}, content_type="application/json")
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {tokens.json()['access']}"
    assert client.get(BASE).status_code == 403
