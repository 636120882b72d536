"""The Credentials handshake end to end (REFERENCE §5.3-5.6) between two instances of the platform: separate
processes, separate databases, real HTTP on loopback, driven only through the management commands.

Instance A hosts parties NL*XAC / NL*XAE, instance B NL*XBC / NL*XBE. The tokens each side presents to the other are
read from that side's own database (plain SQL) and decrypted with that side's own key.
"""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.platforms import Platform, platforms, server_logs_on_failure

pytestmark = pytest.mark.e2e

A_ROLES = ["NL*XAC CPO", "NL*XAE EMSP"]
B_ROLES = ["NL*XBC CPO", "NL*XBE EMSP"]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Platform, Platform]]:
    """Instances A and B, migrated, with demo parties, served by gunicorn; stopped and dropped afterwards."""
    tmp_dir: Path = tmp_path_factory.mktemp("two-platforms")
    with platforms(tmp_dir, ("a", "XA"), ("b", "XB")) as (a, b):
        yield a, b


def assert_token_valid(platform: Platform, token: str) -> None:
    """The token opens the platform's versions and its credentials endpoint, which echoes it back."""
    assert token, f"no token held for {platform.label}"
    versions = platform.get("/ocpi/versions", token)
    assert versions.status_code == 200, versions.text
    assert [v["version"] for v in versions.json()["data"]] == ["2.2.1"]
    credentials = platform.get("/ocpi/2.2.1/credentials", token)
    assert credentials.status_code == 200, credentials.text
    data = credentials.json()["data"]
    assert (data["token"], data["url"]) == (token, platform.versions_url)


def assert_token_rejected(platform: Platform, token: str) -> None:
    for path in ("/ocpi/versions", "/ocpi/2.2.1/credentials"):
        response = platform.get(path, token)
        assert response.status_code == 401, f"{platform.label} {path}: {response.status_code} {response.text}"
        assert response.json()["status_code"] == 2000


def assert_registered(platform: Platform, name: str, peer: Platform, roles: list[str]) -> dict[str, Any]:
    partner = platform.partners()[name]
    assert partner["status"] == "REGISTERED", partner
    assert partner["version"] == "2.2.1"
    assert partner["versions_url"] == peer.versions_url
    assert partner["roles"] == roles
    credentials = [e["url"] for e in partner["endpoints"] if e["identifier"] == "credentials"]
    assert credentials == [f"{peer.base_url}/ocpi/2.2.1/credentials"]
    return partner


def held_tokens(a: Platform, b: Platform) -> tuple[str, str]:
    """(token A presents to B, token B presents to A)."""
    return a.token_out("B"), b.token_out("A")


def rotate(initiator: Platform, name: str, a: Platform, b: Platform) -> None:
    """Rotate from `initiator` (its partner is `name`): both old tokens die, the new ones work."""
    old_a_to_b, old_b_to_a = held_tokens(a, b)
    result = initiator.manage("ocpi_rotate", "--partner", name)
    assert result["ok"] is True
    assert result["partner"]["status"] == "REGISTERED"
    a_to_b, b_to_a = held_tokens(a, b)
    assert len({old_a_to_b, old_b_to_a, a_to_b, b_to_a}) == 4, "rotation must replace both tokens"
    assert_token_rejected(b, old_a_to_b)
    assert_token_rejected(a, old_b_to_a)
    assert_token_valid(b, a_to_b)
    assert_token_valid(a, b_to_a)
    assert (a.partner_status("B"), b.partner_status("A")) == ("REGISTERED", "REGISTERED")


def unregister(initiator: Platform, name: str, a: Platform, b: Platform) -> None:
    """Unregister from `initiator`: both sides UNREGISTERED, both tokens dead, nothing held any more."""
    a_to_b, b_to_a = held_tokens(a, b)
    result = initiator.manage("ocpi_unregister", "--partner", name)
    assert (result["ok"], result["remote_error"], result["partner"]["status"]) == (True, "", "UNREGISTERED")
    peer, peer_name = (b, "A") if initiator is a else (a, "B")
    assert peer.partners()[peer_name]["status"] == "UNREGISTERED"
    assert initiator.partner_status(name) == "UNREGISTERED"
    assert_token_rejected(b, a_to_b)
    assert_token_rejected(a, b_to_a)
    assert held_tokens(a, b) == ("", "")


def test_b_registers_with_a_rotates_both_ways_and_unregisters(pair: tuple[Platform, Platform]) -> None:
    a, b = pair
    with server_logs_on_failure(a, b):
        # (a) A invites B out of band; B registers with A using token A.
        invite = a.manage("ocpi_invite", "--name", "B")
        token_a = invite["token"]
        assert (invite["partner"], invite["versions_url"]) == ("B", a.versions_url)
        assert a.get("/ocpi/versions", token_a).status_code == 200
        assert a.get("/ocpi/2.2.1/credentials", token_a).status_code == 200
        assert a.partner_status("B") == "INVITED"

        registered = b.manage("ocpi_register", "--versions-url", a.versions_url, "--token", token_a, "--name", "A")
        assert registered["ok"] is True
        assert registered["partner"]["roles"] == A_ROLES
        assert_registered(b, "A", a, A_ROLES)
        assert_registered(a, "B", b, B_ROLES)
        assert_token_rejected(a, token_a)  # token A died with the handshake
        a_to_b, b_to_a = held_tokens(a, b)
        assert token_a not in (a_to_b, b_to_a)
        assert a_to_b != b_to_a
        assert_token_valid(b, a_to_b)
        assert_token_valid(a, b_to_a)
        # a second registration while registered is refused and changes nothing
        again = b.run_command("ocpi_register", "--versions-url", a.versions_url, "--token", b_to_a, "--name", "A")
        assert again.returncode == 1
        assert json.loads(again.stdout)["ok"] is False
        assert "registered already" in json.loads(again.stdout)["error"]
        assert held_tokens(a, b) == (a_to_b, b_to_a)

        # (b) token rotation from B's side, then from A's side.
        rotate(b, "A", a, b)
        rotate(a, "B", a, b)

        # (c) B unregisters.
        unregister(b, "A", a, b)


def test_a_registers_with_b_after_unregistration_rotates_and_unregisters(pair: tuple[Platform, Platform]) -> None:
    """(d) The other way round; after the first test, both sides re-use their UNREGISTERED partner rows."""
    a, b = pair
    with server_logs_on_failure(a, b):
        invite = b.manage("ocpi_invite", "--name", "A")
        token_a = invite["token"]
        assert invite["versions_url"] == b.versions_url
        assert b.partner_status("A") == "INVITED"

        registered = a.manage("ocpi_register", "--versions-url", b.versions_url, "--token", token_a, "--name", "B")
        assert registered["partner"]["status"] == "REGISTERED"
        assert_registered(a, "B", b, B_ROLES)
        assert_registered(b, "A", a, A_ROLES)
        assert_token_rejected(b, token_a)
        a_to_b, b_to_a = held_tokens(a, b)
        assert token_a not in (a_to_b, b_to_a)
        assert_token_valid(b, a_to_b)
        assert_token_valid(a, b_to_a)

        rotate(a, "B", a, b)
        unregister(a, "B", a, b)


def test_register_with_an_unknown_token_fails_and_stores_nothing(pair: tuple[Platform, Platform]) -> None:
    a, b = pair
    with server_logs_on_failure(a, b):
        result = b.run_command(
            "ocpi_register", "--versions-url", a.versions_url, "--token", "not-a-token-of-a", "--name", "Stranger"
        )
        assert result.returncode == 1, result.stdout
        assert json.loads(result.stdout)["ok"] is False
        assert "Stranger" not in b.partners()
        assert a.partner_status("Stranger") is None
