"""The back-office (STYLE §8): every admin page loads, partners are invited and registered through it, the partner
actions call the services against a fake partner, and tokens never reappear."""

import re
from typing import Any

import orjson
import pytest
from django.contrib import admin
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

from conftest import FakePartner, auth_header
from ocpi_core.crypto import token_generate, token_hint
from ocpi_core.models import Partner, PartnerToken, Party, TrafficLog
from ocpi_core.services import partner_register

PARTNERS = reverse("admin:ocpi_core_partner_changelist")
PARTIES = reverse("admin:ocpi_core_party_changelist")
TRAFFIC = reverse("admin:ocpi_core_trafficlog_changelist")
INVITE = reverse("admin:ocpi_core_partner_invite")
REGISTER = reverse("admin:ocpi_core_partner_register")


def url(name: str, *args: Any) -> str:
    return reverse(f"admin:ocpi_core_{name}", args=args)


def messages_of(response: Any) -> list[tuple[str, str]]:
    return [(m.level_tag, m.message) for m in response.context["messages"]]


def found(pattern: str, content: str) -> str:
    """The first group of `pattern` in `content`, which must match."""
    match = re.search(pattern, content)
    assert match is not None, pattern
    return match.group(1)


def results(response: Any) -> list[Any]:
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


def run_action(client: Client, action: str, *partners: Partner, **extra: str) -> Any:
    data = {"action": action, "_selected_action": [p.pk for p in partners], **extra}
    return client.post(PARTNERS, data, follow=True)


def partner_state(partner: Partner) -> tuple[Any, ...]:
    """Everything the handshake services write about a partner (but last_error, which records failures)."""
    partner.refresh_from_db()
    return (
        partner.status,
        partner.version,
        partner.token_out_encrypted,
        sorted(partner.tokens.values_list("token_hash", "kind")),
        sorted(partner.endpoints.values_list("identifier", "role", "url")),
        sorted(partner.parties.values_list("country_code", "party_id", "role")),
    )


@pytest.fixture
def fake_registered(fake_partner: FakePartner, own_parties: list[Party]) -> Partner:
    """A partner registered (through the service) with the fake partner platform, which accepts our token C."""
    token_a = token_generate()
    fake_partner.accepted_tokens |= {token_a, fake_partner.credentials_token}
    partner = partner_register(versions_url=fake_partner.versions_url, token=token_a, name="fake")
    fake_partner.received.clear()
    return partner


# --- every page ------------------------------------------------------------------------------------------------------


def test_index_shows_back_office_header_and_models(admin_client):
    response = admin_client.get(reverse("admin:index"))
    content = response.content.decode()
    assert response.status_code == 200
    assert "OCPI platform back-office" in content
    for link in (PARTNERS, PARTIES, TRAFFIC):
        assert f'href="{link}"' in content


@pytest.mark.parametrize(
    "model", [m for m in admin.site._registry if m._meta.app_label == "ocpi_core"], ids=lambda m: m.__name__
)
def test_every_changelist_loads(admin_client, registered_partner, model):
    response = admin_client.get(reverse(f"admin:ocpi_core_{model._meta.model_name}_changelist"))
    assert response.status_code == 200
    assert response.context["cl"].model is model


def test_partner_token_admin_is_not_registered():
    assert PartnerToken not in admin.site._registry


def test_partner_changelist_columns_buttons_filters_and_search(admin_client, registered_partner, invited_partner):
    partner, _ = registered_partner
    partner.last_error = "Push failed: " + "x" * 200
    partner.save()

    response = admin_client.get(PARTNERS)
    content = response.content.decode()
    assert [p.name for p in results(response)] == ["invited", "partner"]
    assert ">REGISTERED</span>" in content
    assert ">INVITED</span>" in content
    assert "DE*PRT EMSP" in content  # roles
    assert '<td class="field-token_forms">base64 / —</td>' in content  # the form we send / the one it sends (none yet)
    shown = found(r'<span title="Push failed: x{200}">(Push failed: x+…)</span>', content)
    assert len(shown) == 60  # last error, truncated
    assert f'href="{INVITE}"' in content
    assert f'href="{REGISTER}"' in content
    assert url("partner_add") not in content  # partners come from the handshake
    assert 'value="rotate_credentials"' in content
    assert 'value="delete_selected"' not in content

    assert [p.name for p in results(admin_client.get(PARTNERS, {"status__exact": "INVITED"}))] == ["invited"]
    assert [p.name for p in results(admin_client.get(PARTNERS, {"token_encoding__exact": "RAW"}))] == []
    assert [p.name for p in results(admin_client.get(PARTNERS, {"token_encoding__exact": "BASE64"}))] == [
        "invited",
        "partner",
    ]
    assert [p.name for p in results(admin_client.get(PARTNERS, {"version": "2.2.1"}))] == ["partner"]
    assert [p.name for p in results(admin_client.get(PARTNERS, {"q": "prt"}))] == ["partner"]  # a party id
    assert [p.name for p in results(admin_client.get(PARTNERS, {"q": "127.0.0.1:9"}))] == ["invited", "partner"]
    assert [p.name for p in results(admin_client.get(PARTNERS, {"q": "invited"}))] == ["invited"]


def test_partner_change_page_shows_endpoints_parties_and_hints_never_tokens(admin_client, registered_partner):
    partner, token = registered_partner

    response = admin_client.get(url("partner_change", partner.pk))

    content = response.content.decode()
    assert response.status_code == 200
    assert set(response.context["adminform"].form.fields) == {"name", "token_encoding", "page_size"}
    assert "http://127.0.0.1:9/ocpi/2.2.1/credentials" in content  # endpoint inline
    assert "PRT" in content
    assert "partner EMSP" in content
    assert token_hint(token) in content
    assert partner.token_out_hint in content
    assert token not in content
    assert partner.token_out() not in content
    assert partner.token_out_encrypted not in content
    assert "token_out_encrypted" not in content
    # the actions as buttons
    for action in ("rotate_credentials", "refetch_endpoints", "unregister"):
        assert f'name="action" value="{action}"' in content
    # history page (log entries)
    assert admin_client.get(url("partner_history", partner.pk)).status_code == 200


def test_invited_partner_page_offers_unregister_only(admin_client, invited_partner):
    partner, token_a = invited_partner

    content = admin_client.get(url("partner_change", partner.pk)).content.decode()

    assert 'name="action" value="unregister"' in content
    assert 'name="action" value="rotate_credentials"' not in content
    assert 'name="action" value="refetch_endpoints"' not in content
    assert "Token A (versions and credentials only)" in content
    assert token_hint(token_a) in content
    assert token_a not in content


def test_partner_cannot_be_added_by_hand_nor_deleted_while_registered(
    admin_client, registered_partner, invited_partner
):
    assert admin_client.get(url("partner_add")).status_code == 403
    assert admin_client.get(url("partner_delete", registered_partner[0].pk)).status_code == 403
    response = admin_client.get(url("partner_delete", invited_partner[0].pk))
    assert response.status_code == 200
    assert "Are you sure" in response.content.decode()


def test_unregistered_partner_is_deleted_with_its_parties(admin_client, registered_partner):
    partner, _ = registered_partner
    Partner.objects.filter(pk=partner.pk).update(status=Partner.Status.UNREGISTERED)
    entry = TrafficLog.objects.create(partner=partner, direction="IN", method="GET", url="/ocpi/versions")

    page = admin_client.get(url("partner_delete", partner.pk))
    assert "Are you sure" in page.content.decode()
    assert not page.context["perms_lacking"]
    response = admin_client.post(url("partner_delete", partner.pk), {"post": "yes"})

    assert response.status_code == 302
    assert not Partner.objects.filter(pk=partner.pk).exists()
    assert not Party.objects.filter(party_id="PRT").exists()
    assert Party.objects.filter(partner__isnull=True).count() == 2  # our own parties stay
    entry.refresh_from_db()
    assert entry.partner is None  # the traffic log outlives the partner


def test_partner_edit_changes_only_quirk_fields(admin_client, registered_partner):
    partner, _ = registered_partner
    before = partner_state(partner)
    page = admin_client.get(url("partner_change", partner.pk))
    management = {  # every inline's management form as the page renders it (other apps add read-only inlines)
        f"{inline.formset.prefix}-{key}": value
        for inline in page.context["inline_admin_formsets"]
        for key, value in inline.formset.management_form.initial.items()
    }
    data = {
        "name": "Partner GmbH",
        "token_encoding": "RAW",
        "page_size": "50",
        # not editable: ignored
        "status": "SUSPENDED",
        "token_out_encrypted": "forged",
        "versions_url": "http://evil.example/versions",
        **management,
    }

    response = admin_client.post(url("partner_change", partner.pk), data)

    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    partner.refresh_from_db()
    assert (partner.name, partner.token_encoding, partner.page_size) == ("Partner GmbH", "RAW", 50)
    assert partner.versions_url == "http://127.0.0.1:9/ocpi/versions"
    assert partner_state(partner) == before


# --- invite ----------------------------------------------------------------------------------------------------------


def test_invite_shows_token_a_once_and_it_works(admin_client, own_parties):
    page = admin_client.get(INVITE)
    assert page.status_code == 200
    assert 'name="name"' in page.content.decode()

    response = admin_client.post(INVITE, {"name": "Newco"})

    content = response.content.decode()
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert "will not be shown again" in content
    assert re.search(r'id="versions-url">http://testserver/ocpi/versions<', content)
    token_a = found(r'id="token-a"[^>]*>([^<]+)<', content)
    partner = Partner.objects.get(name="Newco")
    assert partner.status == Partner.Status.INVITED
    assert LogEntry.objects.filter(object_id=str(partner.pk), change_message="Invited (token A issued)").exists()

    # the token A shown is the one the partner registers with: it reads our versions ...
    versions = admin_client.get("/ocpi/versions", HTTP_AUTHORIZATION=auth_header(token_a))
    assert (versions.status_code, versions.json()["status_code"]) == (200, 1000)
    assert TrafficLog.objects.filter(partner=partner, direction="IN", module="versions").count() == 1
    # ... and is not shown again: not on its page, not in the list, not in the traffic log
    for page_url in (url("partner_change", partner.pk), PARTNERS, TRAFFIC):
        again = admin_client.get(page_url).content.decode()
        assert token_a not in again
    assert token_hint(token_a) in admin_client.get(url("partner_change", partner.pk)).content.decode()


def test_invite_again_replaces_token_a(admin_client, invited_partner):
    partner, old_token = invited_partner

    response = admin_client.post(INVITE, {"name": partner.name})

    new_token = found(r'id="token-a"[^>]*>([^<]+)<', response.content.decode())
    assert new_token != old_token
    assert admin_client.get("/ocpi/versions", HTTP_AUTHORIZATION=auth_header(old_token)).status_code == 401
    assert admin_client.get("/ocpi/versions", HTTP_AUTHORIZATION=auth_header(new_token)).status_code == 200


def test_invite_errors_reshow_the_form(admin_client, registered_partner):
    response = admin_client.post(INVITE, {"name": ""})
    assert response.status_code == 200
    assert response.context["form"].errors == {"name": ["This field is required."]}

    response = admin_client.post(INVITE, {"name": "partner"})  # registered already
    assert response.status_code == 200
    assert response.context["form"].non_field_errors() == ["Partner partner is registered already; unregister it first"]
    assert 'id="token-a"' not in response.content.decode()
    assert registered_partner[0].tokens.count() == 1


# --- register --------------------------------------------------------------------------------------------------------


def test_register_with_partner_through_admin(admin_client, ocpi, ocpi_base_url, own_parties, fake_partner):
    token_a = "their-token-A-given-out-of-band"
    fake_partner.accepted_tokens.add(token_a)
    page = admin_client.get(REGISTER)
    assert page.status_code == 200
    assert "Send token un-encoded (older peers)" in page.content.decode()

    response = admin_client.post(
        REGISTER, {"versions_url": fake_partner.versions_url, "token": token_a, "name": "Fake CPO"}, follow=True
    )

    partner = Partner.objects.get(name="Fake CPO")
    assert response.redirect_chain == [(url("partner_change", partner.pk), 302)]
    assert messages_of(response) == [("success", "Registered with Fake CPO (OCPI 2.2.1, 1 endpoints).")]
    assert partner.status == Partner.Status.REGISTERED
    assert partner.token_encoding == Partner.TokenEncoding.BASE64
    assert partner.endpoint_url("credentials") == fake_partner.server.url_for("/ocpi/2.2.1/credentials")
    assert [str(p) for p in partner.parties.all()] == ["DE*FKC CPO"]
    assert partner.token_out() == fake_partner.credentials_token
    # we posted our credentials with a new token for the partner: it works against our live server
    post = next(r for r in fake_partner.received if r["method"] == "POST")
    offered = orjson.loads(post["body"])
    assert offered["url"] == f"{ocpi_base_url}/ocpi/versions"
    assert ocpi(offered["token"]).get("/ocpi/versions").json()["status_code"] == 1000
    # the change page shows what we stored, and none of the tokens
    content = response.content.decode()
    assert "FKC" in content
    assert fake_partner.server.url_for("/ocpi/2.2.1/credentials") in content
    for token in (token_a, offered["token"], fake_partner.credentials_token):
        assert token not in content


def test_register_failure_reshows_form_and_stores_nothing(admin_client, own_parties, fake_partner):
    response = admin_client.post(REGISTER, {"versions_url": fake_partner.versions_url, "token": "not-accepted"})

    assert response.status_code == 200
    (error,) = response.context["form"].non_field_errors()
    assert error.startswith("Reading the partner's versions failed: Could not GET the versions endpoint")
    assert "errornote" in response.content.decode()
    assert "not-accepted" not in response.content.decode()  # the token is not echoed back
    assert not Partner.objects.exists()
    assert not PartnerToken.objects.exists()


def test_register_raw_checkbox_sends_token_unencoded(admin_client, own_parties, fake_partner):
    fake_partner.accepted_tokens.add("raw-token")  # the fake accepts Base64 only: the raw attempt fails

    response = admin_client.post(
        REGISTER, {"versions_url": fake_partner.versions_url, "token": "raw-token", "raw_token": "on"}
    )

    assert fake_partner.received[0]["headers"]["Authorization"] == "Token raw-token"
    assert response.context["form"].non_field_errors()[0].startswith("Reading the partner's versions failed")
    assert not Partner.objects.exists()


def test_register_form_validates_fields(admin_client, own_parties):
    response = admin_client.post(REGISTER, {"versions_url": "not a url", "token": ""})
    assert response.status_code == 200
    assert set(response.context["form"].errors) == {"versions_url", "token"}
    assert not Partner.objects.exists()


# --- actions ---------------------------------------------------------------------------------------------------------


def test_rotate_action(admin_client, fake_registered, fake_partner):
    old_hashes = set(fake_registered.tokens.values_list("token_hash", flat=True))
    fake_partner.credentials_token = new_token = token_generate()
    fake_partner.accepted_tokens.add(new_token)

    response = run_action(admin_client, "rotate_credentials", fake_registered)

    assert messages_of(response) == [("success", f"fake: credentials rotated; we now send {token_hint(new_token)}")]
    assert [(r["method"], r["path"]) for r in fake_partner.received][-1] == ("PUT", "/ocpi/2.2.1/credentials")
    fake_registered.refresh_from_db()
    assert fake_registered.token_out() == new_token
    new_hashes = set(fake_registered.tokens.values_list("token_hash", flat=True))
    assert len(new_hashes) == 1
    assert not new_hashes & old_hashes
    assert LogEntry.objects.filter(object_id=str(fake_registered.pk), change_message="Rotated credentials").exists()


def test_refetch_endpoints_action(admin_client, fake_registered, fake_partner):
    locations = fake_partner.server.url_for("/ocpi/2.2.1/locations")
    fake_partner.extra_endpoints.append({"identifier": "locations", "role": "SENDER", "url": locations})

    response = run_action(admin_client, "refetch_endpoints", fake_registered)

    assert messages_of(response) == [("success", "fake: 2 endpoints fetched for version 2.2.1")]
    assert fake_registered.endpoint_url("locations", "SENDER") == locations
    assert [r["path"] for r in fake_partner.received] == ["/ocpi/versions", "/ocpi/2.2.1"]


def test_unregister_action(admin_client, fake_registered, fake_partner):
    response = run_action(admin_client, "unregister", fake_registered, confirm="yes")

    assert messages_of(response) == [("success", "fake: unregistered")]
    assert (fake_partner.received[-1]["method"], fake_partner.received[-1]["path"]) == (
        "DELETE",
        "/ocpi/2.2.1/credentials",
    )
    fake_registered.refresh_from_db()
    assert fake_registered.status == Partner.Status.UNREGISTERED
    assert not fake_registered.tokens.exists()
    assert fake_registered.token_out_encrypted == ""


def test_unregister_asks_first_and_changes_nothing_until_confirmed(admin_client, fake_registered, fake_partner):
    """From the list's action menu or a partner's page button alike: a page names the partner, nothing is sent."""
    for extra in ({}, {"_return": "change"}):
        page = run_action(admin_client, "unregister", fake_registered, **extra)

        content = page.content.decode()
        assert page.status_code == 200
        assert "Unregister partners?" in content
        assert "<strong>fake</strong>" in content
        assert 'name="confirm" value="yes"' in content
        assert ('name="_return" value="change"' in content) == bool(extra)
    assert fake_partner.received == []
    fake_registered.refresh_from_db()
    assert fake_registered.status == Partner.Status.REGISTERED
    assert fake_registered.tokens.exists()


def test_unregister_action_shows_remote_error(admin_client, fake_registered, fake_partner):
    fake_partner.credentials_status = 3000

    response = run_action(admin_client, "unregister", fake_registered, confirm="yes")

    ((level, text),) = messages_of(response)
    assert level == "warning"
    assert text.startswith("fake: unregistered here; the partner answered with an error:")
    assert "3000" in text
    fake_registered.refresh_from_db()
    assert fake_registered.status == Partner.Status.UNREGISTERED  # the local unregistration stands
    assert fake_registered.last_error.startswith("Unregister:")


def test_action_button_on_change_page_returns_there(admin_client, fake_registered, fake_partner):
    response = run_action(admin_client, "refetch_endpoints", fake_registered, _return="change")

    assert response.redirect_chain == [(url("partner_change", fake_registered.pk), 302)]
    assert messages_of(response) == [("success", "fake: 1 endpoint fetched for version 2.2.1")]


@pytest.mark.parametrize(
    ("action", "error"),
    [
        ("rotate_credentials", "partner: Reading the partner's versions failed: Could not GET the versions endpoint"),
        ("refetch_endpoints", "partner: Could not GET the versions endpoint"),
    ],
)
def test_action_against_unreachable_partner_shows_error_and_changes_nothing(
    admin_client, registered_partner, action, error
):
    partner, token = registered_partner  # its versions URL points at a closed port
    before = partner_state(partner)

    response = run_action(admin_client, action, partner)

    ((level, text),) = messages_of(response)
    assert level == "error"
    assert text.startswith(error)
    assert partner_state(partner) == before
    assert "Could not GET the versions endpoint" in partner.last_error  # kept where operators look
    assert admin_client.get("/ocpi/versions", HTTP_AUTHORIZATION=auth_header(token)).status_code == 200
    assert not LogEntry.objects.filter(object_id=str(partner.pk)).exists()


def test_unregister_unreachable_partner_still_stops_traffic_with_warning(admin_client, registered_partner):
    partner, token = registered_partner

    response = run_action(admin_client, "unregister", partner, confirm="yes")

    ((level, text),) = messages_of(response)
    assert (level, text.startswith("partner: unregistered here; the partner answered with an error")) == (
        "warning",
        True,
    )
    assert admin_client.get("/ocpi/versions", HTTP_AUTHORIZATION=auth_header(token)).status_code == 401


def test_action_on_partner_not_registered_is_an_error(admin_client, invited_partner):
    partner, _ = invited_partner
    before = partner_state(partner)

    response = run_action(admin_client, "rotate_credentials", partner)

    assert messages_of(response) == [("error", "invited: Partner invited is not registered")]
    assert partner_state(partner) == before


# --- parties ---------------------------------------------------------------------------------------------------------


def test_party_changelist_filters_and_search(admin_client, registered_partner):
    response = admin_client.get(PARTIES)
    content = response.content.decode()
    assert [str(p) for p in results(response)] == ["DE*PRT EMSP", "NL*OWE EMSP", "NL*OWN CPO"]
    assert content.count('alt="True"') == 2
    assert content.count('alt="False"') == 1

    def ids(**query: str) -> list[str]:
        return [p.party_id for p in results(admin_client.get(PARTIES, query))]

    assert ids(own="yes") == ["OWE", "OWN"]
    assert ids(own="no") == ["PRT"]
    assert ids(role__exact="CPO") == ["OWN"]
    assert ids(country_code="DE") == ["PRT"]
    assert ids(q="own cpo") == ["OWN"]
    assert ids(q="partner") == ["PRT"]  # the partner's name


def test_party_pages_own_editable_partners_read_only(admin_client, registered_partner):
    own = Party.objects.get(party_id="OWN")
    theirs = Party.objects.get(party_id="PRT")

    add = admin_client.get(url("party_add"))
    assert add.status_code == 200
    assert set(add.context["adminform"].form.fields) == {"country_code", "party_id", "role", "name", "website"}

    change = admin_client.get(url("party_change", own.pk))
    assert change.status_code == 200
    assert set(change.context["adminform"].form.fields) == {"name", "website"}
    assert "next credentials update" in change.content.decode()

    view = admin_client.get(url("party_change", theirs.pk))
    assert view.status_code == 200
    assert view.context["has_change_permission"] is False
    assert "partner EMSP" in view.content.decode()
    assert admin_client.post(url("party_change", theirs.pk), {"name": "hijacked"}).status_code == 403
    assert admin_client.get(url("party_delete", theirs.pk)).status_code == 403
    theirs.refresh_from_db()
    assert theirs.name == "partner EMSP"


def test_party_add_and_edit_own(admin_client, own_parties):
    response = admin_client.post(
        url("party_add"), {"country_code": "be", "party_id": "ab1", "role": "CPO", "name": "Belgian CPO"}
    )
    assert response.status_code == 302
    created = Party.objects.get(country_code="BE")
    assert (created.party_id, created.role, created.name, created.is_own) == ("AB1", "CPO", "Belgian CPO", True)
    assert response["Location"] == PARTIES

    duplicate = admin_client.post(
        url("party_add"), {"country_code": "nl", "party_id": "own", "role": "CPO", "name": "Copy"}
    )
    assert duplicate.status_code == 200
    assert duplicate.context["adminform"].form.non_field_errors() == ["We already have the own party NL*OWN CPO."]
    bad = admin_client.post(url("party_add"), {"country_code": "N1", "party_id": "TOOLONG", "role": "CPO", "name": "x"})
    assert set(bad.context["adminform"].form.errors) == {"country_code", "party_id"}
    assert Party.objects.count() == 3

    edit = admin_client.post(
        url("party_change", created.pk),
        {"name": "Belgian CPO NV", "website": "https://cpo.example.be", "country_code": "FR"},
    )
    assert edit.status_code == 302
    created.refresh_from_db()
    assert (created.country_code, created.name, created.website) == ("BE", "Belgian CPO NV", "https://cpo.example.be")


# --- traffic log -----------------------------------------------------------------------------------------------------


@pytest.fixture
def traffic(registered_partner: tuple[Partner, str]) -> list[TrafficLog]:
    partner, _ = registered_partner
    rows: list[dict[str, Any]] = [
        dict(
            direction="IN",
            method="GET",
            url="/ocpi/versions",
            module="versions",
            http_status=200,
            ocpi_status_code=1000,
        ),
        dict(
            direction="OUT",
            method="PUT",
            url="https://partner.example/ocpi/2.2.1/locations/NL/OWN/LOC1/" + "x" * 120,
            module="locations",
            http_status=200,
            ocpi_status_code=2001,
            request_body='{"id":"LOC1","publish":true}',
            response_body='{"status_code":2001,"status_message":"Invalid <or> missing"}',
            request_id="req-out-1",
            correlation_id="corr-42",
        ),
        dict(
            direction="IN",
            method="POST",
            url="/ocpi/2.2.1/credentials",
            module="credentials",
            http_status=200,
            ocpi_status_code=3001,
        ),
        dict(
            direction="OUT",
            method="GET",
            url="https://partner.example/ocpi/versions",
            module="versions",
            error="timed out",
        ),
    ]
    return [TrafficLog.objects.create(partner=partner, duration_ms=12.5, **row) for row in rows]


def test_traffic_log_list_badges_filters_and_search(admin_client, traffic):
    response = admin_client.get(TRAFFIC)
    content = response.content.decode()
    assert len(results(response)) == 4
    colours = dict((code, colour) for colour, code in re.findall(r"background:(#\w+);[^>]*>(\d{4})</span>", content))
    assert colours == {"1000": "#2e7d32", "2001": "#e65100", "3001": "#c62828"}
    assert ">IN</span>" in content
    assert ">OUT</span>" in content
    shown = found(
        r'<span title="https://partner.example/ocpi/2.2.1/locations/NL/OWN/LOC1/x{120}" '
        r'style="overflow-wrap:anywhere">([^<]+)</span>',
        content,
    )
    assert len(shown) == 80
    assert shown.endswith("…")  # url truncated, full in the tooltip; it wraps anywhere, so the status columns stay

    def count(**query: str) -> int:
        return len(results(admin_client.get(TRAFFIC, query)))

    partner = traffic[0].partner
    year = traffic[0].created_at.year
    assert count(direction__exact="OUT") == 2
    assert count(module="credentials") == 1
    assert count(partner__id__exact=str(partner.pk)) == 4
    assert count(http_status="200") == 3
    assert count(ocpi_status_code="2001") == 1
    assert count(created_at__year=str(year)) == 4
    assert count(q="corr-42") == 1
    assert count(q="req-out-1") == 1
    assert count(q="credentials") == 1


def test_traffic_log_detail_is_read_only_with_bodies_in_pre(admin_client, traffic):
    entry = traffic[1]

    response = admin_client.get(url("trafficlog_change", entry.pk))

    content = response.content.decode()
    assert response.status_code == 200
    assert response.context["has_change_permission"] is False
    assert '<pre style="white-space:pre-wrap' in content
    assert "&quot;status_message&quot;: &quot;Invalid &lt;or&gt; missing&quot;" in content  # pretty, escaped
    assert entry.url in content
    assert "corr-42" in content
    assert admin_client.get(url("trafficlog_add")).status_code == 403
    assert admin_client.post(url("trafficlog_change", entry.pk), {"url": "changed"}).status_code == 403
    assert admin_client.get(url("trafficlog_delete", entry.pk)).status_code == 200  # superusers may purge


# --- permissions -----------------------------------------------------------------------------------------------------


def staff_client(*codenames: str) -> Client:
    user = User.objects.create_user("operator", password="x", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="ocpi_core", codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


def test_staff_without_permissions_cannot_invite_or_register(db):
    client = staff_client()

    assert client.get(INVITE).status_code == 403
    assert client.post(INVITE, {"name": "sneaky"}).status_code == 403
    assert client.get(REGISTER).status_code == 403
    assert client.get(PARTNERS).status_code == 403
    assert not Partner.objects.exists()


def test_view_only_staff_sees_partners_without_buttons_or_actions(registered_partner):
    client = staff_client("view_partner")

    response = client.get(PARTNERS)
    content = response.content.decode()
    assert [p.name for p in results(response)] == ["partner"]
    assert f'href="{INVITE}"' not in content
    assert 'value="rotate_credentials"' not in content
    change = client.get(url("partner_change", registered_partner[0].pk))
    assert change.status_code == 200
    assert "http://127.0.0.1:9/ocpi/2.2.1/credentials" in change.content.decode()  # endpoints inline shown
    assert 'name="action"' not in change.content.decode()
    assert client.get(INVITE).status_code == 403
    assert client.get(TRAFFIC).status_code == 403


def test_staff_with_add_partner_permission_can_invite(db):
    client = staff_client("add_partner", "view_partner")

    assert client.get(INVITE).status_code == 200
    response = client.post(INVITE, {"name": "Newco"})
    assert response.status_code == 200
    assert Partner.objects.get(name="Newco").tokens.count() == 1


def test_anonymous_is_sent_to_login(client, db):
    response = client.get(INVITE)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
