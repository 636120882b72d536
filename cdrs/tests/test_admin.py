"""The CDRs back-office (STYLE §8): every page loads, totals read in words, CDRs are read-only, and the credit action
issues a credit CDR of our own CDRs (queued for the eMSP) and refuses partners'."""

from typing import Any

import pytest
from django.urls import reverse

from cdrs.admin import hours_text, totals_summary
from cdrs.models import Cdr
from cdrs.services import cdr_receive
from cdrs.tests.factories import cdr_data, own_cdr
from conftest import make_partner
from ocpi_core.constants import Role
from ocpi_core.models import Delivery, PartnerEndpoint

CHANGELIST = reverse("admin:cdrs_cdr_changelist")


@pytest.fixture
def cdrs(own_parties: Any) -> tuple[Cdr, Cdr]:
    """One own CDR (token of the eMSP partner DE*PRT, which has a CDRs Receiver) and one a CPO partner sent us."""
    emsp, _ = make_partner(name="emsp", roles=(("DE", "PRT", Role.EMSP),))
    PartnerEndpoint.objects.create(
        partner=emsp, identifier="cdrs", role="RECEIVER", url="http://127.0.0.1:9/ocpi/2.2.1/emsp/cdrs"
    )
    cpo, _ = make_partner(name="cpo", roles=(("BE", "BEC", Role.CPO),))
    return own_cdr("MINE"), cdr_receive(partner=cpo, data=cdr_data("THEIRS")).cdr


def test_totals_read_in_words(cdrs):
    mine, _ = cdrs
    assert totals_summary(mine) == "€3.403125 incl. VAT, 11.25 kWh, 1h30"
    assert hours_text("1.0833") == "1h05"


@pytest.mark.parametrize(
    "query",
    ["", "?owner=own", "?owner=partner", "?party=BE*BEC", "?credit__exact=1", "?q=THEIRS", "?q=012345678", "?q=LOC1"],
)
def test_the_list_loads_with_filters_and_search(admin_client, cdrs, query):
    answer = admin_client.get(CHANGELIST + query)
    assert answer.status_code == 200


def test_search_finds_by_id_session_token_and_location(admin_client, cdrs):
    found = admin_client.get(CHANGELIST + "?q=S-THEIRS").context["cl"].result_list
    assert [cdr.ocpi_id for cdr in found] == ["THEIRS"]


def test_the_detail_page_shows_totals_and_breakdown_and_is_read_only(admin_client, cdrs):
    mine, theirs = cdrs
    page = admin_client.get(reverse("admin:cdrs_cdr_change", args=[mine.pk])).content.decode()
    assert "€3.403125 incl. VAT, 11.25 kWh, 1h30" in page
    assert "Pricing breakdown" in page
    assert "2.8125" in page
    assert 'name="_save"' not in page
    assert admin_client.get(reverse("admin:cdrs_cdr_change", args=[theirs.pk])).status_code == 200
    assert admin_client.get(reverse("admin:cdrs_cdr_add")).status_code == 403
    before = Cdr.objects.get(pk=mine.pk).doc
    admin_client.post(reverse("admin:cdrs_cdr_change", args=[mine.pk]), {"ocpi_id": "CHANGED"})
    assert Cdr.objects.get(pk=mine.pk).doc == before


def test_the_credit_action_credits_our_own_and_refuses_partners(admin_client, cdrs):
    mine, theirs = cdrs
    answer = admin_client.post(
        CHANGELIST, {"action": "issue_credit", "_selected_action": [mine.pk, theirs.pk]}, follow=True
    )

    text = answer.content.decode()
    assert "Issued 1 credit CDR" in text
    assert "only our own CDRs" in text
    credit = Cdr.objects.get(ocpi_id="MINE-C")
    assert credit.credit_of == mine
    assert Delivery.objects.filter(module="cdrs", object_path="MINE-C", method="POST").exists()
    page = admin_client.get(reverse("admin:cdrs_cdr_change", args=[credit.pk])).content.decode()
    assert "-3.403125" in page
