"""The embedded default's SQLite backend queues write transactions on a file lock (ocpi_core.db_backends.sqlite3):
held from a transaction's start to its commit, rollback or close; a second transaction waits its turn, then runs on
what the first committed; a wait longer than the connection's timeout fails as SQLite's own would, and the queue
keeps working after it. Connections of two threads, as of two processes: each transaction opens the lock file
anew, so they queue alike."""

import fcntl
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import OperationalError, connections, transaction

from config.settings.base import SQLITE_ENGINE, sqlite_options

ALIAS = "writers_queue_test"


@pytest.fixture
def database(tmp_path: Path, django_db_blocker: Any) -> Iterator[Path]:
    """An SQLite file served by the platform's backend under ALIAS, as config.settings.base sets it up (timeout 2 s
    here, so the timeout test is short)."""
    path = tmp_path / "db.sqlite3"
    with sqlite3.connect(path) as setup:
        setup.execute("CREATE TABLE t (n INTEGER)")
    connections.settings[ALIAS] = {
        **connections.settings["default"],
        "ENGINE": SQLITE_ENGINE,
        "NAME": str(path),
        "OPTIONS": {**sqlite_options(), "timeout": 2},
        "TEST": {"NAME": str(path)},
        "CONN_MAX_AGE": 0,
        "ATOMIC_REQUESTS": False,
    }
    try:
        with django_db_blocker.unblock():
            yield path
    finally:
        connections[ALIAS].close()
        del connections[ALIAS]  # this thread's wrapper, kept by the handler
        del connections.settings[ALIAS]


def _queue_taken(path: Path) -> bool:
    """Whether some transaction holds the writers' lock file (a try that does not wait)."""
    with open(f"{path}-writers", "a+b") as file:
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(file.fileno(), fcntl.LOCK_UN)
        return False


def _rows() -> list[int]:
    with connections[ALIAS].cursor() as cursor:
        cursor.execute("SELECT n FROM t ORDER BY rowid")
        return [row[0] for row in cursor.fetchall()]


def _insert(n: int) -> None:
    with connections[ALIAS].cursor() as cursor:
        cursor.execute("INSERT INTO t VALUES (%s)", [n])


def _in_thread(target: Any) -> threading.Thread:
    def run() -> None:
        try:
            target()
        finally:
            connections[ALIAS].close()  # this thread's connection

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_the_lock_is_held_from_a_transactions_start_to_its_end(database: Path) -> None:
    assert not _queue_taken(database)
    with transaction.atomic(using=ALIAS):
        assert _queue_taken(database)
        _insert(1)
        with transaction.atomic(using=ALIAS):  # a savepoint: still the same turn
            _insert(2)
        assert _queue_taken(database)
    assert not _queue_taken(database)  # committed

    def fails() -> None:
        with transaction.atomic(using=ALIAS):
            _insert(3)
            raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        fails()
    assert not _queue_taken(database)  # rolled back
    assert _rows() == [1, 2]
    connections[ALIAS].set_autocommit(False)  # a transaction the connection's close ends
    _insert(4)
    connections[ALIAS].close()
    assert not _queue_taken(database)
    _insert(5)  # autocommit: no transaction, no turn taken
    assert not _queue_taken(database)
    assert _rows() == [1, 2, 5]


def test_a_second_transaction_waits_its_turn_and_runs_on_what_the_first_committed(database: Path) -> None:
    holding, release, second_began = threading.Event(), threading.Event(), threading.Event()
    seen: list[list[int]] = []

    def first() -> None:
        with transaction.atomic(using=ALIAS):
            _insert(1)
            holding.set()
            assert release.wait(10)
            _insert(2)

    def second() -> None:
        with transaction.atomic(using=ALIAS):
            second_began.set()
            seen.append(_rows())
            _insert(3)

    one = _in_thread(first)
    assert holding.wait(10)
    two = _in_thread(second)
    assert not second_began.wait(0.3)  # waiting for its turn
    assert _queue_taken(database)
    release.set()
    one.join(10)
    two.join(10)
    assert seen == [[1, 2]]  # it began after the first's commit, and saw all of it
    assert _rows() == [1, 2, 3]
    assert not _queue_taken(database)


def test_a_wait_past_the_timeout_fails_as_sqlite_would_and_the_queue_goes_on(database: Path) -> None:
    holding, release = threading.Event(), threading.Event()

    def first() -> None:
        with transaction.atomic(using=ALIAS):
            _insert(1)
            holding.set()
            assert release.wait(20)

    one = _in_thread(first)
    assert holding.wait(10)
    started = time.monotonic()

    def waits() -> None:
        with transaction.atomic(using=ALIAS):
            _insert(2)

    with pytest.raises(OperationalError, match="database is locked"):
        waits()
    assert time.monotonic() - started >= 2  # the connection's timeout
    release.set()
    one.join(10)
    deadline = time.monotonic() + 10  # the abandoned wait takes the lock once free, and lets go of it at once
    while _queue_taken(database):
        assert time.monotonic() < deadline
        time.sleep(0.01)
    with transaction.atomic(using=ALIAS):
        _insert(3)
    assert _rows() == [1, 3]


def test_an_in_memory_database_has_no_queue(tmp_path: Path, django_db_blocker: Any) -> None:
    connections.settings[ALIAS] = {
        **connections.settings["default"],
        "ENGINE": SQLITE_ENGINE,
        "NAME": ":memory:",
        "OPTIONS": sqlite_options(),
        "TEST": {"NAME": ":memory:"},
    }
    try:
        with django_db_blocker.unblock(), transaction.atomic(using=ALIAS), connections[ALIAS].cursor() as cursor:
            cursor.execute("SELECT 1")
        assert connections[ALIAS]._queue_fd is None  # type: ignore[attr-defined]
        assert not any(tmp_path.iterdir())
        assert not Path(":memory:-writers").exists()
    finally:
        connections[ALIAS].close()
        del connections[ALIAS]  # this thread's wrapper, kept by the handler
        del connections.settings[ALIAS]


def test_a_child_forked_during_a_transaction_does_not_keep_its_turn(database: Path) -> None:
    """A lock belongs to the open file, which a forked child shares (a Celery pool forking while its beat writes):
    the parent's commit frees the turn while the child lives, whether or not the child has run yet, and the child
    does not take itself for the holder of its parent's turn (its own transactions queue like any other)."""
    reading, writing = os.pipe()
    with transaction.atomic(using=ALIAS):
        _insert(1)
        child = os.fork()
        if child == 0:  # the child: says whether it believes it holds a turn, then lives on, doing nothing
            os.close(reading)
            os.write(writing, b"holds" if connections[ALIAS]._queue_fd is not None else b"free")  # type: ignore[attr-defined]
            time.sleep(10)
            os._exit(0)
    os.close(writing)
    try:
        assert not _queue_taken(database)  # committed: the turn is free while the child lives
        with transaction.atomic(using=ALIAS):
            _insert(2)
        assert _rows() == [1, 2]
        assert os.read(reading, 16) == b"free"
    finally:
        os.close(reading)
        os.kill(child, signal.SIGKILL)
        os.waitpid(child, 0)
