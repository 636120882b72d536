"""The embedded SQLite database is shared by gunicorn and the Celery worker: a transaction that reads and then writes
while the other process writes must wait for the lock, not fail with "database is locked"."""

import json
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

from conftest import REPO


def _options(url: str) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DATABASE_"))}
    env.update({"DJANGO_SETTINGS_MODULE": "config.settings.local", "DATABASE_URL": url})
    code = "import json; from django.conf import settings; print(json.dumps(settings.DATABASES['default']['OPTIONS']))"
    out = subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); " + code],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def test_sqlite_transactions_take_the_write_lock_when_they_begin(tmp_path: Path) -> None:
    options = _options(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    assert options == {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",  # tests/test_sqlite_default.py: served
    }


def test_immediate_transactions_wait_where_deferred_ones_fail(tmp_path: Path) -> None:
    """Why: the same read-then-write while another connection writes, deferred (fails at once) and immediate
    (waits for the other's commit, then succeeds)."""
    path = tmp_path / "db.sqlite3"
    with sqlite3.connect(path) as setup:
        setup.execute("CREATE TABLE t (n INTEGER)")
        setup.execute("INSERT INTO t VALUES (0)")

    def attempt(mode: str) -> str:
        other = sqlite3.connect(path, timeout=5, isolation_level=None, check_same_thread=False)
        mine = sqlite3.connect(path, timeout=5, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        other.execute("UPDATE t SET n = n + 1")
        commit = threading.Timer(0.3, lambda: other.execute("COMMIT"))
        commit.start()
        try:
            mine.execute(f"BEGIN {mode}")
            mine.execute("SELECT n FROM t").fetchone()
            mine.execute("UPDATE t SET n = n + 10")
            mine.execute("COMMIT")
            return "ok"
        except sqlite3.OperationalError as exc:
            if mine.in_transaction:
                mine.execute("ROLLBACK")
            return str(exc)
        finally:
            commit.join()
            mine.close()
            other.close()

    assert attempt("DEFERRED") == "database is locked"
    assert attempt("IMMEDIATE") == "ok"
