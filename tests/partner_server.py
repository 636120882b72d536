"""A partner's OCPI Locations Receiver on a local port, for push tests: it stores what it is sent (PUT replaces,
PATCH merges, 404 for what it does not hold, as REFERENCE §6.2 says), records every request, and can be told to
answer otherwise (429 with Retry-After, 5xx, 4xx, OCPI 2xxx), to hang until released, or to be down.

    server = PartnerServer().start()
    server.plan(Answer(503), Answer(429, retry_after="1"))   # the next two requests; then the store answers
    server.rule = lambda request: Answer(404) if request.method == "PATCH" else None   # every matching request
    server.stop(); ...; server.start()                          # down, then back on the same port
"""

import copy
import json
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# How long a hanging request waits for `release()` at most, so a forgotten hang never blocks a test run.
HANG_LIMIT_SECONDS = 60.0


@dataclass(frozen=True)
class Answer:
    """One scripted answer: an HTTP status with an OCPI envelope (`ocpi` status code), optional Retry-After, or a
    hang (the request waits until `PartnerServer.release()` and then gets this answer)."""

    http: int = 200
    ocpi: int = 1000
    retry_after: str | None = None
    hang: bool = False


@dataclass(frozen=True)
class Received:
    """One request the partner got, as it got it; `at` is when it arrived (UTC)."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: datetime
    answered: int = 0

    @property
    def key(self) -> tuple[str, ...]:
        """The object ids after the module's base path: (country_code, party_id, location_id[, evse[, connector]])."""
        return tuple(self.path.split("/locations/", 1)[1].strip("/").split("/"))


@dataclass
class PartnerServer:
    """A threaded HTTP server playing one or more partners' Locations Receiver (any path ending in
    `/locations/{cc}/{pid}/{location}[/{evse}[/{connector}]]`)."""

    host: str = "127.0.0.1"
    port: int = 0
    rule: Callable[[Received], Answer | None] | None = None
    received: list[Received] = field(default_factory=list)
    locations: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)
    _planned: deque[Answer] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _arrived: threading.Condition = field(init=False)
    _released: threading.Event = field(default_factory=threading.Event)
    _httpd: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    def __post_init__(self) -> None:
        self._arrived = threading.Condition(self._lock)

    # --- lifecycle ---

    def start(self) -> "PartnerServer":
        """Listen (again, on the same port once one was chosen)."""
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                server._serve(self)

            do_PATCH = do_GET = do_POST = do_DELETE = do_PUT

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._released.clear()
        self._httpd = ThreadingHTTPServer((self.host, self.port), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="partner-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening: calls are refused until `start()`. Hanging requests are released first."""
        self.release()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def endpoint(self, name: str = "partner") -> str:
        """The Locations Receiver URL one partner registered (several partners can share one server)."""
        return f"{self.url}/{name}/ocpi/2.2.1/locations"

    # --- behaviour ---

    def plan(self, *answers: Answer) -> None:
        """Answer the next requests with these, in order (then the store answers again)."""
        with self._lock:
            self._planned.extend(answers)

    def release(self) -> None:
        """Let hanging requests answer."""
        self._released.set()

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float = 30.0) -> list[Received]:
        """Block until `predicate(received)` holds; a failure names what arrived."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: predicate(self.received), timeout=timeout):
                seen = [(r.method, r.path, r.answered) for r in self.received]
                raise AssertionError(f"the partner did not get what was expected within {timeout} s; got {seen}")
            return list(self.received)

    def requests(self, method: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.received if method is None or r.method == method]

    # --- serving ---

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        request = Received(
            method=handler.command,
            path=handler.path,
            headers=dict(handler.headers.items()),
            body=body,
            at=datetime.now(UTC),
        )
        with self._lock:
            answer = self._planned.popleft() if self._planned else None
        if answer is None and self.rule is not None:
            answer = self.rule(request)
        if answer is not None and answer.hang:
            with self._arrived:  # a hanging request is visible to wait_for while it hangs
                self.received.append(request)
                self._arrived.notify_all()
            self._released.wait(HANG_LIMIT_SECONDS)
            with self._lock:
                self.received.remove(request)
        if answer is not None:
            http, ocpi, data = answer.http, answer.ocpi, None
        else:
            http, ocpi, data = self._store(request)
        headers = {"Retry-After": answer.retry_after} if answer is not None and answer.retry_after else {}
        payload = {"status_code": ocpi, "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
        if data is not None:
            payload["data"] = data
        content = json.dumps(payload).encode()
        with self._arrived:
            self.received.append(
                Received(request.method, request.path, request.headers, request.body, request.at, answered=http)
            )
            self._arrived.notify_all()
        handler.send_response(http)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(content)))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(content)

    def _store(self, request: Received) -> tuple[int, int, Any]:
        """Receiver semantics on the stored locations: PUT replaces, PATCH merges, unknown objects are 404."""
        if "/locations/" not in request.path:
            return 404, 2000, None
        key = request.key
        if len(key) < 3 or not isinstance(request.body, dict | None):
            return 400, 2001, None
        body = copy.deepcopy(request.body)  # the store changes; what was received stays as it was
        with self._lock:
            location = self.locations.get((key[0], key[1], key[2]))
            if request.method == "GET":
                return (200, 1000, location) if location is not None else (404, 2003, None)
            if request.method not in ("PUT", "PATCH") or not isinstance(body, dict):
                return 405, 2000, None
            if len(key) == 3:
                if request.method == "PUT":
                    self.locations[(key[0], key[1], key[2])] = body
                    return 200, 1000, None
                if location is None:
                    return 404, 2003, None
                location.update(body)
                return 200, 1000, None
            if location is None:
                return 404, 2003, None
            evses = location.setdefault("evses", [])
            evse = next((e for e in evses if e.get("uid") == key[3]), None)
            if len(key) == 4:
                if request.method == "PUT":
                    _replace(evses, evse, body)
                elif evse is None:
                    return 404, 2000, None
                else:
                    evse.update(body)
                location["last_updated"] = body.get("last_updated", location.get("last_updated"))
                return 200, 1000, None
            if evse is None:
                return 404, 2000, None
            connectors = evse.setdefault("connectors", [])
            connector = next((c for c in connectors if c.get("id") == key[4]), None)
            if request.method == "PUT":
                _replace(connectors, connector, body)
            elif connector is None:
                return 404, 2000, None
            else:
                connector.update(body)
            return 200, 1000, None


def _replace(items: list[dict[str, Any]], old: dict[str, Any] | None, new: dict[str, Any]) -> None:
    """PUT of a child: in its place when it exists, appended otherwise."""
    if old is None:
        items.append(new)
    else:
        items[items.index(old)] = new


# --- the pushing side: what push tests register and change ---


def receiver_partner(
    endpoint: str,
    *,
    name: str = "partner",
    party: tuple[str, str] = ("DE", "PRT"),
    status: str = "REGISTERED",
    push_enabled: bool = True,
    receiver: bool = True,
) -> Any:
    """A registered partner whose eMSP party receives Locations at `endpoint` (a PartnerEndpoint, as the version
    details of a real partner would give); `receiver=False` registers only its Sender interface."""
    from conftest import make_partner
    from ocpi_core.constants import Role
    from ocpi_core.models import Partner, PartnerEndpoint

    base_url = endpoint.split("/2.2.1/", 1)[0]
    partner, _ = make_partner(name=name, base_url=base_url, roles=((*party, Role.EMSP),))
    PartnerEndpoint.objects.create(
        partner=partner, identifier="locations", role="RECEIVER" if receiver else "SENDER", url=endpoint
    )
    Partner.objects.filter(pk=partner.pk).update(status=status, push_enabled=push_enabled)
    partner.refresh_from_db()
    return partner


def location_body(
    location_id: str = "LOC1",
    *,
    name: str = "Station",
    evses: tuple[tuple[str, str], ...] = (("EVSE1", "AVAILABLE"),),
    last_updated: str | None = None,
    country_code: str = "NL",
    party_id: str = "OWN",
) -> dict[str, Any]:
    """A valid OCPI 2.2.1 Location with EVSEs (uid, status) of one CCS connector each."""
    stamp = last_updated or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return {
        "country_code": country_code,
        "party_id": party_id,
        "id": location_id,
        "publish": True,
        "name": name,
        "address": "Stationsplein 1",
        "city": "Utrecht",
        "postal_code": "3511 ED",
        "country": "NLD",
        "coordinates": {"latitude": "52.089444", "longitude": "5.110278"},
        "evses": [
            {
                "uid": uid,
                "evse_id": f"NL*OWN*E{index + 1}",
                "status": status,
                "connectors": [
                    {
                        "id": "1",
                        "standard": "IEC_62196_T2_COMBO",
                        "format": "CABLE",
                        "power_type": "DC",
                        "max_voltage": 920,
                        "max_amperage": 400,
                        "last_updated": stamp,
                    }
                ],
                "last_updated": stamp,
            }
            for index, (uid, status) in enumerate(evses)
        ],
        "time_zone": "Europe/Amsterdam",
        "last_updated": stamp,
    }
