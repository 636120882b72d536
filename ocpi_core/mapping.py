"""Between OCPI objects (dicts, as on the wire) and model rows: one generic mapper driven by the spec definitions.

A model lists the OCPI object it stores; fields keep their OCPI names (`id` is `ocpi_id`, our `pk` stays ours).
Optional values are stored as NULL when absent, lists as NULL or a list, so a PUT comes back from GET as it was sent.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import models

from ocpi_core.envelope import format_datetime, parse_datetime
from ocpi_core.validation import object_fields


@dataclass(frozen=True)
class OcpiMapper:
    """Maps one OCPI object type onto a model. `children` are list fields stored in their own tables."""

    type_name: str
    children: frozenset[str] = frozenset()
    renamed: dict[str, str] = field(default_factory=lambda: {"id": "ocpi_id"})

    def attr(self, name: str) -> str:
        return self.renamed.get(name, name)

    def names(self) -> list[str]:
        """The OCPI fields this model stores itself, in spec order."""
        return [rule.name for rule in object_fields(self.type_name) if rule.name not in self.children]

    def to_ocpi(self, obj: models.Model) -> dict[str, Any]:
        """The object as the spec orders its fields; absent optionals omitted, DateTimes in OCPI form."""
        out: dict[str, Any] = {}
        for rule in object_fields(self.type_name):
            if rule.name in self.children:
                continue
            value = getattr(obj, self.attr(rule.name))
            if value is None or (rule.card in ("*", "+") and value == []):
                continue
            if isinstance(value, datetime):
                value = format_datetime(value)
            out[rule.name] = value
        return out

    def from_ocpi(self, data: dict[str, Any], *, partial: bool = False) -> dict[str, Any]:
        """Model field values from a (validated) OCPI object. A full object resets what it leaves out (PUT
        replaces); `partial` keeps only what is present (PATCH)."""
        values: dict[str, Any] = {}
        for rule in object_fields(self.type_name):
            if rule.name in self.children:
                continue
            if partial and rule.name not in data:
                continue
            value = data.get(rule.name)
            if value is not None and rule.type == "DateTime":
                value = parse_datetime(value)
            if value == [] and rule.card == "*":
                value = None
            values[self.attr(rule.name)] = value
        return values
