"""The generic OCPI field validator on the configuration objects (REFERENCE §4-5) and OCPI DateTime parsing (§0.1,
§17 item 15). Unit tests: the validator is a pure function; the HTTP paths using it are in the credentials tests."""

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from conftest import examples_dir
from ocpi_core.envelope import format_datetime, parse_datetime
from ocpi_core.exceptions import InvalidParameters
from ocpi_core.validation import validate, validation_errors


def credentials() -> dict[str, Any]:
    return {
        "token": "ebf3b399-779f-4497-9b9d-ac6ad3cc44d2",
        "url": "https://example.com/ocpi/versions",
        "roles": [
            {
                "role": "CPO",
                "party_id": "EXA",
                "country_code": "NL",
                "business_details": {
                    "name": "Example Operator",
                    "website": "https://example.com",
                    "logo": {"url": "https://example.com/logo.png", "category": "OPERATOR", "type": "png"},
                },
            }
        ],
    }


def changed(path: str, value: Any) -> dict[str, Any]:
    """credentials() with one field (dotted path, list indexes as numbers) set to `value`; `...` deletes it."""
    data = credentials()
    *parents, last = path.split(".")
    target: Any = data
    for key in parents:
        target = target[int(key)] if key.isdigit() else target[key]
    if value is ...:
        del target[last]
    else:
        target[last] = value
    return data


# --- the official examples ----------------------------------------------------------------------------------------


def _examples(pattern: str) -> list[Any]:
    return sorted(examples_dir().glob(pattern))


@pytest.mark.parametrize(
    ("pattern", "type_name"),
    [
        ("credentials_example*.json", "Credentials"),
        ("version_details_example*.json", "VersionDetails"),
    ],
)
def test_every_official_example_validates(pattern, type_name):
    files = _examples(pattern)
    assert files, pattern

    for path in files:
        assert validation_errors(type_name, json.loads(path.read_text())) == [], path.name


def test_official_versions_example_validates():
    versions = json.loads((examples_dir() / "versions_info_example.json").read_text())

    assert isinstance(versions, list)
    assert len(versions) == 2
    for version in versions:
        assert validation_errors("Version", version) == []


def test_version_details_examples_use_version_2_2():
    """INDEX.md: the spec's version details examples say "2.2"; still a valid VersionNumber."""
    for path in _examples("version_details_example*.json"):
        assert json.loads(path.read_text())["version"] == "2.2"


def test_official_credentials_example_roles_reach_every_nested_object():
    data = json.loads((examples_dir() / "credentials_example3.json").read_text())
    data["roles"][0]["business_details"]["logo"]["category"] = "SELFIE"

    assert validation_errors("Credentials", data) == [
        "roles[0].business_details.logo.category: must be one of the ImageCategory values"
    ]


# --- required fields, lists -------------------------------------------------------------------------------------


def test_valid_credentials_pass_and_validate_returns_the_data():
    data = credentials()

    assert validate("Credentials", data) is data


@pytest.mark.parametrize(
    "path",
    [
        "token",
        "url",
        "roles",
        "roles.0.role",
        "roles.0.party_id",
        "roles.0.country_code",
        "roles.0.business_details",
        "roles.0.business_details.name",
        "roles.0.business_details.logo.url",
        "roles.0.business_details.logo.category",
        "roles.0.business_details.logo.type",
    ],
)
def test_missing_required_field_is_named_by_its_path(path):
    expected = path.replace(".0.", "[0].")

    assert validation_errors("Credentials", changed(path, ...)) == [f"{expected}: is required"]
    assert validation_errors("Credentials", changed(path, None)) == [f"{expected}: is required"]


@pytest.mark.parametrize("path", ["roles.0.business_details.website", "roles.0.business_details.logo"])
def test_optional_field_may_be_absent_or_null(path):
    assert validation_errors("Credentials", changed(path, ...)) == []
    assert validation_errors("Credentials", changed(path, None)) == []


def test_list_with_plus_cardinality_must_not_be_empty():
    assert validation_errors("Credentials", changed("roles", [])) == ["roles: must contain at least one element"]
    assert validation_errors("VersionDetails", {"version": "2.2.1", "endpoints": []}) == [
        "endpoints: must contain at least one element"
    ]


def test_list_field_must_be_a_list_of_objects():
    role = credentials()["roles"][0]

    assert validation_errors("Credentials", changed("roles", role)) == ["roles: must be a list"]
    assert validation_errors("Credentials", changed("roles", [role, None])) == ["roles[1]: must not be null"]
    assert validation_errors("Credentials", changed("roles", ["CPO"])) == ["roles[0]: must be a CredentialsRole object"]


def test_body_must_be_an_object():
    assert validation_errors("Credentials", [credentials()]) == ["body: must be a JSON object (Credentials)"]
    assert validation_errors("Credentials", "token") == ["body: must be a JSON object (Credentials)"]


def test_every_broken_field_is_reported_and_validate_raises_2001():
    data = changed("token", "has space")
    data["roles"][0]["role"] = "cpo"
    data["roles"][0]["country_code"] = "NLD"

    with pytest.raises(InvalidParameters) as raised:
        validate("Credentials", data)

    assert raised.value.status_code == 2001
    message = raised.value.message
    for fragment in ("token: does not match", "roles[0].role: must be one of", "roles[0].country_code: must be at"):
        assert fragment in message


def test_unknown_fields_are_tolerated():
    data = credentials()
    data["extension"] = {"anything": [1, 2]}

    assert validation_errors("Credentials", data) == []


# --- lengths, enums, patterns, characters --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "value", "ok"),
    [
        ("token", "t" * 64, True),
        ("token", "t" * 65, False),
        ("roles.0.party_id", "EXA", True),
        ("roles.0.party_id", "EXAM", False),
        ("roles.0.country_code", "NLD", False),
        ("roles.0.business_details.name", "n" * 100, True),
        ("roles.0.business_details.name", "n" * 101, False),
        ("roles.0.business_details.logo.type", "jpeg", True),
        ("roles.0.business_details.logo.type", "jpeg2", False),
        ("url", "https://example.com/" + "u" * 235, True),
        ("url", "https://example.com/" + "u" * 236, False),
    ],
)
def test_max_lengths(path, value, ok):
    errors = validation_errors("Credentials", changed(path, value))

    assert (errors == []) is ok, errors
    if not ok:
        assert errors[0].startswith(path.replace(".0.", "[0].") + ": must be at most")


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("roles.0.role", "cpo"),
        ("roles.0.role", "MSP"),
        ("roles.0.role", ""),
        ("roles.0.role", 1),
        ("roles.0.business_details.logo.category", "operator"),
    ],
)
def test_enum_values_are_exact_and_case_sensitive(path, value):
    errors = validation_errors("Credentials", changed(path, value))

    assert len(errors) == 1
    assert errors[0].startswith(path.replace(".0.", "[0].") + ": must be one of the")


@pytest.mark.parametrize("role", ["CPO", "EMSP", "HUB", "NAP", "NSP", "OTHER", "SCSP"])
def test_every_role_is_accepted(role):
    assert validation_errors("Credentials", changed("roles.0.role", role)) == []


@pytest.mark.parametrize(
    ("token", "ok"),
    [
        ("!~", True),
        ("abc-DEF_123.=+/", True),
        ("has space", False),
        (" leading", False),
        ("tab\there", False),
        ("new\nline", False),
        ("tökén", False),
        ("", False),
    ],
)
def test_token_pattern_is_printable_ascii_without_whitespace(token, ok):
    errors = validation_errors("Credentials", changed("token", token))

    assert (errors == []) is ok, errors
    if not ok:
        assert errors[0].startswith("token: ")


@pytest.mark.parametrize(
    "value", ["Operator\x00", "Oper\x1bator", "Operator\x7f", "line\nbreak", "C1\x85control", "C1\x9fend"]
)
def test_control_characters_are_refused_in_strings(value):
    errors = validation_errors("Credentials", changed("roles.0.business_details.name", value))

    assert errors == [
        "roles[0].business_details.name: contains characters that are not allowed "
        "(control characters, or non-ASCII in a CiString)"
    ]


def test_non_ascii_is_fine_in_string_but_not_in_cistring():
    assert validation_errors("Credentials", changed("roles.0.business_details.name", "Société Électrique")) == []

    errors = validation_errors("Credentials", changed("roles.0.party_id", "ÉXA"))

    assert len(errors) == 1
    assert errors[0].startswith("roles[0].party_id: contains characters that are not allowed")


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("token", 12345, "must be a string"),
        ("url", ["https://example.com"], "must be a string"),
        ("roles.0.business_details", "Example", "must be a BusinessDetails object"),
        ("roles.0.business_details.logo.width", "512", "must be an integer"),
        ("roles.0.business_details.logo.width", True, "must be an integer"),
        ("roles.0.business_details.logo.width", 1.5, "must be an integer"),
        ("roles.0.business_details.logo.width", 123456, "must have at most 5 digits"),
    ],
)
def test_json_types(path, value, message):
    assert validation_errors("Credentials", changed(path, value)) == [f"{path.replace('.0.', '[0].')}: {message}"]


def test_image_on_its_own():
    image = {"url": "https://example.com/a.jpg", "category": "CHARGER", "type": "jpeg", "width": 512, "height": 512}

    assert validation_errors("Image", image) == []
    too_long = {**image, "thumbnail": "t" * 300}
    assert validation_errors("Image", too_long) == ["thumbnail: must be at most 255 characters"]
    assert validation_errors("Image", {"url": "https://example.com/a.jpg"}) == [
        "category: is required",
        "type: is required",
    ]


def test_business_details_on_its_own():
    assert validation_errors("BusinessDetails", {"name": "X"}) == []
    assert validation_errors("BusinessDetails", {"website": "https://x.example"}) == ["name: is required"]


def test_credentials_role_on_its_own():
    role = credentials()["roles"][0]

    assert validation_errors("CredentialsRole", role) == []
    assert validation_errors("CredentialsRole", {**role, "country_code": "N"}) == []  # CiString(2) is a maximum
    assert validation_errors("CredentialsRole", {**role, "party_id": 123}) == ["party_id: must be a string"]


# --- Version, VersionDetails -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["2.0", "2.1", "2.1.1", "2.2", "2.2.1"])
def test_every_version_number_is_accepted(version):
    assert validation_errors("Version", {"version": version, "url": "https://x.example/ocpi/v"}) == []


@pytest.mark.parametrize("version", ["2.2.2", "v2.2.1", 2.2, ""])
def test_unknown_version_number_is_refused(version):
    assert validation_errors("Version", {"version": version, "url": "https://x.example/ocpi/v"}) == [
        "version: must be one of the VersionNumber values"
    ]


def test_version_details_endpoint_rules():
    details: dict[str, Any] = {
        "version": "2.2.1",
        "endpoints": [
            {"identifier": "credentials", "role": "SENDER", "url": "https://x.example/ocpi/2.2.1/credentials"},
            {"identifier": "locations", "role": "RECEIVER", "url": "https://x.example/ocpi/2.2.1/locations"},
        ],
    }
    broken = copy.deepcopy(details)
    broken["endpoints"][1]["role"] = "sender"
    del broken["endpoints"][0]["url"]

    assert validation_errors("VersionDetails", details) == []
    assert validation_errors("VersionDetails", broken) == [
        "endpoints[0].url: is required",
        "endpoints[1].role: must be one of the InterfaceRole values",
    ]


# --- partial mode (PATCH bodies) ----------------------------------------------------------------------------------


def test_partial_mode_allows_absent_required_fields_but_checks_present_ones():
    assert validation_errors("Credentials", {"url": "https://example.com/ocpi/versions"}, partial=True) == []
    assert validation_errors("Credentials", {}, partial=True) == []
    assert validation_errors("Credentials", {"token": "a b"}, partial=True) == [
        "token: does not match the pattern [\\x21-\\x7E]+"
    ]
    # null is not "absent": it would erase a required field
    assert validation_errors("Credentials", {"token": None}, partial=True) == ["token: is required"]
    assert validation_errors("Credentials", {}) == ["token: is required", "url: is required", "roles: is required"]


def test_partial_mode_applies_only_at_the_top_level():
    """Nested objects of a PATCH are complete objects (the spec patches top-level fields)."""
    errors = validation_errors("Credentials", {"roles": [{"role": "CPO"}]}, partial=True)

    assert errors == [
        "roles[0].business_details: is required",
        "roles[0].party_id: is required",
        "roles[0].country_code: is required",
    ]


def test_error_list_is_bounded():
    data = changed("roles", [{"role": "X"}] * 50)

    assert len(validation_errors("Credentials", data)) == 20


# --- DateTime ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2015-06-29T20:39:09Z", datetime(2015, 6, 29, 20, 39, 9, tzinfo=UTC)),
        ("2015-06-29T20:39:09", datetime(2015, 6, 29, 20, 39, 9, tzinfo=UTC)),
        ("2015-06-29T20:39:09.5Z", datetime(2015, 6, 29, 20, 39, 9, 500_000, tzinfo=UTC)),
        ("2015-06-29T20:39:09.123Z", datetime(2015, 6, 29, 20, 39, 9, 123_000, tzinfo=UTC)),
        ("2015-06-29T20:39:09.123456", datetime(2015, 6, 29, 20, 39, 9, 123_456, tzinfo=UTC)),
        ("2015-06-29T20:39:09.123456789", datetime(2015, 6, 29, 20, 39, 9, 123_456, tzinfo=UTC)),
        ("2015-06-29T20:39:09.123456789Z", datetime(2015, 6, 29, 20, 39, 9, 123_456, tzinfo=UTC)),
    ],
)
def test_datetime_parsing_accepts_utc_with_or_without_z_and_fractions(value, expected):
    parsed = parse_datetime(value)

    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "value",
    [
        "2015-06-29T20:39:09+00:00",
        "2015-06-29T20:39:09+01:00",
        "2015-06-29T20:39:09.000-05:00",
        "2015-06-29 20:39:09Z",
        "2015-06-29T20:39Z",
        "2015-06-29",
        "2015-02-30T00:00:00Z",
        "2015-06-29T24:00:00Z",
        "2015-06-29T20:39:09z",
        "2015-06-29T20:39:09.Z",
        "2015-06-29T20:39:09.1234567890Z",
        " 2015-06-29T20:39:09Z",
        "2015-06-29T20:39:09Z\n",
        "\uff12\uff10\uff11\uff15-06-29T20:39:09Z",  # fullwidth digits are digits to Python, not to OCPI
        "2015-06-29T20:39:09.\u0661\u0662Z",  # Arabic-Indic digits in the fraction
        "",
        None,
        1435610349,
    ],
)
def test_datetime_parsing_rejects_offsets_and_other_forms(value):
    with pytest.raises(ValueError):  # noqa: PT011 - the message is free text; the type is the contract
        parse_datetime(value)


def test_datetime_field_in_an_object_is_validated():
    assert validation_errors("DisplayText", {"language": "en", "text": "x"}) == []
    errors = validation_errors("Session", {"last_updated": "2015-06-29T20:39:09+01:00"}, partial=True)
    assert errors == ["last_updated: must be an OCPI DateTime in UTC, e.g. 2015-06-29T20:39:09Z"]


def test_datetime_formatting_round_trips():
    value = datetime(2015, 6, 29, 20, 39, 9, 123_000, tzinfo=UTC)

    assert format_datetime(value) == "2015-06-29T20:39:09.123Z"
    assert format_datetime(value.replace(microsecond=0)) == "2015-06-29T20:39:09Z"
    assert parse_datetime(format_datetime(value)) == value
