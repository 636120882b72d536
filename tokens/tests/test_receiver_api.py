"""CPO Receiver /ocpi/2.2.1/cpo/tokens/{country_code}/{party_id}/{token_uid}[?type=] through real HTTP (REFERENCE
§10.2): PUT creates and replaces, PATCH merges, GET returns what was stored; a token is keyed by uid and type (RFID
when the URL gives none); every error path answers an envelope and leaves what is stored as it was."""

import copy
from typing import Any

import pytest

from conftest import make_partner
from ocpi_core.constants import Role
from tokens.models import Token
from tokens.tests.factories import EXAMPLES, example, own_token, token_data

URL = "/ocpi/2.2.1/cpo/tokens"


@pytest.fixture
def emsp(own_parties: Any) -> tuple[Any, str]:
    """A registered eMSP partner owning DE*PRT, DE*TNM and NL*TNM (the parties of the official examples)."""
    return make_partner(
        name="emsp", roles=(("DE", "PRT", Role.EMSP), ("DE", "TNM", Role.EMSP), ("NL", "TNM", Role.EMSP))
    )


def stored() -> list[tuple[Any, ...]]:
    """Everything stored about tokens, to prove a rejected request changed nothing."""
    return sorted(
        Token.objects.values_list("partner_id", "country_code", "party_id", "uid", "type", "last_updated", "doc")
    )


def assert_envelope(response: Any, http_status: int, status_code: int, *words: str) -> None:
    body = response.json()
    assert (response.status_code, body["status_code"]) == (http_status, status_code), response.text
    assert "timestamp" in body
    for word in words:
        assert word in body.get("status_message", ""), body


def test_put_creates_then_get_returns_it(ocpi, emsp):
    partner, token = emsp
    data = token_data("AA11", country_code="DE", party_id="PRT", visual_number="V-1", language="nl")

    put = ocpi(token).put(f"{URL}/DE/PRT/AA11", json=data)
    got = ocpi(token).get(f"{URL}/DE/PRT/AA11")

    assert_envelope(put, 201, 1000)
    assert "data" not in put.json()
    assert_envelope(got, 200, 1000)
    assert got.json()["data"] == data
    assert Token.objects.get().partner_id == partner.pk


def test_put_replaces_and_optional_fields_left_out_are_gone(ocpi, emsp):
    _, token = emsp
    ocpi(token).put(f"{URL}/DE/PRT/AA11", json=token_data("AA11", country_code="DE", party_id="PRT", group_id="G1"))
    newer = token_data("AA11", country_code="DE", party_id="PRT", last_updated="2024-02-01T00:00:00Z", valid=False)

    put = ocpi(token).put(f"{URL}/DE/PRT/AA11", json=newer)

    assert_envelope(put, 200, 1000)
    assert ocpi(token).get(f"{URL}/DE/PRT/AA11").json()["data"] == newer  # group_id gone
    assert Token.objects.count() == 1


def test_uid_and_type_are_the_key(ocpi, emsp):
    _, token = emsp
    rfid = token_data("SAME", country_code="DE", party_id="PRT")
    app = token_data("SAME", country_code="DE", party_id="PRT", type="APP_USER", whitelist="NEVER")

    assert_envelope(ocpi(token).put(f"{URL}/DE/PRT/SAME", json=rfid), 201, 1000)
    assert_envelope(ocpi(token).put(f"{URL}/DE/PRT/SAME?type=APP_USER", json=app), 201, 1000)

    assert ocpi(token).get(f"{URL}/DE/PRT/SAME").json()["data"] == rfid  # no type: the RFID token
    assert ocpi(token).get(f"{URL}/DE/PRT/SAME?type=RFID").json()["data"] == rfid
    assert ocpi(token).get(f"{URL}/DE/PRT/SAME?type=APP_USER").json()["data"] == app
    assert_envelope(ocpi(token).get(f"{URL}/DE/PRT/SAME?type=OTHER"), 404, 2004)
    patch = {"valid": False, "last_updated": "2024-05-01T00:00:00Z"}
    assert_envelope(ocpi(token).patch(f"{URL}/DE/PRT/SAME?type=APP_USER", json=patch), 200, 1000)
    assert Token.objects.get(type="APP_USER").valid is False
    assert Token.objects.get(type="RFID").valid is True


def test_uid_is_case_insensitive(ocpi, emsp):
    _, token = emsp
    ocpi(token).put(f"{URL}/DE/PRT/abc1", json=token_data("abc1", country_code="DE", party_id="PRT"))

    assert_envelope(ocpi(token).get(f"{URL}/de/prt/ABC1"), 200, 1000)


def test_patch_merges_and_needs_last_updated(ocpi, emsp):
    _, token = emsp
    data = token_data("AA11", country_code="DE", party_id="PRT", group_id="G1")
    ocpi(token).put(f"{URL}/DE/PRT/AA11", json=data)
    before = stored()

    missing = ocpi(token).patch(f"{URL}/DE/PRT/AA11", json={"valid": False})
    assert_envelope(missing, 200, 2001, "last_updated")
    assert stored() == before

    patched = ocpi(token).patch(
        f"{URL}/DE/PRT/AA11", json={"whitelist": "NEVER", "last_updated": "2024-03-01T00:00:00Z"}
    )
    assert_envelope(patched, 200, 1000)
    got = ocpi(token).get(f"{URL}/DE/PRT/AA11").json()["data"]
    assert got == {**data, "whitelist": "NEVER", "last_updated": "2024-03-01T00:00:00Z"}


def test_older_writes_never_overwrite_newer_data(ocpi, emsp):
    _, token = emsp
    newer = token_data("AA11", country_code="DE", party_id="PRT", last_updated="2024-06-01T00:00:00Z")
    ocpi(token).put(f"{URL}/DE/PRT/AA11", json=newer)
    before = stored()

    old_put = ocpi(token).put(f"{URL}/DE/PRT/AA11", json={**newer, "valid": False, "last_updated": STAMP_OLD})
    old_patch = ocpi(token).patch(f"{URL}/DE/PRT/AA11", json={"valid": False, "last_updated": STAMP_OLD})

    assert_envelope(old_put, 200, 1000)
    assert_envelope(old_patch, 200, 1000)
    assert stored() == before


STAMP_OLD = "2023-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("path", "change", "words"),
    [
        ("DE/PRT/AA11", {"whitelist": "SOMETIMES"}, ("whitelist",)),
        ("DE/PRT/AA11", {"valid": "yes"}, ("valid",)),
        ("DE/PRT/AA11", {"issuer": "x" * 65}, ("issuer",)),
        ("DE/PRT/AA11", {"contract_id": None}, ("contract_id",)),
        ("DE/PRT/AA11", {"last_updated": "2024-01-01T00:00:00+01:00"}, ("last_updated",)),
        ("DE/PRT/AA11", {"energy_contract": {"contract_id": "1"}}, ("energy_contract.supplier_name",)),
        ("DE/PRT/AA11", {"language": "dutch"}, ("language",)),
        ("DE/PRT/AA11", {"uid": "OTHER"}, ("uid", "URL")),
        ("DE/PRT/AA11", {"party_id": "TNM"}, ("party_id",)),
        ("DE/PRT/AA11", {"type": "APP_USER"}, ("type",)),  # no ?type= addresses the RFID token
        ("DE/PRT/AA11?type=APP_USER", {}, ("type",)),
        ("DE/PRT/AA11?type=CARD", {}, ("type", "TokenType")),
    ],
)
def test_invalid_put_is_refused_naming_the_field_and_changes_nothing(ocpi, emsp, path, change, words):
    _, token = emsp
    ocpi(token).put(f"{URL}/DE/PRT/AA11", json=token_data("AA11", country_code="DE", party_id="PRT"))
    before = stored()
    body = {**token_data("AA11", country_code="DE", party_id="PRT", last_updated="2024-09-01T00:00:00Z"), **change}

    response = ocpi(token).put(f"{URL}/{path}", json=body)

    assert_envelope(response, 200, 2001, *words)
    assert stored() == before


def test_invalid_patch_is_refused_and_changes_nothing(ocpi, emsp):
    _, token = emsp
    ocpi(token).put(f"{URL}/DE/PRT/AA11", json=token_data("AA11", country_code="DE", party_id="PRT"))
    before = stored()

    bad_enum = ocpi(token).patch(
        f"{URL}/DE/PRT/AA11", json={"whitelist": "MAYBE", "last_updated": "2024-09-01T00:00:00Z"}
    )
    bad_id = ocpi(token).patch(f"{URL}/DE/PRT/AA11", json={"uid": "BB", "last_updated": "2024-09-01T00:00:00Z"})
    not_object = ocpi(token).patch(f"{URL}/DE/PRT/AA11", json=[1])
    bad_json = ocpi(token).patch(f"{URL}/DE/PRT/AA11", content=b"{nope", headers={"Content-Type": "application/json"})

    assert_envelope(bad_enum, 200, 2001, "whitelist")
    assert_envelope(bad_id, 200, 2001, "uid")
    assert_envelope(not_object, 200, 2001)
    assert_envelope(bad_json, 400, 2001)
    assert stored() == before


def test_unknown_token_get_and_patch_answer_404_2004(ocpi, emsp):
    _, token = emsp

    got = ocpi(token).get(f"{URL}/DE/PRT/NOPE")
    patched = ocpi(token).patch(f"{URL}/DE/PRT/NOPE", json={"valid": False, "last_updated": STAMP_OLD})

    assert_envelope(got, 404, 2004)
    assert_envelope(patched, 404, 2004)
    assert Token.objects.count() == 0  # a PATCH never creates


def test_partner_writes_only_under_its_own_parties(ocpi, emsp):
    _, token = emsp
    own_token("MINE")  # NL*OWE: ours
    before = stored()

    foreign = ocpi(token).put(f"{URL}/FR/XXX/AA11", json=token_data("AA11", country_code="FR", party_id="XXX"))
    ours = ocpi(token).put(f"{URL}/NL/OWE/MINE", json=token_data("MINE", last_updated="2030-01-01T00:00:00Z"))
    read_ours = ocpi(token).get(f"{URL}/NL/OWE/MINE")

    assert foreign.status_code == 404
    assert ours.status_code == 404
    assert read_ours.status_code == 404
    assert stored() == before


def test_other_partner_cannot_touch_the_token(ocpi, emsp):
    _, token = emsp
    ocpi(token).put(f"{URL}/DE/PRT/AA11", json=token_data("AA11", country_code="DE", party_id="PRT"))
    _, other = make_partner(name="other", roles=(("FR", "OTH", Role.EMSP),))
    before = stored()

    response = ocpi(other).get(f"{URL}/DE/PRT/AA11")

    assert response.status_code == 404
    assert stored() == before


def test_no_post_or_delete_and_no_list(ocpi, emsp):
    _, token = emsp
    ocpi(token).put(f"{URL}/DE/PRT/AA11", json=token_data("AA11", country_code="DE", party_id="PRT"))

    assert ocpi(token).delete(f"{URL}/DE/PRT/AA11").status_code == 405
    assert ocpi(token).post(f"{URL}/DE/PRT/AA11", json={}).status_code == 405
    assert ocpi(token).get(URL).status_code == 404
    assert Token.objects.count() == 1


def test_unauthenticated_is_401(ocpi, emsp):
    assert ocpi().get(f"{URL}/DE/PRT/AA11").status_code == 401


@pytest.mark.parametrize("name", EXAMPLES)
def test_official_examples_round_trip(ocpi, emsp, name):
    _, token = emsp
    data = example(name)
    url = f"{URL}/{data['country_code']}/{data['party_id']}/{data['uid']}?type={data['type']}"

    put = ocpi(token).put(url, json=data)
    got = ocpi(token).get(url)

    assert_envelope(put, 201, 1000)
    assert got.json()["data"] == data


def test_official_patch_example_invalidates(ocpi, emsp):
    _, token = emsp
    data = example("token_put_example.json")
    ocpi(token).put(f"{URL}/NL/TNM/012345678", json=data)

    response = ocpi(token).patch(f"{URL}/NL/TNM/012345678", json=example("token_patch_example.json"))

    assert_envelope(response, 200, 1000)
    assert ocpi(token).get(f"{URL}/NL/TNM/012345678").json()["data"] == {
        **data,
        "valid": False,
        "last_updated": "2019-06-19T02:11:11Z",
    }


def test_official_get_example_data_is_what_we_answer(ocpi, emsp):
    _, token = emsp
    expected = copy.deepcopy(example("transport_and_format_get_token_example.json"))
    data = expected["data"]
    ocpi(token).put(f"{URL}/DE/TNM/{data['uid']}", json=data)

    body = ocpi(token).get(f"{URL}/DE/TNM/{data['uid']}").json()

    assert body["data"] == data
    assert body["status_code"] == expected["status_code"]
