"""Where the time goes: the evidence behind the bench's figures, for the bench database run.py filled.

For each scenario's request, run in-process through the full middleware stack (django.test.Client, production
settings, the bench partner's token): the SQL it runs with per-query times, EXPLAIN (ANALYZE, BUFFERS) of every
query that took at least --explain-ms, and a cProfile summary of --repeat requests. Writes (or --out) a markdown
file. Writes are wrapped in a transaction that is rolled back, except the last case: a few own EVSE changes are
committed so that their outbox rows can be delivered (to a receiver this process serves on the first push partner's
port, with a fresh outbound token for that partner).

    .venv/bin/python bench/diagnose.py --bench-json <run dir>/bench.json --out bench/results/diagnosis-N.md
"""

import argparse
import base64
import cProfile
import io
import json
import os
import pstats
import sys
import sysconfig
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")
os.environ.setdefault("OCPI_ALLOW_PRIVATE_URLS", "true")  # the bench's push partners listen on 127.0.0.1

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402
from django.http import HttpResponse  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from locations.models import Evse  # noqa: E402
from locations.services import Key, evse_status_set  # noqa: E402
from ocpi_core.crypto import token_encrypt, token_generate  # noqa: E402
from ocpi_core.envelope import format_datetime  # noqa: E402
from ocpi_core.models import Delivery, Partner  # noqa: E402
from ocpi_core.push import outbox_deliver  # noqa: E402


class Rollback(Exception):
    pass


def rolled_back(call: Callable[[], Any]) -> Callable[[], Any]:
    """Run `call` in a transaction that is always rolled back (on_commit hooks, e.g. push enqueues, never run)."""

    def wrapper() -> Any:
        result = None
        try:
            with transaction.atomic():
                result = call()
                raise Rollback
        except Rollback:
            pass
        return result

    return wrapper


def explain(sql: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
        return "\n".join(row[0] for row in cursor.fetchall())


class Recorder:
    """Every SQL statement run while installed (connection.execute_wrapper), as sent, with its time in ms."""

    def __init__(self) -> None:
        self.queries: list[tuple[str, float]] = []

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: dict[str, Any]) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            elapsed = (time.perf_counter() - started) * 1000
            sent = connection.ops.last_executed_query(context["cursor"], sql, params) or sql
            self.queries.append((sent, elapsed))


def section(title: str, call: Callable[[], Any], *, repeat: int, explain_ms: float) -> str:
    out = [f"## {title}", ""]
    call()  # warm: imports, caches, prepared statements
    recorder = Recorder()
    with connection.execute_wrapper(recorder):
        started = time.perf_counter()
        response = call()
        wall = (time.perf_counter() - started) * 1000
    queries = recorder.queries
    db_ms = sum(ms for _sql, ms in queries)
    status = ""
    if isinstance(response, HttpResponse):
        status = f"HTTP {response.status_code}, {len(response.content):,} bytes, "
    out.append(f"{status}{len(queries)} queries, {db_ms:.1f} ms in the database of {wall:.1f} ms wall (one request).")
    out += ["", "| ms | SQL (first 220 characters) |", "|---|---|"]
    for sql, ms in queries:
        flat = " ".join(sql.split())
        out.append(f"| {ms:.2f} | `{flat[:220].replace('|', '/')}` |")
    reads = [(sql, ms) for sql, ms in queries if sql.lstrip().upper().startswith(("SELECT", "WITH"))]
    slow = [(sql, ms) for sql, ms in reads if ms >= explain_ms]
    for sql, ms in slow:
        text = rolled_back(lambda sql=sql: explain(sql))()  # type: ignore[misc]  # ANALYZE runs it: roll back
        out += [
            "",
            f"EXPLAIN (ANALYZE, BUFFERS) of the {ms:.1f} ms query:",
            "",
            "```",
            " ".join(sql.split())[:600],
            "",
            text or "(rolled back)",
            "```",
        ]
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    for _ in range(repeat):
        call()
    profiler.disable()
    per_request = (time.perf_counter() - started) * 1000 / repeat
    buffer = io.StringIO()
    stats = pstats.Stats(profiler, stream=buffer)
    stats.sort_stats("tottime").print_stats(14)
    out += ["", f"cProfile of {repeat} requests ({per_request:.1f} ms each, profiler on), top by own time:", ""]
    out += _stats_lines(buffer.getvalue())
    buffer = io.StringIO()
    stats = pstats.Stats(profiler, stream=buffer)
    # the project's own functions (not the virtualenv's), by cumulative time: where the request's time goes
    stats.sort_stats("cumulative").print_stats(rf"^{REPO}/(?!\.venv/)", 18)
    out += ["", "The project's functions by cumulative time (same profile):", ""]
    out += _stats_lines(buffer.getvalue())
    return "\n".join(out)


def _stats_lines(text: str) -> list[str]:
    lines = [line for line in text.splitlines() if line.strip()]
    start = next((i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls")), 0)
    stdlib = sysconfig.get_paths()["stdlib"] + "/"
    body = [
        line.replace(str(REPO) + "/", "").replace(sys.prefix + "/", "").replace(stdlib, "<stdlib>/")
        for line in lines[start:]
    ]
    return ["```", *body, "```", ""]


class _Ack(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_PATCH(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b'{"status_code":1000,"timestamp":"2026-01-01T00:00:00Z"}'
        # one write (see bench/partners.py: two small writes meet the delayed ACK, +40 ms)
        self.wfile.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )

    do_PUT = do_PATCH

    def log_message(self, format: str, *args: Any) -> None:
        return


def delivery_case(count: int) -> tuple[str, Callable[[], Any]] | None:
    """Deliveries of own EVSE changes to the first push partner, served by a local receiver in this process."""
    partner = Partner.objects.filter(name="push-1").first()
    url = partner.endpoint_url("locations", "RECEIVER") if partner else None
    if partner is None or not url:
        return None
    # a token this process can decrypt (run.py's encryption key is not kept after the run)
    Partner.objects.filter(pk=partner.pk).update(token_out_encrypted=token_encrypt(token_generate()))
    partner.refresh_from_db()
    port = urlsplit(url).port or 80
    try:
        server = ThreadingHTTPServer(("127.0.0.1", port), _Ack)
    except OSError:
        return None
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    evses = list(
        Evse.objects.filter(location__partner__isnull=True, location__ocpi_id__startswith="LOC", position=0)
        .select_related("location")
        .order_by("location_id")[10 : 10 + count]
    )
    ids: list[int] = []
    for evse in evses:  # committed changes: their outbox rows are what the worker would deliver
        key = Key(evse.location.country_code, evse.location.party_id, evse.location.ocpi_id, evse.uid)
        evse_status_set(key=key, status="CHARGING" if evse.status != "CHARGING" else "AVAILABLE")
        ids.append(Delivery.objects.filter(partner=partner).order_by("-pk").values_list("pk", flat=True)[0])

    def deliver() -> Any:
        return outbox_deliver(delivery_id=ids.pop(0)) if ids else None

    return "(d) outbox_deliver of one EVSE change to one partner (what each Celery task runs)", deliver


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bench-json", type=Path, required=True, help="bench.json written by generate.py")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--explain-ms", type=float, default=1.0)
    args = parser.parse_args()
    info = json.loads(args.bench_json.read_text())
    token = base64.b64encode(info["token"].encode()).decode()
    client = Client(HTTP_AUTHORIZATION=f"Token {token}", HTTP_HOST="127.0.0.1")
    total = info["own"]["listed"]
    deep = max(0, total - 50)
    first = client.get("/ocpi/2.2.1/cpo/locations?limit=50")
    link = first.headers.get("Link", "")
    cursor_path = link[link.index("/ocpi/") : link.index(">")] if "/ocpi/" in link else ""
    # a deep Link page of run.py's walk (the first of chain_tail.txt beside bench.json, ~95 % deep), when there is one
    tail = args.bench_json.parent / "chain_tail.txt"
    deep_paths = tail.read_text().split() if tail.exists() else []
    deep_path = deep_paths[0] if deep_paths else ""
    deep_link: list[tuple[str, Callable[[], Any]]] = []
    if deep_path:
        deep_link.append((f"(a1-tail) a deep Link page: GET {deep_path}", lambda: client.get(deep_path)))
    partner = info["partner"]
    evse = (
        Evse.objects.filter(location__partner__isnull=False, location__ocpi_id="PLOC000001")
        .values_list("uid", flat=True)
        .first()
    )
    own_evse = Evse.objects.filter(location__partner__isnull=True, location__ocpi_id="LOC0000002").first()
    patch_url = f"/ocpi/2.2.1/emsp/locations/{partner['country_code']}/{partner['party_id']}/PLOC000001/{evse}"

    def patch() -> Any:
        body = {"status": "CHARGING", "last_updated": format_datetime(timezone.now())}
        return client.patch(patch_url, data=json.dumps(body), content_type="application/json")

    def own_change() -> Any:
        assert own_evse is not None
        key = Key("NL", "DMC", "LOC0000002", own_evse.uid)
        return evse_status_set(key=key, status="CHARGING" if own_evse.status != "CHARGING" else "AVAILABLE")

    cases: list[tuple[str, Callable[[], Any]]] = [
        ("(a) first page: GET cpo/locations?limit=50", lambda: client.get("/ocpi/2.2.1/cpo/locations?limit=50")),
        (f"(a1) a Link page (cursor): GET {cursor_path}", lambda: client.get(cursor_path)),
        *deep_link,
        (
            f"(a2) deepest offset: GET cpo/locations?offset={deep}&limit=50",
            lambda: client.get(f"/ocpi/2.2.1/cpo/locations?offset={deep}&limit=50"),
        ),
        ("(b) GET cpo/locations/LOC0000005", lambda: client.get("/ocpi/2.2.1/cpo/locations/LOC0000005")),
        (f"(c) PATCH {patch_url} (rolled back)", rolled_back(patch)),
        ("(d) evse_status_set of an own EVSE, 5 push partners (rolled back)", rolled_back(own_change)),
    ]
    delivery = delivery_case(args.repeat + 2)
    if delivery is not None:
        cases.append(delivery)
    parts = [
        f"# Diagnosis: {info['own']['count']} own locations",
        "",
        "Generated by bench/diagnose.py: one request per scenario in-process (full middleware stack, production "
        "settings, traffic log as configured: OCPI_TRAFFIC_LOG_ENABLED="
        f"{os.environ.get('OCPI_TRAFFIC_LOG_ENABLED', 'true (default)')}), its SQL, EXPLAIN of the slow queries, and "
        "a cProfile summary. Times are from a shared, noisy machine: compare within this file.",
        "",
    ]
    for title, call in cases:
        parts.append(section(title, call, repeat=args.repeat, explain_ms=args.explain_ms))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(parts))
    print(f"diagnosis written to {args.out}")


if __name__ == "__main__":
    main()
