"""The whole roaming story end to end (issue #5) between two complete instances of the platform: separate processes
(gunicorn, and a Celery worker with its beat per instance on its own file-system broker), separate databases, real
HTTP on loopback.

The story itself (registration, pull, EVSE changes, token push, START_SESSION, charging, a charging profile that
lowers the power, STOP_SESSION and the priced CDR, RESERVE_NOW / CANCEL_RESERVATION, UNLOCK_CONNECTOR,
unregistration) is `tests.roaming_story.play`, which the README demo (scripts/roaming-demo) narrates: each step
checks both instances' data. A failure carries both instances' server and worker logs. The README demo's own run is
tests/test_roaming_demo_e2e.py (a file of its own, so the two long runs go to different test workers).
"""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.platforms import Platform, platforms, server_logs_on_failure
from tests.roaming_story import STORY_ENV, play

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Platform, Platform]]:
    """A (CPO) and B (eMSP), each with gunicorn and its own worker + beat; stopped and dropped afterwards."""
    tmp_dir: Path = tmp_path_factory.mktemp("roaming-e2e")
    with platforms(tmp_dir, ("a", "XA"), ("b", "XB"), workers=True, extra_env=STORY_ENV) as (a, b):
        yield a, b


def test_roaming_story_between_a_cpo_and_an_emsp_platform(pair: tuple[Platform, Platform]) -> None:
    a, b = pair
    told: list[str] = []
    with server_logs_on_failure(a, b):
        seen = play(a, b, told.append)
    assert [line.split(".")[0] for line in told if line[0].isdigit()] == [str(n) for n in range(1, 12)]
    assert seen["powers"]["after_kw"] < seen["powers"]["before_kw"]
    assert "incl. VAT" in told[-4]
