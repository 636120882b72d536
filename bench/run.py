"""The load-test harness: one command, from an empty database to a results table (see bench/README.md).

    .venv/bin/python bench/run.py --locations 100000 [--quick]

1. drops and recreates the bench database, migrates it and fills it (bench/generate.py);
2. starts, on 127.0.0.1 only, the platform under gunicorn with production settings (traffic log on, as shipped, and
   a second instance with it off) and the bare reference app (bench/bare.py) with the same gunicorn settings;
3. runs wrk (1 thread, 16 connections) per scenario, rounds interleaved over the targets, medians of the rounds:
   (a1) Link-following pages, (a1-tail) the deepest 5 % of them, (a2) random offsets, (b) one location,
   (c) PATCH of an EVSE status into the eMSP receiver; and pgbench (2 clients) on the same single-row update plus
   parent bump for (c)'s database floor;
4. (d) push: N own EVSE status changes through the service, delivered by Celery workers (Redis) to 5 local
   partner servers; delivered count and change-to-partner latency;
5. writes bench/results/locations-<N>[-quick].{json,md} and prints the table.

Every process it starts is stopped at the end (also on errors, Ctrl-C and the --max-minutes watchdog). Only
127.0.0.1 is targeted. Needs wrk, pgbench, psql, redis-cli, PostgreSQL and Redis on 127.0.0.1, and the project's
.venv (run it with the venv's python).
"""

import argparse
import base64
import json
import os
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
HOST = "127.0.0.1"
PAGE = 50
LINK_RE = re.compile(r'<([^>]+)>\s*;\s*rel="?next"?')
PARTNER_PREFIX = "/ocpi/2.2.1/emsp/locations/DE/BPC/"


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", flush=True)


def venv_bin(name: str) -> str:
    """A tool of the project's virtualenv (the one running this script, else REPO/.venv)."""
    for folder in (Path(sys.executable).parent, REPO / ".venv" / "bin"):
        if (folder / name).exists():
            return str(folder / name)
    raise SystemExit(f"{name} not found: run with the project's .venv python (.venv/bin/python bench/run.py)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


class Processes:
    """The processes this run started, each in its own process group, stopped by their ids at the end."""

    def __init__(self, logdir: Path) -> None:
        self.logdir = logdir
        self.running: list[tuple[str, subprocess.Popen[bytes], IO[bytes]]] = []

    def start(self, name: str, cmd: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        out = (self.logdir / f"{name}.log").open("ab")
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.running.append((name, proc, out))
        return proc

    def stop(self, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
        """SIGTERM to the process group this run created for `proc` (gunicorn/celery and their workers), then KILL."""
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
            except ProcessLookupError:
                pass
        for index, (_name, known, out) in enumerate(self.running):
            if known is proc:
                out.close()
                del self.running[index]
                break

    def stop_all(self) -> None:
        for _name, proc, _out in reversed(list(self.running)):
            self.stop(proc)


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process for {url} exited with {proc.returncode} (see its log)")
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310  # 127.0.0.1 only
                return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def wait_log(path: Path, needle: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{path.name}: process exited with {proc.returncode}")
        if path.exists() and needle in path.read_text(errors="replace"):
            return
        time.sleep(0.3)
    raise RuntimeError(f"{path.name}: '{needle}' not seen within {timeout} s")


def run(cmd: list[str], *, env: dict[str, str] | None = None, timeout: float = 600.0) -> str:
    result = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} ... failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.stdout


def psql(db: str, sql: str) -> str:
    return run(["psql", "-h", HOST, "-U", "postgres", "-d", db, "-v", "ON_ERROR_STOP=1", "-Atc", sql]).strip()


def redis_free_db() -> int:
    """An empty Redis database for this run's broker (15 downwards)."""
    for number in range(15, 0, -1):
        if run(["redis-cli", "-h", HOST, "-n", str(number), "dbsize"]).strip() == "0":
            return number
    raise SystemExit("no empty Redis database (1-15) for the bench broker")


def redis_clear(number: int) -> None:
    """Delete the keys the run's broker left in its (empty at start) Redis database, in bounded batches."""
    for _ in range(100):
        keys = run(["redis-cli", "-h", HOST, "-n", str(number), "--scan"]).split()
        if not keys:
            return
        run(["redis-cli", "-h", HOST, "-n", str(number), "del", *keys[:1000]])


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.workdir = Path(tempfile.mkdtemp(prefix="ocpi-bench-"))
        self.procs = Processes(self.workdir)
        self.sqlite = args.database == "sqlite"
        if self.sqlite:  # the embedded default, in this run's folder
            self.db_url = f"sqlite:///{self.workdir / 'bench.sqlite3'}"
        else:
            self.db_url = f"postgres://postgres@{HOST}:5432/{args.db_name}"
        self.secret = secrets.token_urlsafe(48)
        self.fernet = base64.urlsafe_b64encode(os.urandom(32)).decode()  # a Fernet key: 32 random bytes, Base64
        self.redis_db: int | None = None
        self.patch_base_ms = int(time.time() * 1000)
        self.results: dict[str, Any] = {"scenarios": {}, "pgbench": {}}
        self.targets: dict[str, dict[str, Any]] = {}
        self.token = ""

    # --- environment ---

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "OCPI_", "CELERY_", "DATABASE_"))}
        env.update(
            DJANGO_SETTINGS_MODULE="config.settings.production",
            DATABASE_URL=self.db_url,
            DJANGO_SECRET_KEY=self.secret,
            OCPI_TOKEN_ENCRYPTION_KEY=self.fernet,
            DJANGO_ALLOWED_HOSTS=f"{HOST},localhost",
            CELERY_BROKER_URL=f"redis://{HOST}:6379/{self.redis_db}",
            PYTHONUNBUFFERED="1",
        )
        if self.sqlite:  # as scripts/run serves it: the local settings without DEBUG, the embedded broker
            env.update(
                DJANGO_SETTINGS_MODULE="config.settings.local",
                DJANGO_DEBUG="false",
                CELERY_BROKER_URL="",
                CELERY_EMBEDDED_BROKER_DIR=str(self.workdir / "broker"),
            )
        env.update(extra)
        return env

    def gunicorn(self, name: str, app: str, port: int, env: dict[str, str]) -> None:
        cmd = [venv_bin("gunicorn")]
        if self.args.gunicorn_conf:
            cmd += ["-c", str(self.args.gunicorn_conf)]
        cmd += ["-w", "2", "-k", "sync", "-b", f"{HOST}:{port}", "--no-control-socket", "--timeout", "120", app]
        proc = self.procs.start(name, cmd, env)
        wait_http(f"http://{HOST}:{port}/healthz", proc)
        self.targets[name] = {"port": port, "proc": proc, "url": f"http://{HOST}:{port}"}
        log(f"{name} on {HOST}:{port}")

    # --- steps ---

    def prepare(self) -> dict[str, Any]:
        args = self.args
        self.redis_db = redis_free_db()
        self.partner_ports = [free_port() for _ in range(args.push_partners)]
        log(f"work dir {self.workdir}; broker redis db {self.redis_db}")
        if self.sqlite:
            log(f"database {self.db_url}")
        else:
            log(f"recreating database {args.db_name}")
            psql("postgres", f'DROP DATABASE IF EXISTS "{args.db_name}" WITH (FORCE)')
            psql("postgres", f'CREATE DATABASE "{args.db_name}"')
        run([venv_bin("python"), "manage.py", "migrate", "--noinput", "-v", "0"], env=self.env())
        log(f"generating {args.locations} locations")
        cmd = [venv_bin("python"), str(BENCH / "generate.py"), "--locations", str(args.locations)]
        cmd += ["--out", str(self.workdir), "--page", str(PAGE)]
        if args.partner_locations is not None:
            cmd += ["--partner-locations", str(args.partner_locations)]
        for port in self.partner_ports:
            cmd += ["--push-partner", f"http://{HOST}:{port}/ocpi"]
        started = time.time()
        print(run(cmd, env=self.env(), timeout=3600).strip(), flush=True)
        info: dict[str, Any] = json.loads((self.workdir / "bench.json").read_text())
        info["generate_wall_seconds"] = round(time.time() - started, 1)
        self.token = base64.b64encode(info.pop("token").encode()).decode()
        self.results["data"] = info
        return info

    def start_web(self) -> None:
        bare_env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
        bare_env["BENCH_BARE_DATA"] = str(self.workdir / "bare.json")
        self.gunicorn("bare", "bench.bare:application", free_port(), bare_env)
        port = free_port()
        self.gunicorn(
            "platform",
            "config.wsgi",
            port,
            self.env(OCPI_BASE_URL=f"http://{HOST}:{port}", OCPI_TRAFFIC_LOG_ENABLED="true"),
        )
        if self.args.traffic_log_variant:
            port = free_port()
            self.gunicorn(
                "platform-notl",
                "config.wsgi",
                port,
                self.env(OCPI_BASE_URL=f"http://{HOST}:{port}", OCPI_TRAFFIC_LOG_ENABLED="false"),
            )

    def collect_chain(self) -> list[str]:
        """Follow the platform's Link headers once, checking the walk, and keep the path of every page."""
        base = self.targets["platform"]["url"]
        path = f"/ocpi/2.2.1/cpo/locations?limit={PAGE}"
        chain: list[str] = []
        seen: set[str] = set()
        timings: list[float] = []
        total = None
        bound = self.args.locations // PAGE + 100
        for _ in range(4):  # both workers' first requests (imports, connection) are not part of the walk
            request = urllib.request.Request(base + path, headers={"Authorization": f"Token {self.token}"})  # noqa: S310
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310  # 127.0.0.1 only
                response.read()
        while path and len(chain) < bound:
            request = urllib.request.Request(base + path, headers={"Authorization": f"Token {self.token}"})  # noqa: S310
            started = time.perf_counter()
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310  # 127.0.0.1 only
                body = json.loads(response.read())
                headers = response.headers
            timings.append((time.perf_counter() - started) * 1000)
            if body.get("status_code") != 1000:
                raise RuntimeError(f"page {len(chain)} answered {body.get('status_code')}")
            total = int(headers["X-Total-Count"]) if total is None else total
            for item in body["data"]:
                seen.add(f"{item['country_code']}*{item['party_id']}*{item['id']}")
            chain.append(path)
            match = LINK_RE.search(headers.get("Link", ""))
            path = ""
            if match:
                parts = urlsplit(match.group(1))
                path = f"{parts.path}?{parts.query}"
        if total is None or len(seen) != total:
            raise RuntimeError(f"Link walk returned {len(seen)} distinct locations, X-Total-Count said {total}")
        tenth = max(1, len(timings) // 10)
        self.results["link_walk"] = {
            "pages": len(chain),
            "locations": len(seen),
            "x_total_count": total,
            "single_client_ms": {
                "first_page": round(timings[0], 2),
                "median": round(statistics.median(timings), 2),
                "first_10pct_mean": round(statistics.mean(timings[:tenth]), 2),
                "last_10pct_mean": round(statistics.mean(timings[-tenth:]), 2),
            },
        }
        log(
            f"Link walk: {len(chain)} pages, {len(seen)} distinct locations (= X-Total-Count), single client "
            f"{self.results['link_walk']['single_client_ms']}"
        )
        (self.workdir / "chain.txt").write_text("\n".join(chain) + "\n")
        tail = chain[-max(10, len(chain) // 20) :]
        (self.workdir / "chain_tail.txt").write_text("\n".join(tail) + "\n")
        return chain

    def script(self, name: str) -> Path:
        path = self.workdir / f"{name}.lua"
        if not path.exists():
            common = (BENCH / "lua" / "common.lua").read_text()
            path.write_text(common + "\n" + (BENCH / "lua" / f"{name}.lua").read_text())
        return path

    def wrk(self, script: str, target: str, script_args: list[str], duration: float) -> dict[str, Any]:
        url = self.targets[target]["url"] + "/ocpi/2.2.1/cpo/locations"
        cmd = ["wrk", "-t1", f"-c{self.args.connections}", f"-d{max(1, round(duration))}s", "--timeout", "10s"]
        cmd += ["-s", str(self.script(script)), url, "--", *script_args]
        output = run(cmd, timeout=duration + 120)
        line = next((x for x in output.splitlines() if x.startswith("BENCH_JSON ")), None)
        if line is None:
            raise RuntimeError(f"wrk printed no result:\n{output}")
        raw = json.loads(line.removeprefix("BENCH_JSON "))
        seconds = raw["duration_us"] / 1e6
        errors = sum(raw[k] for k in ("connect_errors", "read_errors", "write_errors", "timeouts")) + raw["bad"]
        return {
            "rps": round(raw["requests"] / seconds, 1),
            "p50_ms": round(raw["p50_us"] / 1000, 2),
            "p90_ms": round(raw["p90_us"] / 1000, 2),
            "p99_ms": round(raw["p99_us"] / 1000, 2),
            "max_ms": round(raw["max_us"] / 1000, 2),
            "requests": raw["requests"],
            "kb_per_response": round(raw["bytes"] / max(1, raw["requests"]) / 1024, 1),
            "errors": errors,
        }

    def scenario_args(self, scenario: str, target: str) -> tuple[str, Callable[[], list[str]]]:
        info = self.results["data"]
        total = str(self.results.get("link_walk", {}).get("x_total_count", info["own"]["listed"]))
        if scenario == "a1":
            return "chain", lambda: [self.token, str(self.workdir / "chain.txt")]
        if scenario == "a1-tail":
            return "chain", lambda: [self.token, str(self.workdir / "chain_tail.txt")]
        if scenario == "a2":
            return "offsets", lambda: [self.token, total, str(PAGE), "11"]
        if scenario == "b":
            return "location", lambda: [self.token, str(info["own"]["count"]), "12"]

        def patch_args() -> list[str]:
            self.patch_base_ms = max(self.patch_base_ms, int(time.time() * 1000))
            return [self.token, str(self.workdir / "partner_evses.txt"), PARTNER_PREFIX, str(self.patch_base_ms), "13"]

        return "patch", patch_args

    def web_scenarios(self) -> None:
        args = self.args
        for scenario in args.scenarios:
            per_target: dict[str, list[dict[str, Any]]] = {name: [] for name in self.targets}
            for name in self.targets:  # warm-up: connections, caches, lazy imports
                script, make_args = self.scenario_args(scenario, name)
                warm = self.wrk(script, name, make_args(), args.warmup)
                self.patch_base_ms += warm["requests"] + 1000
            for round_number in range(1, args.rounds + 1):
                for name in self.targets:
                    script, make_args = self.scenario_args(scenario, name)
                    figures = self.wrk(script, name, make_args(), args.duration)
                    self.patch_base_ms += figures["requests"] + 1000
                    per_target[name].append(figures)
                    log(
                        f"{scenario} round {round_number} {name}: {figures['rps']} req/s, p50 {figures['p50_ms']} "
                        f"ms, p99 {figures['p99_ms']} ms, errors {figures['errors']}"
                    )
            self.results["scenarios"][scenario] = {name: summarise(rounds) for name, rounds in per_target.items()}

    def pgbench(self) -> None:
        plocs = str(self.results["data"]["partner"]["count"])
        for name in ("evse_bump", "evse_bump_doc"):
            rounds = []
            for _ in range(self.args.rounds):
                cmd = ["pgbench", "-h", HOST, "-U", "postgres", "-n", "-c", "2", "-j", "2", "-M", "prepared"]
                cmd += ["-T", str(int(self.args.duration)), "-D", f"plocs={plocs}"]
                cmd += ["-f", str(BENCH / "pgbench" / f"{name}.sql"), self.args.db_name]
                output = run(cmd, timeout=self.args.duration + 120)
                tps = float(re.search(r"tps = ([\d.]+)", output).group(1))  # type: ignore[union-attr]
                latency = float(re.search(r"latency average = ([\d.]+) ms", output).group(1))  # type: ignore[union-attr]
                rounds.append({"tps": round(tps, 1), "latency_avg_ms": latency})
            self.results["pgbench"][name] = {
                "tps": statistics.median(r["tps"] for r in rounds),
                "tps_min": min(r["tps"] for r in rounds),
                "tps_max": max(r["tps"] for r in rounds),
                "latency_avg_ms": statistics.median(r["latency_avg_ms"] for r in rounds),
            }
            log(f"pgbench {name}: {self.results['pgbench'][name]}")

    def rss(self) -> dict[str, list[float]]:
        found: dict[str, list[float]] = {}
        for name, target in self.targets.items():
            output = run(["ps", "-o", "rss=", "--ppid", str(target["proc"].pid)])
            found[name] = [round(int(x) / 1024, 1) for x in output.split()]
        return found

    def push(self) -> None:
        args = self.args
        records_file = self.workdir / "partners.json"
        cmd = [venv_bin("python"), str(BENCH / "partners.py"), "--out", str(records_file), "--max-seconds", "3600"]
        for port in self.partner_ports:
            cmd += ["--port", str(port)]
        partners = self.procs.start("partners", cmd, self.env())
        for port in self.partner_ports:
            wait_http(f"http://{HOST}:{port}/ping", partners)
        # the platform's production worker command; only partner URLs on 127.0.0.1 need OCPI_ALLOW_PRIVATE_URLS
        worker_env = self.env(OCPI_ALLOW_PRIVATE_URLS="true", OCPI_BASE_URL=self.targets["platform"]["url"])
        workers = []
        for number in range(1, args.celery_workers + 1):
            cmd = [venv_bin("celery"), "-A", "config", "worker", "-l", "INFO", "-Q", "default,push,commands,sync"]
            cmd += ["-n", f"bench{number}@%h"]
            if args.celery_concurrency:
                cmd += ["-c", str(args.celery_concurrency)]
            workers.append(self.procs.start(f"celery{number}", cmd, worker_env))
        for number, proc in enumerate(workers, start=1):
            wait_log(self.workdir / f"celery{number}.log", "ready.", proc)
        log(
            f"push: {args.push_changes} changes (rate {args.push_rate or 'max'}/s) to {len(self.partner_ports)} "
            f"partners, {args.celery_workers} worker(s)"
        )
        out = self.workdir / "push.json"
        cmd = [venv_bin("python"), str(BENCH / "push_driver.py"), "--changes", str(args.push_changes)]
        cmd += ["--rate", str(args.push_rate), "--timeout", str(args.push_timeout), "--out", str(out)]
        run(cmd, env=worker_env, timeout=args.push_timeout + 600)
        worker_rss = []
        for proc in workers:
            pids = [proc.pid] + [int(x) for x in run(["ps", "-o", "pid=", "--ppid", str(proc.pid)]).split()]
            rss = run(["ps", "-o", "rss=", "-p", ",".join(map(str, pids))]).split()
            worker_rss += [round(int(x) / 1024, 1) for x in rss]
        for proc in workers:
            self.procs.stop(proc)
        self.procs.stop(partners)
        task_ms = []  # Celery's own "Task ... succeeded in 0.0123s" lines (-l INFO, as shipped)
        for number in range(1, args.celery_workers + 1):
            text = (self.workdir / f"celery{number}.log").read_text(errors="replace")
            pattern = r"outbox_deliver(?:_partner)?_task\[[^\]]+\] succeeded in ([\d.]+)s"  # batch or single
            task_ms += [float(x) * 1000 for x in re.findall(pattern, text)]
        driver = json.loads(out.read_text())
        records = json.loads(records_file.read_text()) if records_file.exists() else []
        self.results["push"] = push_summary(driver, records, self.partner_ports) | {
            "celery_rss_mb": worker_rss,
            "delivery_task_ms": {
                "count": len(task_ms),
                "p50": round(percentile(task_ms, 0.5) or 0, 1),
                "p95": round(percentile(task_ms, 0.95) or 0, 1),
            },
        }
        log(f"push: {self.results['push']}")

    def main(self) -> None:
        args = self.args
        started = time.time()
        code_at_start = code_version()
        self.prepare()
        self.start_web()
        if {"a1", "a1-tail", "a2"} & set(args.scenarios):
            self.collect_chain()
        self.web_scenarios()
        if "c" in args.scenarios and not self.sqlite:
            self.pgbench()
        if args.push_changes:
            self.push()
        self.results["web_rss_mb"] = self.rss()
        log(f"web worker RSS (MB): {self.results['web_rss_mb']}")
        self.results["meta"] = meta(args, time.time() - started) | code_at_start
        if code_version() != code_at_start:
            self.results["meta"]["code_changed_during_run"] = True
            log("WARNING: the code changed during the run (commit or working tree): the figures mix versions")
        write_results(self.results, args)
        if args.diagnose:
            self.diagnose()

    def diagnose(self) -> None:
        """bench/diagnose.py on the same data: SQL, EXPLAIN and profiles (after the results are safely written)."""
        args = self.args
        suffix = ("-quick" if args.quick else "") + (f"-{args.tag}" if args.tag else "")
        target = args.results_dir / f"diagnosis-{args.locations}{suffix}.md"
        cmd = [venv_bin("python"), str(BENCH / "diagnose.py"), "--bench-json", str(self.workdir / "bench.json")]
        try:
            run([*cmd, "--out", str(target)], env=self.env(), timeout=1800)
            log(f"diagnosis: {target}")
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            log(f"diagnosis failed (the results above stand): {exc}")


def summarise(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    rps = [r["rps"] for r in rounds]
    return {
        "rps": statistics.median(rps),
        "rps_min": min(rps),
        "rps_max": max(rps),
        "p50_ms": statistics.median(r["p50_ms"] for r in rounds),
        "p99_ms": statistics.median(r["p99_ms"] for r in rounds),
        "kb_per_response": rounds[0]["kb_per_response"],
        "errors": sum(r["errors"] for r in rounds),
        "rounds": rounds,
    }


def push_summary(driver: dict[str, Any], records: list[list[Any]], ports: list[int]) -> dict[str, Any]:
    """Match every change with its first arrival at every partner: delivered count and latency."""
    arrivals: dict[tuple[int, str], float] = {}
    methods: dict[str, int] = {}
    for port, arrived, method, path, _status, _stamp in records:
        methods[method] = methods.get(method, 0) + 1
        marker = "/locations/"
        suffix = path[path.index(marker) + len(marker) :] if marker in path else path
        key = (port, suffix)
        if key not in arrivals or arrived < arrivals[key]:
            arrivals[key] = arrived
    latencies: list[float] = []
    missing = 0
    for suffix, committed, _status in driver["changes"]:
        for port in ports:
            arrived = arrivals.get((port, suffix))
            if arrived is None:
                missing += 1
            else:
                latencies.append((arrived - committed) * 1000)
    expected = len(driver["changes"]) * len(ports)
    summary = driver["summary"]
    return {
        "changes": len(driver["changes"]),
        "partners": len(ports),
        "expected": expected,
        "delivered": len(latencies),
        "missing": missing,
        "requests_by_method": methods,
        "latency_ms": {
            "p50": round(percentile(latencies, 0.5) or 0, 1),
            "p95": round(percentile(latencies, 0.95) or 0, 1),
            "max": round(max(latencies, default=0), 1),
        },
        "changes_seconds": summary["changes_seconds"],
        "drain_seconds": summary["drain_seconds"],
        "deliveries_per_second": round(expected / summary["drain_seconds"], 1) if summary["drain_seconds"] else None,
        "outbox_rows": summary["deliveries"],
        "attempts": summary["attempts"],
        "service_call_ms": summary["service_call_ms"],
        "rate": summary["rate"],
    }


def _output(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=30, check=False).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def code_version() -> dict[str, Any]:
    """The commit and whether tracked files outside bench/ differ from it (read-only git commands)."""
    diff = _output(["git", "diff", "HEAD", "--stat", "--", ".", ":(exclude)bench"])
    return {
        "commit": _output(["git", "rev-parse", "--short", "HEAD"]),
        "working_tree_changed": bool(diff),
        "working_tree_diff_stat": diff.splitlines()[-1].strip() if diff else "",
    }


def meta(args: argparse.Namespace, seconds: float) -> dict[str, Any]:
    out = _output
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "cpus": os.cpu_count(),
        "database": args.database,
        "postgresql": psql("postgres", "SHOW server_version") if args.database == "postgresql" else "",
        "sqlite": sqlite3.sqlite_version,
        "wrk": out(["wrk", "-v"]).splitlines()[0] if out(["wrk", "-v"]) else "",
        "gunicorn": "-w 2 -k sync --no-control-socket" + (f" -c {args.gunicorn_conf}" if args.gunicorn_conf else ""),
        "wrk_settings": f"-t1 -c{args.connections} -d{args.duration}s, {args.rounds} rounds interleaved, median",
        "seconds": round(seconds),
    }


TARGETS = {
    "a1": ("Link pages, all depths", 0.50, 50.0),
    "a1-tail": ("Link pages, deepest 5 %", 0.50, 50.0),
    "a2": ("random offsets", 0.25, 50.0),
    "b": ("one location", 0.50, None),
    "c": ("PATCH EVSE status (receiver)", 0.40, None),
}


def write_results(results: dict[str, Any], args: argparse.Namespace) -> None:
    lines = [
        f"# Bench: {args.locations} locations{' (quick)' if args.quick else ''}{f' ({args.tag})' if args.tag else ''}",
        "",
        f"{results['meta']['date']}, commit {results['meta']['commit']}"
        f"{' + uncommitted changes' if results['meta']['working_tree_changed'] else ''}"
        f"{' (CODE CHANGED DURING THE RUN)' if results['meta'].get('code_changed_during_run') else ''}, "
        f"{results['meta']['cpus']} CPUs, "
        + (
            f"PostgreSQL {results['meta']['postgresql']}"
            if results["meta"]["postgresql"]
            else f"SQLite {results['meta']['sqlite']} (the embedded default: local settings, DEBUG off)"
        )
        + ", gunicorn "
        f"{results['meta']['gunicorn']}, wrk {results['meta']['wrk_settings']}.",
        "",
        "| scenario | target | req/s median (min-max) | p50 ms | p99 ms | KB/resp | errors | ÷ bare | goal | met |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    checks: dict[str, bool] = {}
    for scenario, per_target in results["scenarios"].items():
        title, goal_ratio, goal_p99 = TARGETS[scenario]
        bare = per_target["bare"]["rps"]
        for name, fig in per_target.items():
            ratio = fig["rps"] / bare if bare else 0.0
            fig["ratio"] = round(ratio, 3)
            goal, met = "", ""
            if name != "bare":
                ok = ratio >= goal_ratio and (goal_p99 is None or fig["p99_ms"] < goal_p99) and fig["errors"] == 0
                goal = f"≥ {goal_ratio:.2f}" + (f", p99 < {goal_p99:.0f} ms" if goal_p99 else "")
                if scenario == "c" and "evse_bump" in results["pgbench"]:
                    floor = results["pgbench"]["evse_bump"]["tps"]
                    fig["ratio_pgbench"] = round(fig["rps"] / floor, 3)
                    ok = ok and fig["rps"] >= 0.5 * floor
                    goal += f", ≥ 0.50 pgbench ({fig['ratio_pgbench']:.2f})"
                met = "yes" if ok else "**no**"
                checks[f"{scenario}/{name}"] = ok
            lines.append(
                f"| {scenario} {title} | {name} | {fig['rps']:,.0f} ({fig['rps_min']:,.0f}-{fig['rps_max']:,.0f}) | "
                f"{fig['p50_ms']:.1f} | {fig['p99_ms']:.1f} | {fig['kb_per_response']} | {fig['errors']} | "
                f"{ratio:.2f} | {goal} | {met} |"
            )
    if results["pgbench"]:
        lines += ["", "| pgbench (2 clients) | tps median (min-max) | latency avg ms |", "|---|---|---|"]
        for name, fig in results["pgbench"].items():
            lines.append(
                f"| {name} | {fig['tps']:,.0f} ({fig['tps_min']:,.0f}-{fig['tps_max']:,.0f}) | "
                f"{fig['latency_avg_ms']} |"
            )
    walk = results.get("link_walk")
    if walk:
        lines += [
            "",
            f"Link walk (one client, before the load): {walk['pages']} pages, {walk['locations']} distinct "
            f"locations = X-Total-Count; page time first {walk['single_client_ms']['first_page']} ms, median "
            f"{walk['single_client_ms']['median']} ms, first 10 % {walk['single_client_ms']['first_10pct_mean']} ms, "
            f"last 10 % {walk['single_client_ms']['last_10pct_mean']} ms.",
        ]
    push = results.get("push")
    if push:
        ok = push["delivered"] == push["expected"] and push["latency_ms"]["p95"] < 1000
        checks["d"] = ok
        lines += [
            "",
            "| push (d) | changes x partners | delivered | p50 ms | p95 ms | max ms | changes took s | drained after s "
            "| deliveries/s | goal | met |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
            f"| rate {push['rate'] or 'max'}/s | {push['changes']} x {push['partners']} | {push['delivered']} | "
            f"{push['latency_ms']['p50']:,.0f} | {push['latency_ms']['p95']:,.0f} | {push['latency_ms']['max']:,.0f} | "
            f"{push['changes_seconds']} | {push['drain_seconds']} | {push['deliveries_per_second']} | "
            f"all, p95 < 1 s | {'yes' if ok else '**no**'} |",
            "",
            f"Outbox rows: {push['outbox_rows']}; attempts {push['attempts']}; evse_status_set call "
            f"{push['service_call_ms']}; push tasks (Celery log) {push['delivery_task_ms']}; partner requests "
            f"{push['requests_by_method']}; Celery RSS MB {push['celery_rss_mb']}.",
        ]
    rss = results.get("web_rss_mb", {})
    if rss:
        worst = max((v for name, values in rss.items() if name != "bare" for v in values), default=0)
        checks["rss"] = worst < 200
        lines += ["", f"Web worker RSS after the run (MB): {rss} — goal < 200: {'yes' if worst < 200 else '**no**'}."]
    if args.diagnose:
        suffix = ("-quick" if args.quick else "") + (f"-{args.tag}" if args.tag else "")
        lines += [
            "",
            f"SQL, EXPLAIN and profiles per scenario: `diagnosis-{args.locations}{suffix}.md` (bench/diagnose.py).",
        ]
    results["checks"] = checks
    suffix = ("-quick" if args.quick else "") + (f"-{args.tag}" if args.tag else "")
    args.results_dir.mkdir(parents=True, exist_ok=True)
    stem = args.results_dir / f"locations-{args.locations}{suffix}"
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    stem.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
    print("\n".join(lines), flush=True)
    log(f"results: {stem}.md / .json")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--locations", type=int, required=True, help="own locations to generate")
    parser.add_argument("--quick", action="store_true", help="1 round of 4 s, 200 push changes: a smoke run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk/pgbench round")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of unrecorded load per target/scenario")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--scenarios", default="a1,a1-tail,a2,b,c", help="comma-separated subset")
    parser.add_argument("--partner-locations", type=int, default=None, help="default N/10, at least 1000")
    parser.add_argument(
        "--no-traffic-log-variant",
        dest="traffic_log_variant",
        action="store_false",
        help="skip the second platform instance with OCPI_TRAFFIC_LOG_ENABLED=false",
    )
    parser.add_argument("--push-changes", type=int, default=1000, help="0 skips the push scenario")
    parser.add_argument("--push-rate", type=float, default=0.0, help="changes per second (0: as fast as possible)")
    parser.add_argument("--push-partners", type=int, default=5)
    parser.add_argument("--push-timeout", type=float, default=900.0, help="longest wait for delivery (s)")
    parser.add_argument("--celery-workers", type=int, default=1)
    parser.add_argument("--celery-concurrency", type=int, default=0, help="0: Celery's default (CPU count)")
    parser.add_argument("--gunicorn-conf", type=Path, default=None, help="a gunicorn config file for both servers")
    parser.add_argument(
        "--no-diagnose",
        dest="diagnose",
        action="store_false",
        help="skip bench/diagnose.py (SQL, EXPLAIN and profile per scenario) at the end",
    )
    parser.add_argument("--db-name", default="ocpi_bench")
    parser.add_argument(
        "--database",
        choices=("postgresql", "sqlite"),
        default="postgresql",
        help="sqlite: the embedded default as scripts/run serves it (an SQLite file in the run's folder; no pgbench, "
        "no push, no diagnosis)",
    )
    parser.add_argument("--results-dir", type=Path, default=BENCH / "results")
    parser.add_argument("--tag", default="", help="suffix of the results files (e.g. paced-push)")
    parser.add_argument("--max-minutes", type=float, default=120.0, help="watchdog: stop everything after this")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.duration, args.warmup = 1, 4.0, 1.0
        args.push_changes = min(args.push_changes, 200)
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    if args.database == "sqlite":
        args.push_changes, args.diagnose = 0, False  # push needs Redis; the diagnosis reads PostgreSQL's plans
    unknown = set(args.scenarios) - set(TARGETS)
    if unknown:
        parser.error(f"unknown scenarios {sorted(unknown)}; known: {sorted(TARGETS)}")
    for tool in ("wrk", "pgbench", "psql", "redis-cli"):
        if shutil.which(tool) is None:
            parser.error(f"{tool} not found (see bench/README.md, prerequisites)")
    return args


class Watchdog(Exception):
    pass


def main() -> None:
    args = parse_args()
    bench = Bench(args)

    def expire(*_: Any) -> None:
        raise Watchdog(f"--max-minutes {args.max_minutes} reached")

    def interrupted(*_: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGALRM, expire)
    signal.signal(signal.SIGTERM, interrupted)
    signal.alarm(int(args.max_minutes * 60))
    try:
        bench.main()
    finally:
        signal.alarm(0)
        log("stopping every process this run started")
        bench.procs.stop_all()
        if bench.redis_db is not None:
            redis_clear(bench.redis_db)


if __name__ == "__main__":
    main()
