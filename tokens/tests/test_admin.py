"""The tokens back-office: every page loads, an own token issued in the admin is validated and pushed, block/unblock
actions push PATCHes and skip partners' tokens, the authorization log is read-only."""

from typing import Any

import pytest
from django.urls import reverse

from conftest import make_partner
from ocpi_core.constants import Role
from ocpi_core.models import Delivery, PartnerEndpoint
from tokens.models import Authorization, Token
from tokens.services import authorize_token
from tokens.tests.factories import own_token, partner_token


@pytest.fixture
def cpo_receiver(own_parties: Any) -> Any:
    partner, _ = make_partner(name="cpo", roles=(("DE", "CPX", Role.CPO),))
    PartnerEndpoint.objects.create(partner=partner, identifier="tokens", role="RECEIVER", url="http://127.0.0.1:9/t")
    return partner


def test_pages_load(admin_client, cpo_receiver):
    token = own_token("CARD1")
    emsp, _ = make_partner(name="emsp", roles=(("DE", "PRT", Role.EMSP),))
    theirs = partner_token(emsp, "THEIRS")
    authorize_token(uid="CARD1", location_id="LOC1")

    pages = [
        reverse("admin:tokens_token_changelist"),
        reverse("admin:tokens_token_changelist") + "?owner=own&valid__exact=1&type__exact=RFID&q=CARD",
        reverse("admin:tokens_token_changelist") + "?owner=partner&party=DE*PRT&whitelist__exact=ALLOWED",
        reverse("admin:tokens_token_add"),
        reverse("admin:tokens_token_change", args=[token.pk]),
        reverse("admin:tokens_token_change", args=[theirs.pk]),
        reverse("admin:tokens_authorization_changelist"),
        reverse("admin:tokens_authorization_changelist") + "?allowed__exact=ALLOWED&q=CARD1",
        reverse("admin:tokens_authorization_change", args=[Authorization.objects.get().pk]),
    ]
    for url in pages:
        assert admin_client.get(url).status_code == 200, url
    listing = admin_client.get(reverse("admin:tokens_token_changelist")).content.decode()
    assert "CARD1" in listing
    assert "THEIRS" in listing


def test_issue_a_token_in_the_admin_validates_and_pushes(admin_client, cpo_receiver):
    url = reverse("admin:tokens_token_add")
    form = {
        "country_code": "NL",
        "party_id": "OWE",
        "uid": "CAFE01",
        "type": "RFID",
        "contract_id": "NLOWEC00001",
        "issuer": "Own eMSP",
        "valid": "on",
        "whitelist": "ALLOWED",
        "language": "nl",
        "energy_contract": "null",
        "allowed_location_ids": "null",
    }

    bad = admin_client.post(url, {**form, "language": "dutch"})
    assert bad.status_code == 200  # the form again, with the error
    assert Token.objects.count() == 0

    good = admin_client.post(url, form)
    assert good.status_code == 302, good.content.decode()[:2000]
    token = Token.objects.get()
    assert (token.partner_id, token.language, token.doc != "") == (None, "nl", True)
    assert list(Delivery.objects.values_list("method", "object_path")) == [("PUT", "CAFE01?type=RFID")]


def test_block_and_unblock_actions_push_and_skip_partner_tokens(admin_client, cpo_receiver):
    token = own_token("CARD1")
    emsp, _ = make_partner(name="emsp", roles=(("DE", "PRT", Role.EMSP),))
    theirs = partner_token(emsp, "THEIRS")
    Delivery.objects.all().delete()
    url = reverse("admin:tokens_token_changelist")

    admin_client.post(url, {"action": "block", "_selected_action": [token.pk, theirs.pk]})

    assert Token.objects.get(pk=token.pk).valid is False
    assert Token.objects.get(pk=theirs.pk).valid is True
    assert list(Delivery.objects.values_list("method", "fields")) == [("PATCH", ["valid"])]

    admin_client.post(url, {"action": "unblock", "_selected_action": [token.pk]})
    assert Token.objects.get(pk=token.pk).valid is True
