"""The spec's official examples (read from the examples folder beside the repository, never copied into it) as a
conformance suite would use them, over real HTTP against the live server:

- every receiver example INDEX.md does not mark INVALID is sent as the file's own bytes (digits as written) and comes
  back from GET with the same JSON types, field by field: an `int` stays a JSON integer, nothing comes back `null`
  or added, every number equal digit for digit (read as Decimal);
- each EVSE and Connector of the Location examples is accepted at its own PUT URL;
- each Credentials example registers with us, its roles stored;
- what our Senders answer for the demo data (ocpi_demo) conforms to `objects.json`, read strictly (tests/spec_objects).

The modules' own example tests (locations/tests/test_examples.py, the Tariffs/Tokens/Sessions/CDRs receiver tests)
cover PATCH examples, INVALID examples and the 2001 messages.
"""

import io
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import httpx
import pytest
from django.core.management import call_command

from conftest import EXAMPLES_DIR, examples_dir, make_partner
from locations.tests.test_examples import _files, _index, _is_location
from ocpi_core.constants import Role, StatusCode
from ocpi_core.models import Partner, PartnerToken, Party
from tests.spec_objects import spec_problems

JSON = {"Content-Type": "application/json"}
# INDEX.md's module column -> (our receiver URL of one object, role of the party that owns the example)
RECEIVERS = {
    "Locations / Location": ("/ocpi/2.2.1/emsp/locations/{country_code}/{party_id}/{id}", Role.CPO),
    "Tariffs / Tariff": ("/ocpi/2.2.1/emsp/tariffs/{country_code}/{party_id}/{id}", Role.CPO),
    "Sessions / Session": ("/ocpi/2.2.1/emsp/sessions/{country_code}/{party_id}/{id}", Role.CPO),
    "Tokens / Token": ("/ocpi/2.2.1/cpo/tokens/{country_code}/{party_id}/{uid}?type={type}", Role.EMSP),
    "CDRs / CDR": ("/ocpi/2.2.1/emsp/cdrs", Role.CPO),
}


def exact(text: str) -> Any:
    return json.loads(text, parse_float=Decimal)


def ok(response: httpx.Response, http_status: int = 200) -> Any:
    body = exact(response.text)
    assert (response.status_code, body["status_code"]) == (http_status, StatusCode.SUCCESS), response.text
    return body.get("data")


def differences(sent: Any, got: Any, path: str = "") -> list[str]:
    """Where `got` is not `sent`: a field missing or added, another JSON type (1 vs 1.0), another value."""
    if type(sent) is not type(got):
        return [f"{path or 'body'}: sent {sent!r}, got {got!r}"]
    if isinstance(sent, dict):
        found = [f"{path}.{name}: sent, not returned" for name in sent if name not in got]
        found += [f"{path}.{name}: returned, not sent ({got[name]!r})" for name in got if name not in sent]
        for name in sent.keys() & got.keys():
            found += differences(sent[name], got[name], f"{path}.{name}")
        return found
    if isinstance(sent, list):
        if len(sent) != len(got):
            return [f"{path}: {len(sent)} items sent, {len(got)} returned"]
        pairs = enumerate(zip(sent, got, strict=True))
        return [line for index, (one, other) in pairs for line in differences(one, other, f"{path}[{index}]")]
    return [] if sent == got else [f"{path}: sent {sent!r}, got {got!r}"]


def _is_receiver_example(row: dict[str, str]) -> bool:
    return row["module"] in RECEIVERS and "INVALID" not in row["verdict"]


@pytest.mark.parametrize("name", _files(_is_receiver_example))
def test_every_receiver_example_comes_back_as_sent(
    ocpi: Callable[..., httpx.Client], own_parties: Any, ocpi_base_url: str, name: str
) -> None:
    row = next(row for row in _index() if row["file"] == name)
    raw = (examples_dir() / name).read_text()
    example = exact(raw)
    url, role = RECEIVERS[row["module"]]
    _, token = make_partner(name="examples", roles=((example["country_code"], example["party_id"], role),))
    client = ocpi(token)
    if row["module"] == "CDRs / CDR":  # a CPO sends a CDR to the eMSP owning its token: ours
        owner = example["cdr_token"]
        Party.objects.create(country_code=owner["country_code"], party_id=owner["party_id"], role=Role.EMSP)
        url = client.post(url, content=raw, headers=JSON).headers["Location"]
    else:
        url = url.format(**example)
        ok(client.put(url, content=raw, headers=JSON), 201)

    got = ok(client.get(url))

    assert differences(example, got) == []


@pytest.mark.parametrize("name", _files(_is_location))
def test_every_evse_and_connector_of_the_location_examples_is_accepted_at_its_own_url(
    ocpi: Callable[..., httpx.Client], own_parties: Any, name: str
) -> None:
    example = json.loads((examples_dir() / name).read_text())
    _, token = make_partner(name="cpo", roles=((example["country_code"], example["party_id"], Role.CPO),))
    client = ocpi(token)
    location_url = "/ocpi/2.2.1/emsp/locations/{country_code}/{party_id}/{id}".format(**example)
    ok(client.put(location_url, json={name: value for name, value in example.items() if name != "evses"}), 201)

    for evse in example.get("evses", []):  # the EVSE with its first connector, then the others one by one
        first, *others = evse["connectors"]
        ok(client.put(f"{location_url}/{evse['uid']}", json={**evse, "connectors": [first]}), 201)
        for connector in others:
            ok(client.put(f"{location_url}/{evse['uid']}/{connector['id']}", json=connector), 201)

    assert differences(example, ok(client.get(location_url))) == []  # every last_updated is at most the Location's


def _credentials_examples() -> list[Any]:
    names = sorted(path.name for path in EXAMPLES_DIR.glob("credentials_example*.json"))
    return names or [pytest.param("absent", marks=pytest.mark.skip(reason=f"no OCPI examples at {EXAMPLES_DIR}"))]


@pytest.mark.parametrize("name", _credentials_examples())
def test_every_credentials_example_registers_with_its_roles(
    ocpi: Callable[..., httpx.Client], ocpi_base_url: str, own_parties: Any, fake_partner: Any, name: str
) -> None:
    example = json.loads((examples_dir() / name).read_text())
    partner, token_a = make_partner(name="new", status=Partner.Status.INVITED, kind=PartnerToken.Kind.REGISTRATION)
    fake_partner.roles = example["roles"]  # what its credentials endpoint answers too
    fake_partner.accepted_tokens.add(example["token"])

    answer = ok(ocpi(token_a).post("/ocpi/2.2.1/credentials", json={**example, "url": fake_partner.versions_url}))

    assert spec_problems("Credentials", answer) == []
    stored = Party.objects.filter(partner=partner).values_list("country_code", "party_id", "role", "name")
    assert sorted(stored) == sorted(
        (role["country_code"], role["party_id"], role["role"], role["business_details"]["name"])
        for role in example["roles"]
    )


def test_what_our_senders_answer_for_the_demo_data_conforms_to_objects_json(
    ocpi: Callable[..., httpx.Client], own_parties: Any, ocpi_base_url: str
) -> None:
    call_command("ocpi_demo", stdout=io.StringIO())
    _, emsp_token = make_partner(name="emsp", roles=(("NL", "DME", Role.EMSP),))  # the demo tokens' party
    _, cpo_token = make_partner(name="cpo", roles=(("DE", "CPX", Role.CPO),))
    emsp, cpo = ocpi(emsp_token), ocpi(cpo_token)
    problems: list[str] = []
    counts: dict[str, int] = {}

    def check(client: httpx.Client, path: str, type_name: str, *, many: bool = False, post: Any = None) -> Any:
        response = client.post(path, json=post) if post else client.get(path)
        body = json.loads(response.text)  # floats stay floats: an int field must come as a JSON integer
        assert (response.status_code, body.get("status_code")) == (200, StatusCode.SUCCESS), (path, response.text)
        problems.extend(f"{path}: {line}" for line in spec_problems("ResponseFormat", body))
        items = body["data"] if many else [body["data"]]
        for index, item in enumerate(items):
            problems.extend(f"{path}: {line}" for line in spec_problems(type_name, item, f"{type_name}[{index}]"))
        counts[type_name] = counts.get(type_name, 0) + len(items)
        return body["data"]

    locations = check(emsp, "/ocpi/2.2.1/cpo/locations", "Location", many=True)
    for location in locations:
        check(emsp, f"/ocpi/2.2.1/cpo/locations/{location['id']}", "Location")
        for evse in location["evses"]:
            check(emsp, f"/ocpi/2.2.1/cpo/locations/{location['id']}/{evse['uid']}", "EVSE")
            for connector in evse["connectors"]:
                check(emsp, f"/ocpi/2.2.1/cpo/locations/{location['id']}/{evse['uid']}/{connector['id']}", "Connector")
    check(emsp, "/ocpi/2.2.1/cpo/tariffs", "Tariff", many=True)
    check(emsp, "/ocpi/2.2.1/cpo/sessions", "Session", many=True)
    check(emsp, "/ocpi/2.2.1/cpo/cdrs", "CDR", many=True)
    tokens = check(cpo, "/ocpi/2.2.1/emsp/tokens", "Token", many=True)
    check(
        cpo,
        f"/ocpi/2.2.1/emsp/tokens/{tokens[0]['uid']}/authorize?type={tokens[0]['type']}",
        "AuthorizationInfo",
        post={"location_id": locations[0]["id"]},
    )
    check(cpo, "/ocpi/2.2.1/credentials", "Credentials")
    check(cpo, "/ocpi/versions", "Version", many=True)
    check(cpo, "/ocpi/2.2.1", "VersionDetails")

    assert problems == []
    for type_name in ("Location", "EVSE", "Connector", "Tariff", "Session", "CDR", "Token"):
        assert counts[type_name] >= 3, type_name  # the demo data reached every Sender
