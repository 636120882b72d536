"""The roaming demo: two complete instances of the platform on this machine, A a CPO and B an eMSP, play the roaming
story step by step (tests/roaming_story.py, the code the end-to-end test runs) and stop again.

Each instance runs gunicorn and its embedded Celery worker with beat (file-system broker), on its own SQLite file, or
on its own fresh PostgreSQL database when DATABASE_URL (or TEST_DATABASE_URL) names a PostgreSQL server. Everything it
creates is removed at the end (`--keep` leaves the folder with the logs and SQLite files).

    scripts/roaming-demo [--keep]
"""

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.platforms import _is_postgres, platforms  # noqa: E402
from tests.roaming_story import STORY_ENV, play  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--keep", action="store_true", help="keep the folder with logs (and SQLite files)")
    args = parser.parse_args(argv)
    database_url = os.environ.get("DATABASE_URL", "")
    if database_url and _is_postgres(database_url) and not os.environ.get("TEST_DATABASE_URL"):
        os.environ["TEST_DATABASE_URL"] = database_url  # where tests.platforms creates the two databases
    engine = "PostgreSQL" if _is_postgres(os.environ.get("TEST_DATABASE_URL", "")) else "SQLite"
    tmp_dir = Path(tempfile.mkdtemp(prefix="ocpi-roaming-demo-"))
    started = time.monotonic()

    def say(text: str) -> None:
        print(f"[{time.monotonic() - started:5.1f}s] {text}", flush=True)

    say(f"Preparing two instances ({engine}, migrate + demo data) in {tmp_dir} ...")
    try:
        with platforms(tmp_dir, ("a", "XA"), ("b", "XB"), workers=True, extra_env=STORY_ENV) as (a, b):
            try:
                play(a, b, say)
            except Exception:
                print("\n" + a.logs() + "\n" + b.logs(), file=sys.stderr)
                raise
            say("Stopping both instances ...")
    finally:
        if args.keep:
            say(f"Logs kept in {tmp_dir}")
        else:
            shutil.rmtree(tmp_dir, ignore_errors=True)
    say("Done: the roaming story played from registration to unregistration.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
