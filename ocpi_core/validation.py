"""Field rules of every OCPI 2.2.1 object (cardinality, type, length, pattern, enum) enforced on input.

The definitions come from `ocpi_core/spec/definitions.json`, generated from the project's spec reference by
`scripts/gen_spec_definitions.py`. One validator serves every module, so a rule is written once and every
message names the offending field by its path (`evses[0].connectors[1].standard`).
"""

import json
import re
import zoneinfo
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ocpi_core.envelope import parse_datetime
from ocpi_core.exceptions import InvalidParameters

_DEFINITIONS_FILE = Path(__file__).resolve().parent / "spec" / "definitions.json"
_PRINTABLE_UTF8 = re.compile(r"^[^\x00-\x1f\x7f-\x9f]*$")
_PRINTABLE_ASCII = re.compile(r"^[\x20-\x7e]*$")
_URL_MAX = 255
_MAX_ERRORS = 20


# No OCPI object nests deeper than about eight levels (a CDR's tariffs, elements, price components ...); JSON in
# unknown fields could go on to orjson's limit of 1,024, past what PostgreSQL's JSON functions, orjson's encoder (254)
# and Python's recursion take: such a body is a 2001, not a crash where it is stored or rendered.
MAX_BODY_DEPTH = 64


def body_problem(raw: bytes, data: Any) -> str | None:
    """Why a request body that parsed as JSON cannot be taken as OCPI content, or None: nested deeper than
    MAX_BODY_DEPTH, or a NUL character (`\\u0000`) anywhere, in a key or a value, known field or not (PostgreSQL text
    cannot hold it). Both looked for only when the raw bytes allow them: a body with fewer brackets than the limit
    cannot be that deep, and a NUL can only come as that escape, so the usual body costs three byte scans."""
    if raw.count(b"{") + raw.count(b"[") > MAX_BODY_DEPTH and _depth(data) > MAX_BODY_DEPTH:
        return f"body: JSON nested more than {MAX_BODY_DEPTH} levels deep"
    if b"\\u0000" in raw and _holds_nul(data):
        return "body: a NUL character (\\u0000) is not allowed in OCPI strings"
    return None


def _depth(data: Any) -> int:
    deepest, stack = 0, [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict | list):
            deepest = max(deepest, depth)
            if deepest > MAX_BODY_DEPTH:
                return deepest
            stack.extend((item, depth + 1) for item in (value.values() if isinstance(value, dict) else value))
    return deepest


def _holds_nul(data: Any) -> bool:
    stack = [data]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return True
        elif isinstance(value, dict):
            if any("\x00" in key for key in value):
                return True
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return False


@dataclass(frozen=True, slots=True)
class FieldRule:
    """One field of an OCPI object."""

    name: str
    type: str
    card: str
    max_length: int | None
    pattern: re.Pattern[str] | None


@cache
def _definitions() -> tuple[dict[str, tuple[FieldRule, ...]], dict[str, frozenset[str]]]:
    raw = json.loads(_DEFINITIONS_FILE.read_text())
    objects = {
        name: tuple(
            FieldRule(
                name=f["name"],
                type=f["type"],
                card=f["card"],
                max_length=f.get("max_length"),
                pattern=re.compile(f["pattern"]) if f.get("pattern") else None,
            )
            for f in obj["fields"]
        )
        for name, obj in raw["objects"].items()
    }
    enums = {name: frozenset(values) for name, values in raw["enums"].items()}
    return objects, enums


def object_fields(type_name: str) -> tuple[FieldRule, ...]:
    """The field rules of one OCPI object."""
    return _definitions()[0][type_name]


def enum_values(type_name: str) -> frozenset[str]:
    """The values of one OCPI enum."""
    return _definitions()[1][type_name]


class _Collector:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def add(self, path: str, message: str) -> None:
        if len(self.errors) < _MAX_ERRORS:
            self.errors.append(f"{path}: {message}")


def _check_value(type_name: str, value: Any, rule: FieldRule | None, path: str, out: _Collector) -> None:
    objects, enums = _definitions()
    max_length = rule.max_length if rule else None
    if type_name in objects:
        if not isinstance(value, dict):
            out.add(path, f"must be a {type_name} object")
            return
        _check_object(type_name, value, path, out, partial=False)
        return
    if type_name in enums:
        if not isinstance(value, str) or value not in enums[type_name]:
            out.add(path, f"must be one of the {type_name} values")
        return
    if type_name in ("string", "CiString", "URL"):
        if not isinstance(value, str):
            out.add(path, "must be a string")
            return
        limit = _URL_MAX if type_name == "URL" and max_length is None else max_length
        if limit is not None and len(value) > limit:
            out.add(path, f"must be at most {limit} characters")
        printable = _PRINTABLE_ASCII if type_name == "CiString" else _PRINTABLE_UTF8
        if not printable.match(value):
            out.add(path, "contains characters that are not allowed (control characters, or non-ASCII in a CiString)")
        elif rule is not None and rule.pattern is not None and not rule.pattern.fullmatch(value):
            out.add(path, f"does not match the pattern {rule.pattern.pattern}")
        return
    if type_name == "DateTime":
        try:
            parse_datetime(value)
        except ValueError:
            out.add(path, "must be an OCPI DateTime in UTC, e.g. 2015-06-29T20:39:09Z")
        return
    if type_name == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            out.add(path, "must be a number")
        return
    if type_name == "int":
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
            out.add(path, "must be an integer")
        elif max_length is not None and len(str(abs(int(value)))) > max_length:
            out.add(path, f"must have at most {max_length} digits")
        return
    if type_name == "boolean":
        if not isinstance(value, bool):
            out.add(path, "must be true or false")
        return
    # "any"
    return


_DEGREES = re.compile(r"-?[0-9]{1,3}\.[0-9]{5,7}")  # what GeoLocation's patterns admit, read as a number below
_DEGREE_BOUNDS = {"latitude": 90, "longitude": 180}


@cache
def _time_zones() -> frozenset[str]:
    """The IANA time zone names this machine knows, lower-cased; empty where it has no tz database (then any name
    passes rather than every one failing)."""
    try:
        return frozenset(name.lower() for name in zoneinfo.available_timezones())
    except OSError:
        return frozenset()


def _check_content(type_name: str, data: dict[str, Any], prefix: str, out: _Collector) -> None:
    """Rules the field table cannot say: a GeoLocation's degrees within range (the pattern admits 99.999999), and a
    Location's `time_zone` one of IANA tzdata's names (compared without case: a partner's `europe/oslo` is no
    other zone)."""
    if type_name in ("GeoLocation", "AdditionalGeoLocation"):
        for name, bound in _DEGREE_BOUNDS.items():
            value = data.get(name)
            if isinstance(value, str) and _DEGREES.fullmatch(value) and abs(float(value)) > bound:
                out.add(prefix + name, f"must be between -{bound} and {bound} degrees")
    elif type_name == "Location":
        zone, zones = data.get("time_zone"), _time_zones()
        if isinstance(zone, str) and zones and zone.lower() not in zones:
            out.add(prefix + "time_zone", "must be an IANA time zone name, e.g. Europe/Oslo")


def _check_object(type_name: str, data: dict[str, Any], path: str, out: _Collector, *, partial: bool) -> None:
    prefix = f"{path}." if path else ""
    for rule in object_fields(type_name):
        field_path = prefix + rule.name
        present = rule.name in data
        value = data.get(rule.name)
        if value is None:
            if rule.card in ("1", "+") and not (partial and not present):
                out.add(field_path, "is required")
            continue
        if rule.card in ("*", "+"):
            if not isinstance(value, list):
                out.add(field_path, "must be a list")
                continue
            if rule.card == "+" and not value:
                out.add(field_path, "must contain at least one element")
            for index, item in enumerate(value):
                if item is None:
                    out.add(f"{field_path}[{index}]", "must not be null")
                else:
                    _check_value(rule.type, item, rule, f"{field_path}[{index}]", out)
        else:
            _check_value(rule.type, value, rule, field_path, out)
    _check_content(type_name, data, prefix, out)


def validation_errors(type_name: str, data: Any, *, partial: bool = False) -> list[str]:
    """Every rule `data` breaks as an OCPI `type_name` ('path: message'); empty when valid.

    `partial=True` is for PATCH bodies: required fields may be absent, but what is present must be valid.
    Unknown fields are tolerated (be tolerant when reading, REFERENCE §17).
    """
    out = _Collector()
    if not isinstance(data, dict):
        out.add("body", f"must be a JSON object ({type_name})")
        return out.errors
    _check_object(type_name, data, "", out, partial=partial)
    return out.errors


def validate(type_name: str, data: Any, *, partial: bool = False) -> dict[str, Any]:
    """Raise InvalidParameters (2001) naming every broken field; return `data` when it is a valid `type_name`."""
    errors = validation_errors(type_name, data, partial=partial)
    if errors:
        raise InvalidParameters("; ".join(errors))
    return data
