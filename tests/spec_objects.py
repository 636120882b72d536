"""An independent reading of the shared `objects.json` (beside the examples, never copied into the repository), strict
the way a conformance suite reading it would be: what we send must carry no unknown field, no `null`, a JSON integer
where the spec says `int`, each enum value, length, pattern and DateTime shape. Deliberately not
`ocpi_core.validation` (which is tolerant when reading, REFERENCE §17), so a rule both got wrong the same way shows."""

import json
import re
from functools import cache
from typing import Any

from conftest import examples_dir

# RFC 3339 as OCPI restricts it: UTC, optional fraction, optional Z, no numeric offset (REFERENCE §0.1)
_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?Z?")


@cache
def _spec() -> dict[str, Any]:
    spec: dict[str, Any] = json.loads((examples_dir().parent / "objects.json").read_text())
    return spec


def _enum(name: str) -> list[str]:
    values = _spec()["enums"][name]
    values = values["values"] if isinstance(values, dict) else values
    return [value["value"] if isinstance(value, dict) else value for value in values]


def spec_problems(type_name: str, value: Any, path: str = "") -> list[str]:
    """Every way `value` departs from `type_name` of objects.json, as 'path: what'; empty when it conforms."""
    return _check(type_name, value, path or type_name, None, None)


def _check(type_name: str, value: Any, path: str, max_length: int | None, pattern: str | None) -> list[str]:
    spec = _spec()
    if value is None:
        return [f"{path}: null (leave an unset optional field out)"]
    if type_name in spec["objects"]:
        return _check_object(type_name, value, path)
    if type_name in spec["enums"]:
        return [] if value in _enum(type_name) else [f"{path}: {value!r} is no {type_name}"]
    primitive = spec["primitives"][type_name]
    json_type = primitive["json"]
    if json_type == "string":
        return _check_string(type_name, value, path, max_length or primitive.get("max_length"), pattern)
    if json_type == "integer":
        if type(value) is not int:
            return [f"{path}: {value!r} is no JSON integer"]
        if max_length and len(str(abs(value))) > max_length:
            return [f"{path}: more than {max_length} digits"]
        return []
    if json_type == "number":
        return [] if type(value) in (int, float) else [f"{path}: {value!r} is no JSON number"]
    if json_type == "boolean":
        return [] if type(value) is bool else [f"{path}: {value!r} is no JSON boolean"]
    return []  # any


def _check_object(type_name: str, value: Any, path: str) -> list[str]:
    if not isinstance(value, dict):
        return [f"{path}: not a {type_name} object"]
    fields = {field["name"]: field for field in _spec()["objects"][type_name]["fields"]}
    problems = [f"{path}.{name}: not a field of {type_name}" for name in value if name not in fields]
    for name, field in fields.items():
        where = f"{path}.{name}"
        if name not in value:
            if field["card"] in ("1", "+"):
                problems.append(f"{where}: required")
            continue
        item = value[name]
        if field["card"] not in ("*", "+"):
            problems += _check(field["type"], item, where, field.get("max_length"), field.get("pattern"))
            continue
        if not isinstance(item, list):
            problems.append(f"{where}: not a list")
            continue
        if field["card"] == "+" and not item:
            problems.append(f"{where}: empty")
        for index, element in enumerate(item):
            problems += _check(
                field["type"], element, f"{where}[{index}]", field.get("max_length"), field.get("pattern")
            )
    return problems


def _check_string(type_name: str, value: Any, path: str, max_length: int | None, pattern: str | None) -> list[str]:
    if not isinstance(value, str):
        return [f"{path}: {value!r} is no JSON string"]
    problems = []
    if max_length and len(value) > max_length:
        problems.append(f"{path}: {len(value)} characters, at most {max_length}")
    if pattern and not re.fullmatch(pattern, value):
        problems.append(f"{path}: {value!r} does not match {pattern}")
    if type_name == "DateTime" and not _DATETIME.fullmatch(value):
        problems.append(f"{path}: {value!r} is no OCPI DateTime")
    if type_name == "CiString" and not all(" " <= char <= "~" for char in value):
        problems.append(f"{path}: not printable ASCII")
    if any(char < " " or "\x7f" <= char <= "\x9f" for char in value):
        problems.append(f"{path}: control characters")
    return problems
