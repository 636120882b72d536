"""Requests as gunicorn hands them over, as deployed (config.wsgi, scripts/run's settings), over real HTTP: a body
sent with `Transfer-Encoding: chunked` (no Content-Length) is read like any other (its fields validated, one past
OCPI_MAX_BODY_SIZE still a 413), and a long URL reaches the application's envelopes."""

from collections.abc import Iterator

import httpx
import orjson
import pytest

from tests.platforms import Platform, platforms, server_logs_on_failure, token_header

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with platforms(tmp_path_factory.mktemp("chunked"), ("a", "XC")) as (started,):
        yield started


def chunks(body: bytes, size: int = 7) -> Iterator[bytes]:
    """A body handed to httpx as an iterator: httpx sends it chunked, with no Content-Length."""
    for start in range(0, len(body), size):
        yield body[start : start + size]


def test_a_chunked_body_is_read_and_validated(platform: Platform) -> None:
    with server_logs_on_failure(platform):
        token_a = platform.manage("ocpi_invite", "--name", "B")["token"]
        body = orjson.dumps({"token": "abc", "url": "http://127.0.0.1:9/ocpi/versions"})  # no roles
        url = f"{platform.base_url}/ocpi/2.2.1/credentials"
        headers = {**token_header(token_a), "Content-Type": "application/json"}

        sent = httpx.post(url, content=chunks(body), headers=headers, timeout=20)

        assert sent.request.headers.get("Transfer-Encoding") == "chunked"
        assert "Content-Length" not in sent.request.headers
        answer = sent.json()
        assert (sent.status_code, answer["status_code"]) == (200, 2001), sent.text
        # the body was read: only the field it lacks is named (an empty body would lack token and url too)
        assert "roles" in answer["status_message"]
        assert "token" not in answer["status_message"]
        assert "url" not in answer["status_message"]
        assert platform.partner_status("B") == "INVITED"


def test_a_chunked_body_past_the_limit_is_413(platform: Platform) -> None:
    with server_logs_on_failure(platform):
        token_a = platform.manage("ocpi_invite", "--name", "C")["token"]
        body = b'{"token": "' + b"x" * (1024 * 1024 + 10) + b'"}'
        url = f"{platform.base_url}/ocpi/2.2.1/credentials"
        headers = {**token_header(token_a), "Content-Type": "application/json"}

        sent = httpx.post(url, content=chunks(body, 64 * 1024), headers=headers, timeout=20)

        assert (sent.status_code, sent.json()["status_code"]) == (413, 2000), sent.text


def test_a_long_url_gets_an_envelope(platform: Platform) -> None:
    """Past gunicorn's default request line (4,094 bytes): still the application's 404 envelope, not gunicorn's HTML
    414 (the server runs with --limit-request-line 8190)."""
    with server_logs_on_failure(platform):
        token_a = platform.manage("ocpi_invite", "--name", "D")["token"]

        answer = httpx.get(f"{platform.base_url}/ocpi/2.2.1/cpo/locations/{'L' * 6000}", headers=token_header(token_a))

        assert answer.headers["content-type"] == "application/json", answer.text[:200]
        assert (answer.status_code, answer.json()["status_code"]) == (401, 2000)  # token A: not for this module
