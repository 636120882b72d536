"""The embedded default really is asynchronous: a separate Celery worker process, on the file-system broker and a
SQLite database, as `scripts/run` starts it, picks up a task sent by another process and does the work."""

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO

pytestmark = pytest.mark.worker


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "DJANGO_", "CELERY_", "OCPI_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.local",
        DATABASE_URL=f"sqlite:///{tmp_path / 'db.sqlite3'}",
        CELERY_BROKER_URL="",  # the embedded default
        CELERY_EMBEDDED_BROKER_DIR=str(tmp_path / "broker"),
        OCPI_TRAFFIC_LOG_RETENTION_DAYS="30",
    )
    return env


def _run(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, *args], cwd=REPO, env=env, check=True, capture_output=True, timeout=120)


def test_task_sent_by_one_process_runs_in_the_embedded_worker(tmp_path):
    env = _env(tmp_path)
    db = tmp_path / "db.sqlite3"
    _run(env, "manage.py", "migrate", "--noinput", "-v", "0")
    with sqlite3.connect(db) as conn:  # given: one entry past retention, one recent
        for age_days, url in ((45, "/ocpi/old"), (1, "/ocpi/new")):
            conn.execute(
                "INSERT INTO ocpi_core_trafficlog (created_at, direction, method, url, module, request_id, "
                "correlation_id, request_body, response_body, error) "
                "VALUES (datetime('now', ?), 'IN', 'GET', ?, '', '', '', '', '', '')",
                (f"-{age_days} days", url),
            )
    # when: another process (as a web worker would) only enqueues the task, while no worker runs yet
    _run(env, "-c", "import django; django.setup(); from ocpi_core.tasks import traffic_log_purge_task as t; t.delay()")
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM ocpi_core_trafficlog").fetchone()[0] == 2  # nothing ran inline
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool",
            "solo",
            "-l",
            "INFO",
            "-Q",
            "default,push,commands,sync",
            "--without-heartbeat",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # then: the worker process purges the old entry and keeps the recent one
        deadline = time.monotonic() + 60
        urls: list[str] = []
        while time.monotonic() < deadline:
            with sqlite3.connect(db) as conn:
                urls = [row[0] for row in conn.execute("SELECT url FROM ocpi_core_trafficlog")]
            if urls == ["/ocpi/new"]:
                break
            assert worker.poll() is None, worker.stdout.read() if worker.stdout else "worker died"
            time.sleep(0.3)
        assert urls == ["/ocpi/new"]
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.kill()
