"""Regenerate ocpi_core/spec/definitions.json from the project's machine-readable spec reference.

The reference (`objects.json`) lives in the shared folder beside the repository
(`../shared/ocpi-2.2.1/objects.json`, overridable with OCPI_SPEC_DIR). The platform itself never
reads that folder: this script keeps only what validation needs (types, cardinality, lengths,
patterns, enums) and writes it into the package.

    python scripts/gen_spec_definitions.py
"""

import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SPEC_DIR = Path(os.environ.get("OCPI_SPEC_DIR", REPO.parent / "shared" / "ocpi-2.2.1"))
TARGET = REPO / "ocpi_core" / "spec" / "definitions.json"


def main() -> int:
    source = json.loads((SPEC_DIR / "objects.json").read_text())
    objects = {}
    for name, obj in source["objects"].items():
        fields = []
        for field in obj["fields"]:
            kept = {key: field[key] for key in ("name", "type", "card", "max_length") if key in field}
            if field.get("pattern"):
                kept["pattern"] = field["pattern"]
            fields.append(kept)
        objects[name] = {"module": obj.get("module"), "fields": fields}
    enums = {name: list(values) for name, values in source["enums"].items()}
    TARGET.write_text(json.dumps({"objects": objects, "enums": enums}, indent=1, sort_keys=True) + "\n")
    sys.stdout.write(f"wrote {TARGET.relative_to(REPO)}: {len(objects)} objects, {len(enums)} enums\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
