"""Run complete instances of the platform as separate processes (gunicorn + management commands), each with its own
database, for end-to-end tests over real HTTP on loopback.

A `Platform` owns one database (a fresh PostgreSQL database when TEST_DATABASE_URL names PostgreSQL, else an SQLite
file), one gunicorn process and the environment its commands run with. Nothing here goes through the Django ORM of
the test process: tokens are read with plain SQL from the instance's own database and decrypted with its own key.
"""

import atexit
import base64
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
from cryptography.fernet import Fernet
from psycopg import sql

from ocpi_core.crypto import token_decrypt

REPO = Path(__file__).resolve().parent.parent
COMMAND_TIMEOUT = 60.0
START_TIMEOUT = 30.0
LOG_TAIL = 6000

# Environment variables of the test process that must not leak into a platform instance.
_FOREIGN_PREFIXES = ("DJANGO_", "OCPI_", "CELERY_", "DATABASE_", "TEST_")

_running: list["Platform"] = []


def free_port() -> int:
    """A TCP port nobody listens on right now (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def token_header(token: str) -> dict[str, str]:
    """`Authorization: Token <base64>` as OCPI 2.2.1 partners send it."""
    return {"Authorization": "Token " + base64.b64encode(token.encode()).decode()}


def _is_postgres(url: str) -> bool:
    return urlsplit(url).scheme in ("postgres", "postgresql", "pgsql")


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))


def _tail(path: Path) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no output)"
    return text[-LOG_TAIL:] or "(empty)"


@dataclass
class Database:
    """One instance's database: a PostgreSQL database created for the test, or an SQLite file."""

    url: str
    admin_url: str = ""  # PostgreSQL: where CREATE/DROP DATABASE run
    name: str = ""
    sqlite_path: Path | None = None

    @classmethod
    def create(cls, *, label: str, tmp_dir: Path) -> "Database":
        server_url = os.environ.get("TEST_DATABASE_URL", "")
        if server_url and _is_postgres(server_url):
            name = f"test_ocpi_e2e_{label}_{uuid.uuid4().hex[:10]}".lower()
            with psycopg.connect(server_url, autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
            return cls(url=_with_database(server_url, name), admin_url=server_url, name=name)
        path = tmp_dir / f"{label}.sqlite3"
        return cls(url=f"sqlite:///{path}", sqlite_path=path)

    def drop(self) -> None:
        if self.sqlite_path is None and self.name:
            with psycopg.connect(self.admin_url, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name)))
            self.name = ""

    def query_one(self, query: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        """One row of a plain SQL query (`%s` placeholders), straight from the instance's database."""
        if self.sqlite_path is not None:
            with sqlite3.connect(self.sqlite_path, timeout=20) as conn:
                return conn.execute(query.replace("%s", "?"), params).fetchone()
        with psycopg.connect(self.url) as conn:
            return conn.execute(query, params).fetchone()  # type: ignore[arg-type]  # our fixed test queries


@dataclass
class Platform:
    """One running instance of the platform."""

    label: str
    party_prefix: str
    tmp_dir: Path
    port: int = field(default_factory=free_port)
    secret_key: str = field(default_factory=lambda: "e2e-" + uuid.uuid4().hex + uuid.uuid4().hex)
    encryption_key: str = field(default_factory=lambda: Fernet.generate_key().decode())
    extra_env: dict[str, str] = field(default_factory=dict)
    database: Database | None = None
    process: subprocess.Popen[bytes] | None = None
    worker: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def versions_url(self) -> str:
        return f"{self.base_url}/ocpi/versions"

    @property
    def server_log(self) -> Path:
        return self.tmp_dir / f"gunicorn-{self.label}.log"

    @property
    def worker_log(self) -> Path:
        return self.tmp_dir / f"celery-{self.label}.log"

    @property
    def env(self) -> dict[str, str]:
        assert self.database is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN_PREFIXES)}
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "config.settings.local",
                "DATABASE_URL": self.database.url,
                "OCPI_BASE_URL": self.base_url,
                "OCPI_ALLOW_PRIVATE_URLS": "true",
                "DJANGO_SECRET_KEY": self.secret_key,
                "OCPI_TOKEN_ENCRYPTION_KEY": self.encryption_key,
                "CELERY_BROKER_URL": "",  # the embedded file-system broker, in a folder of this instance
                "CELERY_EMBEDDED_BROKER_DIR": str(self.tmp_dir / f"broker-{self.label}"),
                "DJANGO_STATIC_ROOT": str(self.tmp_dir / f"static-{self.label}"),
                "DJANGO_LOG_LEVEL": "INFO",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.extra_env)
        return env

    # --- lifecycle ---------------------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Create the database, migrate it and load the demo parties (prefix makes our parties differ)."""
        self.database = Database.create(label=self.label, tmp_dir=self.tmp_dir)
        self.manage("migrate", "--no-input", json_output=False)
        self.manage("ocpi_demo", "--party-prefix", self.party_prefix)

    def start(self) -> None:
        """Start gunicorn and wait until /healthz answers."""
        log = self.server_log.open("wb")
        try:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "config.wsgi",
                    "-b",
                    f"127.0.0.1:{self.port}",
                    "-w",
                    "2",
                    "--timeout",
                    "60",
                    "--graceful-timeout",
                    "3",
                    "--no-control-socket",  # the default socket path is shared by every gunicorn of the user
                    "--limit-request-line",  # as scripts/run and docker/gunicorn.conf.py
                    "8190",
                ],
                cwd=REPO,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: the workers can be reached if the master hangs
            )
        finally:
            log.close()
        _running.append(self)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"{self.label}: gunicorn exited with {self.process.returncode}\n{self.logs()}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{self.label}: /healthz did not answer within {START_TIMEOUT}s\n{self.logs()}")

    def start_worker(self) -> None:
        """Start the embedded Celery worker with its beat scheduler (as scripts/run does), reading this instance's
        own broker folder."""
        log = self.worker_log.open("wb")
        try:
            self.worker = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "config",
                    "worker",
                    "--beat",
                    "-l",
                    "WARNING",
                    "-Q",
                    "default,push,commands,sync",
                    "--pool",
                    "threads",
                    "--concurrency",
                    "4",
                    "--schedule",
                    str(self.tmp_dir / f"celerybeat-{self.label}"),
                    "--without-heartbeat",
                    "--without-mingle",
                    "--without-gossip",
                ],
                cwd=REPO,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        if self not in _running:
            _running.append(self)

    @staticmethod
    def _terminate(process: subprocess.Popen[bytes] | None) -> None:
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)  # the group started with start_new_session above
                process.wait(timeout=5)

    def stop(self) -> None:
        worker, self.worker = self.worker, None
        self._terminate(worker)
        process, self.process = self.process, None
        self._terminate(process)
        if self in _running:
            _running.remove(self)

    def close(self) -> None:
        try:
            self.stop()
        finally:
            if self.database is not None:
                self.database.drop()

    def logs(self) -> str:
        text = f"--- server log of {self.label} ({self.base_url}) ---\n{_tail(self.server_log)}"
        if self.worker_log.exists():
            text += f"\n--- worker log of {self.label} ---\n{_tail(self.worker_log)}"
        return text

    def check_alive(self) -> None:
        if self.process is None or self.process.poll() is not None:
            code = None if self.process is None else self.process.returncode
            raise AssertionError(f"{self.label}: gunicorn is not running (exit code {code})\n{self.logs()}")
        if self.worker is not None and self.worker.poll() is not None:
            raise AssertionError(f"{self.label}: the worker exited with {self.worker.returncode}\n{self.logs()}")

    # --- commands ----------------------------------------------------------------------------------------------

    def run_command(self, *args: str) -> subprocess.CompletedProcess[str]:
        """`python manage.py <args>` in this instance's environment."""
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
            check=False,
        )

    def manage(self, *args: str, json_output: bool = True) -> Any:
        """Run a management command that must succeed; returns its JSON output (stdout)."""
        result = self.run_command(*args)
        if result.returncode != 0:
            raise AssertionError(
                f"{self.label}: manage.py {' '.join(args)} exited with {result.returncode}\n"
                f"stdout: {result.stdout}\nstderr: {result.stderr[-LOG_TAIL:]}\n{self.logs()}"
            )
        if not json_output:
            return result.stdout
        try:
            return json.loads(result.stdout)
        except json.JSONDecodeError as exc:
            raise AssertionError(
                f"{self.label}: manage.py {' '.join(args)} printed no JSON: {result.stdout!r}"
            ) from exc

    def shell(self, code: str) -> Any:
        """Run Python in this instance (`manage.py shell -c`); returns the JSON its last printed line holds."""
        result = self.run_command("shell", "-c", code)
        if result.returncode != 0:
            raise AssertionError(
                f"{self.label}: manage.py shell failed ({result.returncode})\nstdout: {result.stdout}\n"
                f"stderr: {result.stderr[-LOG_TAIL:]}"
            )
        lines = result.stdout.strip().splitlines()
        return json.loads(lines[-1]) if lines else None

    def partners(self) -> dict[str, dict[str, Any]]:
        """`ocpi_partners`, by partner name."""
        return {p["name"]: p for p in self.manage("ocpi_partners")["partners"]}

    # --- direct database reads -------------------------------------------------------------------------------------

    def partner_status(self, partner_name: str) -> str | None:
        """The partner's status as stored (None when there is no such partner)."""
        assert self.database is not None
        row = self.database.query_one("SELECT status FROM ocpi_core_partner WHERE name = %s", (partner_name,))
        return None if row is None else str(row[0])

    def query(self, query: str, *params: Any) -> tuple[Any, ...] | None:
        """One row of a plain SQL query on this instance's database."""
        assert self.database is not None
        return self.database.query_one(query, params)

    def token_out(self, partner_name: str) -> str:
        """The clear token this instance presents to `partner_name` ('' when it holds none)."""
        assert self.database is not None
        row = self.database.query_one(
            "SELECT token_out_encrypted FROM ocpi_core_partner WHERE name = %s", (partner_name,)
        )
        assert row is not None, f"{self.label} has no partner named {partner_name!r}"
        return token_decrypt(row[0], key=self.encryption_key) if row[0] else ""

    # --- HTTP --------------------------------------------------------------------------------------------------

    def get(self, path: str, token: str) -> httpx.Response:
        self.check_alive()
        return httpx.get(self.base_url + path, headers=token_header(token), timeout=30)

    def api_login(self, username: str = "e2e-operator") -> str:
        """A JWT access token of the platform API for a staff user created here (POST /api/token/)."""
        password = uuid.uuid4().hex
        self.shell(
            "from django.contrib.auth import get_user_model; import json\n"
            f"get_user_model().objects.create_user({username!r}, password={password!r}, is_staff=True)\n"
            "print(json.dumps(True))"
        )
        response = httpx.post(
            f"{self.base_url}/api/token/", json={"username": username, "password": password}, timeout=30
        )
        assert response.status_code == 200, response.text
        return str(response.json()["access"])

    def api(self, method: str, path: str, jwt: str, **kwargs: Any) -> httpx.Response:
        """A platform API call (/api/...) with a JWT from `api_login`."""
        self.check_alive()
        return httpx.request(
            method, self.base_url + path, headers={"Authorization": f"Bearer {jwt}"}, timeout=30, **kwargs
        )


def _stop_all() -> None:
    for platform in list(_running):
        try:
            platform.stop()
        except Exception as exc:  # best effort at interpreter exit
            sys.stderr.write(f"could not stop platform {platform.label}: {exc}\n")


atexit.register(_stop_all)


@contextmanager
def platforms(
    tmp_dir: Path, *specs: tuple[str, str], workers: bool = False, extra_env: dict[str, str] | None = None
) -> Iterator[list[Platform]]:
    """Prepare (in parallel) and start one platform per (label, party prefix), with its Celery worker and beat when
    `workers`; everything is torn down on exit."""
    started = [
        Platform(label=label, party_prefix=prefix, tmp_dir=tmp_dir, extra_env=dict(extra_env or {}))
        for label, prefix in specs
    ]
    try:
        with ThreadPoolExecutor(max_workers=len(started)) as pool:
            for future in [pool.submit(p.prepare) for p in started]:
                future.result()
        for platform in started:
            platform.start()
            if workers:
                platform.start_worker()
        yield started
    finally:
        errors = []
        with ThreadPoolExecutor(max_workers=len(started)) as pool:  # both stop (and drop) at the same time
            for platform, future in [(p, pool.submit(p.close)) for p in started]:
                try:
                    future.result()
                except Exception as exc:
                    errors.append(f"{platform.label}: {exc}")
        if errors:
            raise RuntimeError("tearing down the platforms failed: " + "; ".join(errors))


@contextmanager
def server_logs_on_failure(*instances: Platform) -> Iterator[None]:
    """Re-raise any failure with the servers' logs attached."""
    try:
        yield
    except Exception as exc:
        logs = "\n".join(p.logs() for p in instances)
        raise AssertionError(f"{exc}\n\n{logs}") from exc
