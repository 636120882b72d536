"""Credentials as initiator (REFERENCE §5.3, 5.5, 5.6): we register with, rotate with, unregister from and re-read a
partner platform (a real local HTTP server), through the services and the management commands."""

import base64
import json
from io import StringIO
from typing import Any
from urllib.parse import urlsplit

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from pytest_httpserver import HTTPServer
from werkzeug import Request

from conftest import FakePartner, envelope_body, make_partner
from ocpi_core.crypto import token_generate, token_hash
from ocpi_core.exceptions import InvalidParameters, ServerError, UnsupportedVersion
from ocpi_core.models import Partner, PartnerEndpoint, PartnerToken, Party
from ocpi_core.registry import versions_url
from ocpi_core.services import (
    RegistrationError,
    partner_endpoints_refresh,
    partner_invite,
    partner_register,
    partner_rotate,
    partner_unregister,
)

DOWN_VERSIONS_URL = "http://127.0.0.1:9/ocpi/versions"  # discard port: nothing listens


def b64(token: str) -> str:
    return "Token " + base64.b64encode(token.encode()).decode()


def requests_of(fake: FakePartner, method: str | None = None) -> list[dict[str, Any]]:
    return [r for r in fake.received if method is None or r["method"] == method]


def body_of(request: dict[str, Any]) -> dict[str, Any]:
    return json.loads(request["body"])


def command(name: str, *args: str) -> dict[str, Any]:
    out = StringIO()
    call_command(name, *args, stdout=out)
    return json.loads(out.getvalue())


def command_error(name: str, *args: str) -> tuple[str, dict[str, Any]]:
    """A command that must fail: (CommandError message, the JSON it printed)."""
    out = StringIO()
    with pytest.raises(CommandError) as excinfo:
        call_command(name, *args, stdout=out)
    return str(excinfo.value), json.loads(out.getvalue())


def register(fake: FakePartner, *, name: str = "fake") -> tuple[Partner, str]:
    """Register with the fake partner; returns (partner, the token A used). The fake then accepts token C too."""
    token_a = token_generate()
    fake.accepted_tokens.add(token_a)
    partner = partner_register(versions_url=fake.versions_url, token=token_a, name=name)
    fake.accepted_tokens.add(fake.credentials_token)
    return partner, token_a


def nothing_stored() -> bool:
    return not Partner.objects.exists() and not PartnerToken.objects.exists() and not PartnerEndpoint.objects.exists()


# --- partner_register ------------------------------------------------------------------------------------------------


def test_register_stores_connection_and_offers_token_b(ocpi, own_parties, fake_partner):
    fake_partner.extra_endpoints = [
        {"identifier": "locations", "role": "SENDER", "url": fake_partner.server.url_for("/ocpi/2.2.1/locations")}
    ]
    token_a = token_generate()
    fake_partner.accepted_tokens.add(token_a)

    partner = partner_register(versions_url=fake_partner.versions_url, token=token_a, name="fake")

    partner.refresh_from_db()
    assert partner.status == Partner.Status.REGISTERED
    assert (partner.version, partner.versions_url) == ("2.2.1", fake_partner.versions_url)
    assert partner.registered_at is not None
    # token C is stored encrypted, never in clear
    assert partner.token_out() == fake_partner.credentials_token
    assert fake_partner.credentials_token not in partner.token_out_encrypted
    assert partner.token_out_hint == "…" + fake_partner.credentials_token[-4:]
    assert sorted(partner.endpoints.values_list("identifier", "role", "url")) == [
        ("credentials", "SENDER", fake_partner.server.url_for("/ocpi/2.2.1/credentials")),
        ("locations", "SENDER", fake_partner.server.url_for("/ocpi/2.2.1/locations")),
    ]
    assert list(partner.parties.values_list("country_code", "party_id", "role", "name")) == [
        ("DE", "FKC", "CPO", "Fake CPO")
    ]
    # versions, details and POST, all with token A
    assert [(r["method"], r["path"]) for r in fake_partner.received] == [
        ("GET", "/ocpi/versions"),
        ("GET", "/ocpi/2.2.1"),
        ("POST", "/ocpi/2.2.1/credentials"),
    ]
    assert {r["headers"]["Authorization"] for r in fake_partner.received} == {b64(token_a)}
    body = body_of(requests_of(fake_partner, "POST")[0])
    assert body["url"] == versions_url()
    assert sorted((r["role"], r["country_code"], r["party_id"]) for r in body["roles"]) == [
        ("CPO", "NL", "OWN"),
        ("EMSP", "NL", "OWE"),
    ]
    token_b = body["token"]
    assert token_b not in (token_a, fake_partner.credentials_token)
    # token B is now the partner's credentials token (and its only one)
    assert list(partner.tokens.values_list("token_hash", "kind")) == [
        (token_hash(token_b), PartnerToken.Kind.CREDENTIALS)
    ]
    response = ocpi(token_b).get("/ocpi/2.2.1/credentials")
    assert response.status_code == 200
    assert response.json()["data"]["token"] == token_b


@pytest.mark.parametrize("status_code", [2001, 3001, 3003])
def test_register_refused_on_post_stores_nothing(own_parties, fake_partner, status_code):
    token_a = token_generate()
    fake_partner.accepted_tokens.add(token_a)
    fake_partner.credentials_status = status_code

    with pytest.raises(RegistrationError, match=f"refused our registration.*OCPI {status_code}"):
        partner_register(versions_url=fake_partner.versions_url, token=token_a, name="fake")

    assert requests_of(fake_partner, "POST")  # it got as far as the POST
    assert nothing_stored()
    assert not Party.objects.filter(partner__isnull=False).exists()


def test_register_refused_keeps_existing_partner_row_without_tokens(own_parties, fake_partner):
    previous, _ = make_partner(name="fake", status=Partner.Status.UNREGISTERED, kind=PartnerToken.Kind.REGISTRATION)
    PartnerToken.objects.filter(partner=previous).delete()
    token_a = token_generate()
    fake_partner.accepted_tokens.add(token_a)
    fake_partner.credentials_status = 3001

    with pytest.raises(RegistrationError):
        partner_register(versions_url=fake_partner.versions_url, token=token_a, name="fake")

    previous.refresh_from_db()
    assert previous.status == Partner.Status.UNREGISTERED
    assert not previous.tokens.exists()  # the pending token B is gone
    assert not previous.endpoints.exists()


def test_register_versions_unreachable_stores_nothing(own_parties):
    with pytest.raises(RegistrationError, match="Reading the partner's versions failed: Could not GET"):
        partner_register(versions_url=DOWN_VERSIONS_URL, token=token_generate(), name="down")
    assert nothing_stored()


def test_register_with_a_token_the_partner_refuses_stores_nothing(own_parties, fake_partner):
    with pytest.raises(RegistrationError, match="HTTP 401"):
        partner_register(versions_url=fake_partner.versions_url, token=token_generate(), name="fake")
    assert [r["path"] for r in fake_partner.received] == ["/ocpi/versions"]
    assert nothing_stored()


def test_register_partner_offering_only_2_1_1_fails_before_post(own_parties, fake_partner):
    token_a = token_generate()
    fake_partner.accepted_tokens.add(token_a)
    fake_partner.versions = ["2.1.1"]

    with pytest.raises(RegistrationError, match=r"No mutually supported version.*2\.1\.1"):
        partner_register(versions_url=fake_partner.versions_url, token=token_a, name="fake")

    assert [r["path"] for r in fake_partner.received] == ["/ocpi/versions"]
    assert nothing_stored()


@pytest.mark.parametrize("token", ["has space", "tab\there", "x" * 65, "caf\u00e9", ""])
def test_register_invalid_token_is_invalid_parameters(own_parties, fake_partner, token):
    with pytest.raises(InvalidParameters, match="printable ASCII"):
        partner_register(versions_url=fake_partner.versions_url, token=token, name="fake")
    assert fake_partner.received == []
    assert nothing_stored()


def test_register_while_registered_is_refused(own_parties, fake_partner):
    partner, _ = register(fake_partner)
    fake_partner.received.clear()
    token_a = token_generate()
    fake_partner.accepted_tokens.add(token_a)

    with pytest.raises(InvalidParameters, match="registered already"):
        partner_register(versions_url=fake_partner.versions_url, token=token_a, name="fake")

    assert fake_partner.received == []
    assert partner.tokens.get().kind == PartnerToken.Kind.CREDENTIALS


class RawTokenPartner(FakePartner):
    """A partner (on an older OCPI version's habits) that only accepts the raw token in the header."""

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("Authorization", "")
        return header.startswith("Token ") and header[6:] in self.accepted_tokens


def test_register_command_with_raw_token_sends_unencoded_header(own_parties, httpserver: HTTPServer):
    raw_partner = RawTokenPartner(server=httpserver).start()
    token_a = token_generate()
    raw_partner.accepted_tokens.add(token_a)

    output = command(
        "ocpi_register", "--versions-url", raw_partner.versions_url, "--token", token_a, "--name", "raw", "--raw-token"
    )

    assert output["ok"] is True
    assert (output["partner"]["status"], output["partner"]["token_encoding"]) == ("REGISTERED", "RAW")
    assert {r["headers"]["Authorization"] for r in raw_partner.received} == {f"Token {token_a}"}
    # later calls use the raw form with token C
    raw_partner.accepted_tokens.add(raw_partner.credentials_token)
    raw_partner.received.clear()
    partner_rotate(partner=Partner.objects.get(name="raw"))
    assert {r["headers"]["Authorization"] for r in raw_partner.received} == {f"Token {raw_partner.credentials_token}"}


# --- partner_rotate --------------------------------------------------------------------------------------------------


def test_rotate_replaces_both_tokens(ocpi, own_parties, fake_partner):
    partner, _ = register(fake_partner)
    token_b = body_of(requests_of(fake_partner, "POST")[0])["token"]
    token_c = fake_partner.credentials_token
    fake_partner.credentials_token = token_generate()
    fake_partner.roles = [
        {"role": "CPO", "business_details": {"name": "Fake CPO"}, "party_id": "FKC", "country_code": "DE"},
        {"role": "EMSP", "business_details": {"name": "Fake eMSP"}, "party_id": "FKE", "country_code": "DE"},
    ]
    fake_partner.received.clear()

    partner = partner_rotate(partner=partner)

    assert [(r["method"], r["path"]) for r in fake_partner.received] == [
        ("GET", "/ocpi/versions"),
        ("GET", "/ocpi/2.2.1"),
        ("PUT", "/ocpi/2.2.1/credentials"),
    ]
    assert {r["headers"]["Authorization"] for r in fake_partner.received} == {b64(token_c)}
    new_token_b = body_of(requests_of(fake_partner, "PUT")[0])["token"]
    assert new_token_b != token_b
    assert list(partner.tokens.values_list("token_hash", "kind")) == [
        (token_hash(new_token_b), PartnerToken.Kind.CREDENTIALS)
    ]
    assert partner.token_out() == fake_partner.credentials_token != token_c
    assert partner.status == Partner.Status.REGISTERED
    assert sorted(partner.parties.values_list("party_id", flat=True)) == ["FKC", "FKE"]
    assert ocpi(token_b).get("/ocpi/versions").status_code == 401
    assert ocpi(new_token_b).get("/ocpi/versions").status_code == 200


def test_rotate_refused_keeps_old_tokens(ocpi, own_parties, fake_partner):
    partner, _ = register(fake_partner)
    token_b = body_of(requests_of(fake_partner, "POST")[0])["token"]
    token_c = fake_partner.credentials_token
    fake_partner.credentials_status = 3001

    with pytest.raises(RegistrationError, match="refused the credentials update"):
        partner_rotate(partner=partner)

    offered = body_of(requests_of(fake_partner, "PUT")[0])["token"]
    assert list(partner.tokens.values_list("token_hash", "kind")) == [
        (token_hash(token_b), PartnerToken.Kind.CREDENTIALS)
    ]
    partner.refresh_from_db()
    assert (partner.status, partner.token_out()) == (Partner.Status.REGISTERED, token_c)
    assert ocpi(token_b).get("/ocpi/2.2.1/credentials").status_code == 200
    assert ocpi(offered).get("/ocpi/versions").status_code == 401


def test_rotate_partner_unreachable_creates_no_pending_token(own_parties):
    partner, token = make_partner(base_url="http://127.0.0.1:9/ocpi")
    with pytest.raises(RegistrationError, match="Reading the partner's versions failed"):
        partner_rotate(partner=partner)
    assert list(partner.tokens.values_list("token_hash", flat=True)) == [token_hash(token)]


def test_rotate_unregistered_partner_is_invalid(own_parties):
    partner, _ = make_partner(status=Partner.Status.INVITED, kind=PartnerToken.Kind.REGISTRATION)
    with pytest.raises(InvalidParameters, match="not registered"):
        partner_rotate(partner=partner)


# --- partner_unregister -----------------------------------------------------------------------------------------------


def test_unregister_deletes_remotely_and_locally(ocpi, own_parties, fake_partner):
    partner, _ = register(fake_partner)
    token_b = body_of(requests_of(fake_partner, "POST")[0])["token"]
    fake_partner.received.clear()

    assert partner_unregister(partner=partner) == ""

    assert [(r["method"], r["path"]) for r in fake_partner.received] == [("DELETE", "/ocpi/2.2.1/credentials")]
    assert fake_partner.received[0]["headers"]["Authorization"] == b64(fake_partner.credentials_token)
    partner.refresh_from_db()
    assert partner.status == Partner.Status.UNREGISTERED
    assert (partner.token_out_encrypted, partner.last_error) == ("", "")
    assert not partner.tokens.exists()
    assert ocpi(token_b).get("/ocpi/versions").status_code == 401


def test_unregister_partner_down_still_unregisters_locally(ocpi, own_parties):
    partner, token = make_partner(base_url="http://127.0.0.1:9/ocpi")

    remote_error = partner_unregister(partner=partner)

    assert "cannot reach" in remote_error
    partner.refresh_from_db()
    assert partner.status == Partner.Status.UNREGISTERED
    assert partner.last_error == f"Unregister: {remote_error}"
    assert not partner.tokens.exists()
    assert ocpi(token).get("/ocpi/versions").status_code == 401


def test_unregister_partner_answering_405_is_no_remote_error(own_parties, httpserver: HTTPServer):
    httpserver.expect_request("/ocpi/2.2.1/credentials", method="DELETE").respond_with_data(
        envelope_body(status_code=2000, message="Not registered"), status=405, content_type="application/json"
    )
    partner, _ = make_partner(base_url=httpserver.url_for("/ocpi"))

    assert partner_unregister(partner=partner) == ""

    httpserver.check_assertions()
    partner.refresh_from_db()
    assert (partner.status, partner.last_error) == (Partner.Status.UNREGISTERED, "")


# --- partner_endpoints_refresh --------------------------------------------------------------------------------------


def test_endpoints_refresh_replaces_endpoints(own_parties, fake_partner):
    partner, _ = register(fake_partner)
    fake_partner.extra_endpoints = [
        {"identifier": "tariffs", "role": "SENDER", "url": fake_partner.server.url_for("/ocpi/2.2.1/tariffs")}
    ]
    fake_partner.received.clear()

    partner = partner_endpoints_refresh(partner=partner)

    assert {r["headers"]["Authorization"] for r in fake_partner.received} == {b64(fake_partner.credentials_token)}
    assert sorted(partner.endpoints.values_list("identifier", flat=True)) == ["credentials", "tariffs"]
    assert partner.endpoint_url("tariffs", "SENDER") == fake_partner.server.url_for("/ocpi/2.2.1/tariffs")


def test_endpoints_refresh_failure_keeps_endpoints(own_parties, fake_partner):
    partner, _ = register(fake_partner)
    fake_partner.versions = ["2.1.1"]

    with pytest.raises(UnsupportedVersion, match="No mutually supported version"):
        partner_endpoints_refresh(partner=partner)

    assert list(partner.endpoints.values_list("identifier", flat=True)) == ["credentials"]


def test_endpoints_refresh_unregistered_is_invalid(own_parties):
    partner, _ = make_partner(status=Partner.Status.UNREGISTERED)
    with pytest.raises(InvalidParameters):
        partner_endpoints_refresh(partner=partner)


# --- management commands --------------------------------------------------------------------------------------------


def test_invite_command_twice_resets_token_a(ocpi, ocpi_base_url, own_parties):
    first = command("ocpi_invite", "--name", "newcomer")
    second = command("ocpi_invite", "--name", "newcomer")

    assert (first["ok"], first["partner"], first["versions_url"]) == (
        True,
        "newcomer",
        f"{ocpi_base_url}/ocpi/versions",
    )
    assert first["token"] != second["token"]
    partner = Partner.objects.get(name="newcomer")
    assert partner.status == Partner.Status.INVITED
    assert list(partner.tokens.values_list("kind", flat=True)) == [PartnerToken.Kind.REGISTRATION]
    assert ocpi(first["token"]).get("/ocpi/versions").status_code == 401
    assert ocpi(second["token"]).get("/ocpi/versions").status_code == 200


def test_invite_command_refuses_registered_partner(own_parties):
    partner, token = make_partner(name="registered")
    message, output = command_error("ocpi_invite", "--name", "registered")
    assert "registered already" in message
    assert output["ok"] is False
    assert list(partner.tokens.values_list("token_hash", flat=True)) == [token_hash(token)]


def test_register_rotate_partners_unregister_commands(own_parties, fake_partner):
    token_a = token_generate()
    fake_partner.accepted_tokens.add(token_a)

    registered = command("ocpi_register", "--versions-url", fake_partner.versions_url, "--token", token_a)

    # without --name the partner is named after the host of its versions URL
    name = urlsplit(fake_partner.versions_url).hostname
    assert registered["partner"]["name"] == name
    assert registered["partner"]["status"] == "REGISTERED"
    assert registered["partner"]["roles"] == ["DE*FKC CPO"]
    fake_partner.accepted_tokens.add(fake_partner.credentials_token)
    old_token_c = fake_partner.credentials_token
    fake_partner.credentials_token = token_generate()

    rotated = command("ocpi_rotate", "--partner", name)
    assert (rotated["ok"], rotated["partner"]["status"]) == (True, "REGISTERED")
    assert Partner.objects.get(name=name).token_out() == fake_partner.credentials_token

    listed = command("ocpi_partners")
    assert [(p["name"], p["status"], p["version"]) for p in listed["partners"]] == [(name, "REGISTERED", "2.2.1")]
    assert listed["partners"][0]["endpoints"] == [
        {"identifier": "credentials", "role": "SENDER", "url": fake_partner.server.url_for("/ocpi/2.2.1/credentials")}
    ]
    printed = json.dumps(listed) + json.dumps(registered) + json.dumps(rotated)
    for secret in (token_a, old_token_c, fake_partner.credentials_token):
        assert secret not in printed  # commands never print tokens we hold

    fake_partner.accepted_tokens.add(fake_partner.credentials_token)
    unregistered = command("ocpi_unregister", "--partner", name)
    assert (unregistered["remote_error"], unregistered["partner"]["status"]) == ("", "UNREGISTERED")
    assert requests_of(fake_partner, "DELETE")
    assert command("ocpi_partners")["partners"][0]["status"] == "UNREGISTERED"


def test_register_command_failure_prints_json_error_and_stores_nothing(own_parties, fake_partner):
    token_a = token_generate()
    fake_partner.accepted_tokens.add(token_a)
    fake_partner.credentials_status = 3003

    message, output = command_error(
        "ocpi_register", "--versions-url", fake_partner.versions_url, "--token", token_a, "--name", "fake"
    )

    assert output == {"ok": False, "error": message}
    assert "OCPI 3003" in message
    assert nothing_stored()


def test_register_command_token_with_spaces_is_refused(own_parties, fake_partner):
    message, output = command_error(
        "ocpi_register", "--versions-url", fake_partner.versions_url, "--token", "two words", "--name", "fake"
    )
    assert output["ok"] is False
    assert "printable ASCII" in message
    assert fake_partner.received == []


@pytest.mark.parametrize("name", ["ocpi_rotate", "ocpi_unregister"])
def test_commands_on_unknown_partner_fail(db, name):
    with pytest.raises(CommandError, match="No partner named 'ghost'"):
        call_command(name, "--partner", "ghost", stdout=StringIO())


def test_unregister_command_partner_down_reports_remote_error(own_parties):
    make_partner(name="gone", base_url="http://127.0.0.1:9/ocpi")
    output = command("ocpi_unregister", "--partner", "gone")
    assert output["ok"] is True
    assert "cannot reach" in output["remote_error"]
    assert output["partner"]["status"] == "UNREGISTERED"


def test_reinviting_an_unregistered_partner_forgets_its_stale_endpoints(own_parties):
    partner, _ = make_partner(name="old")
    partner_unregister(partner=partner)  # its endpoint is a closed port: unregistered locally anyway

    partner, _ = partner_invite(name="old")

    assert partner.status == Partner.Status.INVITED
    assert not partner.endpoints.exists()
    assert partner.version == ""
    assert PartnerToken.objects.get(partner=partner).kind == PartnerToken.Kind.REGISTRATION


def test_stored_token_that_cannot_be_decrypted_is_a_clear_error(own_parties, settings):
    partner, _ = make_partner(name="rekeyed")
    settings.OCPI_TOKEN_ENCRYPTION_KEY = Fernet.generate_key().decode()  # the key changed since the token was stored

    with pytest.raises(ServerError, match="cannot be decrypted"):
        partner_rotate(partner=partner)
