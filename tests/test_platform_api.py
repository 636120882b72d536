"""The platform API (/api/): staff only, JWT from /api/token/ (renewed at /api/token/refresh/)."""

from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client

from conftest import auth_header, make_partner
from ocpi_core.models import Partner, PartnerToken

PASSWORD = "correct horse battery staple"


@pytest.fixture
def staff_user(db: None) -> Any:
    return get_user_model().objects.create_user("operator", password=PASSWORD, is_staff=True)


@pytest.fixture
def plain_user(db: None) -> Any:
    return get_user_model().objects.create_user("visitor", password=PASSWORD)


def obtain(client: Client, username: str, password: str = PASSWORD) -> Any:
    return client.post("/api/token/", {"username": username, "password": password}, content_type="application/json")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_root_without_token_is_401(client: Client, db: None) -> None:
    response = client.get("/api/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer not-a-jwt", "Bearer ", "Basic b3BlcmF0b3I6eA=="])
def test_root_with_bad_credentials_is_401(client: Client, db: None, header: str) -> None:
    assert client.get("/api/", headers={"Authorization": header}).status_code == 401


def test_ocpi_partner_token_does_not_open_the_platform_api(client: Client, registered_partner: Any) -> None:
    _, token = registered_partner
    assert client.get("/api/", headers={"Authorization": auth_header(token)}).status_code == 401


def test_staff_user_obtains_a_token_pair_and_reads_the_root(client: Client, staff_user: Any) -> None:
    # given partners in several states
    make_partner(name="a")
    make_partner(name="b")
    make_partner(name="c", status=Partner.Status.INVITED, kind=PartnerToken.Kind.REGISTRATION)
    make_partner(name="d", status=Partner.Status.UNREGISTERED)

    tokens = obtain(client, "operator")
    assert tokens.status_code == 200
    assert set(tokens.json()) == {"access", "refresh"}

    response = client.get("/api/", headers=bearer(tokens.json()["access"]))
    assert response.status_code == 200
    body = response.json()
    assert body["ocpi_versions_url"] == f"{settings.OCPI_BASE_URL}/ocpi/versions"
    assert body["partners"] == {
        "INVITED": 1,
        "REGISTERING": 0,
        "REGISTERED": 2,
        "SUSPENDED": 0,
        "UNREGISTERED": 1,
    }
    assert body["links"] == {
        "schema": "http://testserver/api/schema/",
        "docs": "http://testserver/api/docs/",
        "token": "http://testserver/api/token/",
    }


def test_wrong_password_gets_no_token(client: Client, staff_user: Any) -> None:
    response = obtain(client, "operator", "wrong")
    assert response.status_code == 401
    assert "access" not in response.json()


def test_inactive_staff_user_gets_no_token(client: Client, staff_user: Any) -> None:
    staff_user.is_active = False
    staff_user.save()
    assert obtain(client, "operator").status_code == 401


def test_non_staff_user_is_403(client: Client, plain_user: Any) -> None:
    tokens = obtain(client, "visitor")
    assert tokens.status_code == 200  # a valid account gets a token ...
    response = client.get("/api/", headers=bearer(tokens.json()["access"]))
    assert response.status_code == 403  # ... but the platform API is for staff only


def test_refresh_gives_a_working_access_token(client: Client, staff_user: Any) -> None:
    refresh = obtain(client, "operator").json()["refresh"]

    response = client.post("/api/token/refresh/", {"refresh": refresh}, content_type="application/json")

    assert response.status_code == 200
    access = response.json()["access"]
    assert client.get("/api/", headers=bearer(access)).status_code == 200


def test_access_token_cannot_refresh_and_refresh_token_cannot_authenticate(client: Client, staff_user: Any) -> None:
    tokens = obtain(client, "operator").json()
    refreshed = client.post("/api/token/refresh/", {"refresh": tokens["access"]}, content_type="application/json")
    assert refreshed.status_code == 401
    assert client.get("/api/", headers=bearer(tokens["refresh"])).status_code == 401


def test_tampered_access_token_is_401(client: Client, staff_user: Any) -> None:
    access = obtain(client, "operator").json()["access"]
    header, payload, signature = access.split(".")
    tampered = f"{header}.{payload}.{signature[:-2]}{'AA' if not signature.endswith('AA') else 'BB'}"
    assert client.get("/api/", headers=bearer(tampered)).status_code == 401


# --- JSON answers only: an unknown URL or an unexpected failure under /api/ is never an HTML page ---


@pytest.mark.parametrize("url", ["/api/nope", "/api/locations/NL/OWN", "/api/cdrs/abc", "/api/token/nope/"])
def test_unknown_platform_url_is_a_json_404(client: Client, db: None, url: str) -> None:
    for method in (client.get, client.post):  # POST: no CSRF check stands in the way of the 404
        response = method(url)
        assert response.status_code == 404, (method, url)
        assert response["Content-Type"] == "application/json"
        assert response.json() == {"detail": f"No platform API resource at {url}"}


def test_unexpected_failure_under_the_platform_api_is_a_json_500(
    client: Client, staff_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a platform API view that fails unexpectedly
    from ocpi_core.api.platform import PlatformRootView

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("unexpected")

    access = obtain(client, "operator").json()["access"]
    monkeypatch.setattr(PlatformRootView, "get", boom)
    failing = Client(raise_request_exception=False)

    # when it is called, then the answer is a JSON 500 (Django's page stays for the back-office)
    response = failing.get("/api/", headers=bearer(access))
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Internal server error"}


def test_jwt_endpoints_answer_bad_input_with_json(client: Client, db: None) -> None:
    missing = client.post("/api/token/", {}, content_type="application/json")
    assert missing.status_code == 400
    assert set(missing.json()) == {"username", "password"}  # each missing field named
    broken = client.post("/api/token/", "{not json", content_type="application/json")
    assert broken.status_code == 400
    assert "detail" in broken.json()
