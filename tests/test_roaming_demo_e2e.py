"""The README's roaming demo (scripts/roaming-demo) end to end: two complete instances on SQLite narrate the roaming
story of tests/test_roaming_e2e.py (kept apart from it: each takes half a minute or more, and pytest-xdist hands whole
files to its workers)."""

import os
import re
import subprocess
import sys

import pytest

from tests.platforms import REPO

pytestmark = pytest.mark.e2e


def test_the_readme_demo_plays_the_story_on_sqlite() -> None:
    """scripts/roaming-demo (its Python part): two more instances, on SQLite this time (the pair above runs on
    PostgreSQL when TEST_DATABASE_URL names one), narrate the same story and stop; nothing is left behind."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_", "TEST_DATABASE_"))}
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "roaming_demo.py")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr[-8000:]
    lines = result.stdout.splitlines()
    assert "(SQLite," in lines[0]
    drop = next(m for line in lines if (m := re.search(r"charging went from ([\d.]+) kW to ([\d.]+) kW", line)))
    assert float(drop[2]) < 4.2 < 9 < float(drop[1]), drop[0]  # 11 kW, then 3.7 kW (energy in 0.1 Wh per period)
    assert any("incl. VAT" in line for line in lines), result.stdout
    assert "11. B unregistered" in result.stdout
    assert lines[-1].endswith("Done: the roaming story played from registration to unregistration.")
