"""The conformance rules of the partner self-test and the guarded GETs they make (issue 6).

Read-only by construction: the prober only knows GET. Every call passes the SSRF guard (`url_check`), has the
client timeouts, reads at most OCPI_SELFTEST_MAX_RESPONSE_BYTES, never follows redirects, counts against a request
budget, and lands in the traffic log like any other outbound call (tokens never logged). Lists are walked with a
small `limit` (OCPI_SELFTEST_PAGE_LIMIT) for at most OCPI_SELFTEST_MAX_PAGES pages.

The rules (REFERENCE §2 transport, §2.7 pagination, §4 versions, §5 credentials, the object sections for field
rules) yield `CheckResult`s; `selftest.services` stores them.
"""

import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

import httpx
import orjson
from django.conf import settings

from ocpi_core.client import PartnerCallError, authorization_header, url_check
from ocpi_core.constants import OCPI_VERSION, InterfaceRole, ModuleID
from ocpi_core.crypto import token_generate
from ocpi_core.envelope import format_datetime, parse_datetime
from ocpi_core.models import Partner
from ocpi_core.traffic import traffic_log_outbound
from ocpi_core.validation import enum_values, validation_errors

# The Sender lists the self-test walks, with the object type their items must be (REFERENCE §6-§10).
LIST_MODULES: dict[str, str] = {
    ModuleID.LOCATIONS: "Location",
    ModuleID.TARIFFS: "Tariff",
    ModuleID.SESSIONS: "Session",
    ModuleID.CDRS: "CDR",
    ModuleID.TOKENS: "Token",
}
PASS, FAIL, WARN, SKIP = "PASS", "FAIL", "WARN", "SKIP"
_EXCERPT = 600  # characters of a body kept as evidence
_MAX_VIOLATION_ROWS = 25  # per object type: one row per broken field rule, then a summary
_REQUEST_BUDGET = 120  # GETs per run, whatever the partner's Link headers say
_PAGINATION_HEADERS = ("X-Total-Count", "X-Limit", "Link")


@dataclass
class CheckResult:
    """The outcome of one rule, with its evidence."""

    rule: str
    title: str
    outcome: str
    url: str = ""
    http_status: int | None = None
    ocpi_status_code: int | None = None
    field_path: str = ""
    evidence: str = ""


@dataclass
class Answer:
    """What one GET brought back, as raw as the rules need it (the envelope is judged by the rules, not here)."""

    url: str
    http_status: int | None = None
    headers: httpx.Headers = field(default_factory=httpx.Headers)
    body: bytes = b""
    payload: Any = None
    error: str = ""  # nothing usable came back: unsafe URL, unreachable, too large, budget spent

    @property
    def ocpi_status(self) -> int | None:
        code = self.payload.get("status_code") if isinstance(self.payload, dict) else None
        return code if isinstance(code, int) and not isinstance(code, bool) else None

    @property
    def data(self) -> Any:
        return self.payload.get("data") if isinstance(self.payload, dict) else None

    def evidence(self, *notes: str, headers: Iterable[str] = ()) -> str:
        """Notes, then the request line, the named response headers and a body excerpt."""
        lines = [n for n in notes if n and n != self.error]
        if self.error:
            lines.append(f"GET {self.url} → {self.error}")
        else:
            lines.append(f"GET {self.url} → HTTP {self.http_status}")
            for name in headers:
                value = self.headers.get(name)
                lines.append(f"{name}: {value}" if value is not None else f"{name}: (absent)")
            if self.body:
                text = self.body[:_EXCERPT].decode("utf-8", errors="replace")
                lines.append("body: " + text + ("…" if len(self.body) > _EXCERPT else ""))
        return "\n".join(lines)

    def result(self, rule: str, title: str, outcome: str, *notes: str, **extra: Any) -> CheckResult:
        """A CheckResult whose evidence is this answer."""
        headers = extra.pop("headers", ())
        return CheckResult(
            rule=rule,
            title=title,
            outcome=outcome,
            url=self.url,
            http_status=self.http_status,
            ocpi_status_code=self.ocpi_status,
            evidence=self.evidence(*notes, headers=headers),
            **extra,
        )


def with_params(url: str, params: dict[str, Any]) -> str:
    """`url` with query parameters added or replaced."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update({k: str(v) for k, v in params.items() if v is not None})
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


def canonical(url: str) -> str:
    """A URL with sorted query parameters, to recognise a page already requested however it is spelt."""
    parts = urlsplit(url)
    query = urlencode(sorted(parse_qsl(parts.query, keep_blank_values=True)))
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), parts.path.rstrip("/"), query, ""))


def link_next(header: str | None) -> str | None:
    """The URL of `rel="next"` in a Link header (RFC 8288), or None."""
    for part in (header or "").split(","):
        section = part.strip()
        if not section.startswith("<") or ">" not in section:
            continue
        target, _, params = section[1:].partition(">")
        if any(p.strip().replace(" ", "").lower() in ('rel="next"', "rel=next") for p in params.split(";")):
            return target.strip()
    return None


def int_header(headers: httpx.Headers, name: str) -> int | None:
    """A header as a non-negative integer, None when absent or malformed."""
    value = headers.get(name)
    if value is None or not value.strip().isdigit():
        return None
    return int(value)


class Prober:
    """Read-only, guarded GETs against one partner (see the module docstring)."""

    def __init__(self, *, partner: Partner, on_request: Callable[[int], None] | None = None) -> None:
        self.partner = partner
        self.token = partner.token_out()
        self.encoding = partner.token_encoding
        self.max_bytes: int = settings.OCPI_SELFTEST_MAX_RESPONSE_BYTES
        self.requests = 0
        self.on_request = on_request
        self._client: httpx.Client | None = None

    @contextmanager
    def session(self) -> Iterator["Prober"]:
        """One pooled HTTP client for the run, closed afterwards."""
        self._client = httpx.Client(
            follow_redirects=False,  # a redirect could bypass the SSRF guard
            timeout=httpx.Timeout(settings.OCPI_CLIENT_TIMEOUT, connect=settings.OCPI_CLIENT_CONNECT_TIMEOUT),
            headers={"Accept": "application/json", "User-Agent": "ocpi-platform/2.2.1 selftest"},
            trust_env=False,
        )
        try:
            yield self
        finally:
            self._client.close()
            self._client = None

    def get(self, url: str, *, params: dict[str, Any] | None = None, token: str | None = None) -> Answer:
        """GET `url` with our token (or `token`); never raises for what the partner does."""
        if params:
            url = with_params(url, params)
        if self.requests >= _REQUEST_BUDGET:
            return Answer(url=url, error=f"not called: the run's budget of {_REQUEST_BUDGET} requests is spent")
        try:
            url_check(url)
        except PartnerCallError as exc:
            return Answer(url=url, error=f"not called: {exc.message}")
        assert self._client is not None, "Prober.get outside Prober.session()"  # noqa: S101  (a programming error)
        self.requests += 1
        if self.on_request is not None:
            self.on_request(self.requests)
        headers = {
            "Authorization": authorization_header(self.token if token is None else token, self.encoding),
            "X-Request-ID": str(uuid.uuid4()),
            "X-Correlation-ID": str(uuid.uuid4()),
        }
        answer = Answer(url=url)
        started = time.perf_counter()
        try:
            with self._client.stream("GET", url, headers=headers) as response:
                answer.http_status, answer.headers = response.status_code, response.headers
                answer.body = self._read(response, answer)
        except httpx.TimeoutException:
            answer.error = "timeout"
        except httpx.HTTPError as exc:
            answer.error = f"cannot reach the partner: {exc.__class__.__name__}: {exc}"
        if answer.http_status is not None and not answer.error and answer.body:
            try:
                answer.payload = orjson.loads(answer.body)
            except orjson.JSONDecodeError:
                answer.payload = None
        traffic_log_outbound(
            partner=self.partner,
            method="GET",
            url=url,
            http_status=answer.http_status,
            ocpi_status_code=answer.ocpi_status,
            duration_ms=(time.perf_counter() - started) * 1000,
            request_id=headers["X-Request-ID"],
            correlation_id=headers["X-Correlation-ID"],
            request_body=None,
            response_body=answer.body or None,
            error=answer.error,
        )
        return answer

    def _read(self, response: httpx.Response, answer: Answer) -> bytes:
        declared = int_header(response.headers, "Content-Length")
        if declared is not None and declared > self.max_bytes:
            answer.error = f"HTTP {response.status_code}, body of {declared} bytes exceeds {self.max_bytes}; not read"
            return b""
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_bytes():
            size += len(chunk)
            if size > self.max_bytes:
                answer.error = f"HTTP {response.status_code}, body larger than {self.max_bytes} bytes; stopped reading"
                return b""
            chunks.append(chunk)
        return b"".join(chunks)


def envelope_problems(answer: Answer, *, expect: type | None) -> list[str]:
    """What is wrong with a success answer's HTTP status and envelope (REFERENCE §2.3, §2.4); [] when all is fine.

    `expect` is the type `data` must have (list for lists, dict for objects), None when it does not matter.
    """
    if answer.error:
        return [answer.error]
    problems = [] if answer.http_status == 200 else [f"HTTP {answer.http_status}, expected 200"]
    payload = answer.payload
    if not isinstance(payload, dict):
        return [*problems, "the body is not a JSON object: no OCPI envelope"]
    code = payload.get("status_code")
    if answer.ocpi_status is None:
        problems.append(f"status_code is {'missing' if code is None else 'not an integer: ' + repr(code)}")
    elif not 1000 <= answer.ocpi_status < 2000:
        problems.append(f"status_code {answer.ocpi_status} is not a success (1xxx)")
    timestamp = payload.get("timestamp")
    if timestamp is None:
        problems.append("timestamp is missing")
    else:
        try:
            parse_datetime(timestamp)
        except ValueError:
            problems.append(f"timestamp {timestamp!r} is not an OCPI DateTime")
    message = payload.get("status_message")
    if message is not None and not isinstance(message, str):
        problems.append("status_message is not a string")
    if expect is list and not isinstance(payload.get("data"), list):
        problems.append("data is not a list")
    if expect is dict and not isinstance(payload.get("data"), dict):
        problems.append("data is not an object")
    return problems


def object_key(item: Any) -> str:
    """country_code/party_id/id (uid for Tokens) of a listed object, for duplicate detection and evidence."""
    if not isinstance(item, dict):
        return repr(item)[:60]
    ident = item.get("id", item.get("uid"))
    return f"{item.get('country_code')}/{item.get('party_id')}/{ident}"


def last_updated_of(item: Any) -> tuple[datetime, str] | None:
    """An object's last_updated, parsed and as sent; None when absent or malformed (the field rules report it)."""
    raw = item.get("last_updated") if isinstance(item, dict) else None
    if not isinstance(raw, str):
        return None
    try:
        return parse_datetime(raw), raw
    except ValueError:
        return None


def violations(
    rule: str, title: str, type_name: str, items: Iterable[tuple[str, str, Any]], *, nested: bool = False
) -> list[CheckResult]:
    """One FAIL per broken field rule of each (label, url, object), with its field path; a PASS when none broke.

    `nested`: the label is the object's path in the body (`data[0]`) and prefixes the field path; otherwise it names
    the object (`DE/FKC/LOC1`) in the title and the field path is relative to the object.
    """
    results: list[CheckResult] = []
    count = checked = 0
    for label, url, item in items:
        checked += 1
        for error in validation_errors(type_name, item):
            count += 1
            if len(results) < _MAX_VIOLATION_ROWS:
                path, _, message = error.partition(": ")
                results.append(
                    CheckResult(
                        rule=rule,
                        title=title if nested else f"{title}: {label}",
                        outcome=FAIL,
                        url=url,
                        field_path=f"{label}.{path}" if nested else path,
                        evidence=f"{type_name} {label}: {path} {message}",
                    )
                )
    if count > len(results):
        more = count - len(results)
        results.append(CheckResult(rule=rule, title=title, outcome=FAIL, evidence=f"{more} more violation(s)"))
    if not results:
        outcome, evidence = (PASS, f"{checked} {type_name} object(s) checked") if checked else (WARN, "no objects")
        results.append(CheckResult(rule=rule, title=title, outcome=outcome, evidence=evidence))
    return results


@dataclass
class Walk:
    """What walking a Sender list page by page found."""

    pages: list[Answer] = field(default_factory=list)
    objects: list[tuple[str, str, Any]] = field(default_factory=list)  # (key, page URL, object)
    envelope: list[str] = field(default_factory=list)
    headers: list[str] = field(default_factory=list)
    link: list[str] = field(default_factory=list)
    paging: list[str] = field(default_factory=list)
    bad: Answer | None = None  # the first page showing a problem, for evidence
    stopped: str = ""


class SelfTest:
    """Runs every rule against one partner; `emit` receives each result, `progress` each step."""

    def __init__(
        self,
        *,
        partner: Partner,
        emit: Callable[[CheckResult], None],
        progress: Callable[[str, int], None],
    ) -> None:
        self.partner = partner
        self.emit = emit
        self.progress = progress
        self.step = ""
        self.prober = Prober(partner=partner, on_request=lambda n: self.progress(self.step, n))
        self.page_limit: int = settings.OCPI_SELFTEST_PAGE_LIMIT
        self.max_pages: int = settings.OCPI_SELFTEST_MAX_PAGES

    def _step(self, text: str) -> None:
        self.step = text
        self.progress(text, self.prober.requests)

    def run(self) -> None:
        """Every rule, in order: versions, version details, authentication, credentials, each Sender list."""
        with self.prober.session():
            self._step("versions")
            details_url = self.check_versions()
            self._step("version details")
            endpoints = self.check_details(details_url)
            self._step("authentication")
            lists = {
                module: url
                for module in LIST_MODULES
                if (url := endpoints.get((module, InterfaceRole.SENDER))) is not None
            }
            self.check_wrong_token(next(iter(lists.values()), None) or endpoints.get(("credentials", None)))
            self._step("credentials")
            self.check_credentials(endpoints.get(("credentials", None)))
            for module, type_name in LIST_MODULES.items():
                self._step(f"{module} list")
                url = lists.get(module)
                if url is None:
                    self.emit(
                        CheckResult(
                            rule=f"{module}.offered",
                            title=f"{module} Sender interface",
                            outcome=SKIP,
                            evidence=f"the partner does not advertise {module} as SENDER: nothing to check",
                        )
                    )
                    continue
                self.check_list(module, type_name, url)
            self._step("done")

    # --- versions (REFERENCE §4) -----------------------------------------------------------------------------------

    def check_versions(self) -> str | None:
        """Versions answer a valid envelope listing 2.2.1; our token is accepted. Returns the 2.2.1 details URL."""
        answer = self.prober.get(self.partner.versions_url)
        title = "Versions endpoint answers a valid OCPI envelope"
        problems = envelope_problems(answer, expect=list)
        self.emit(answer.result("versions.envelope", title, FAIL if problems else PASS, *problems))
        accepted = answer.http_status is not None and answer.http_status != 401 and not answer.error
        self.emit(
            answer.result(
                "auth.token_accepted",
                "Our credentials token is accepted",
                PASS if accepted and answer.http_status == 200 else FAIL,
                "" if accepted else "our token was not accepted on the versions endpoint",
            )
        )
        data = answer.data if isinstance(answer.data, list) else None
        if data is None:
            self.emit(answer.result("versions.data", "Versions list offers 2.2.1", SKIP, "no versions list to check"))
            return None
        items = [(f"data[{i}]", answer.url, item) for i, item in enumerate(data)]
        found = [v for v in data if isinstance(v, dict) and v.get("version") == OCPI_VERSION]
        title = "Versions list is well formed and offers 2.2.1"
        results = [r for r in violations("versions.data", title, "Version", items, nested=True) if r.outcome == FAIL]
        if not found:
            results.append(answer.result("versions.data", title, FAIL, "2.2.1 is not listed"))
        self.emit_all(results or [answer.result("versions.data", title, PASS)])
        if not found:
            return None
        url = found[0].get("url")
        return url if isinstance(url, str) else None

    def check_details(self, url: str | None) -> dict[tuple[str, str | None], str]:
        """Version details are well formed (REFERENCE §4.2). Returns {(identifier, role): url}, plus
        (identifier, None) for the first of each identifier; falls back to the stored endpoints."""
        title = "Version details (2.2.1) answer a valid OCPI envelope"
        endpoints: dict[tuple[str, str | None], str] = {}
        if url is None:
            self.emit(CheckResult(rule="details.envelope", title=title, outcome=SKIP, evidence="no 2.2.1 URL"))
            return self._stored_endpoints()
        answer = self.prober.get(url)
        problems = envelope_problems(answer, expect=dict)
        self.emit(answer.result("details.envelope", title, FAIL if problems else PASS, *problems))
        data = answer.data
        if not isinstance(data, dict):
            return self._stored_endpoints()
        title = "Version details list endpoints with identifier, role and url"
        failures = [
            r
            for r in violations("details.data", title, "VersionDetails", [("data", url, data)], nested=True)
            if r.outcome == FAIL
        ]
        modules, roles = enum_values("ModuleID"), enum_values("InterfaceRole")
        custom = [
            r.evidence for r in failures if r.field_path.endswith(".identifier") and "must be one of" in r.evidence
        ]
        # Custom modules are allowed (REFERENCE §4.2): a warning, not a failure.
        results = [r for r in failures if r.evidence not in custom]
        if data.get("version") != OCPI_VERSION:
            results.append(answer.result("details.data", title, FAIL, "version is not 2.2.1", field_path="version"))
        for entry in data.get("endpoints") or []:
            if not isinstance(entry, dict) or not isinstance(entry.get("url"), str):
                continue
            identifier, role = str(entry.get("identifier")), str(entry.get("role"))
            if role not in roles or identifier not in modules:
                continue
            endpoints.setdefault((identifier, role), entry["url"])
            endpoints.setdefault((identifier, None), entry["url"])
        if ("credentials", None) not in endpoints:
            results.append(answer.result("details.data", title, FAIL, "no credentials endpoint listed"))
        if not results:
            listed = ", ".join(sorted(f"{i} {r}" for i, r in endpoints if r)) or "none"
            results.append(answer.result("details.data", title, PASS, f"endpoints: {listed}"))
        if custom:
            results.append(answer.result("details.custom_modules", "Custom modules in version details", WARN, *custom))
        self.emit_all(results)
        return endpoints

    def _stored_endpoints(self) -> dict[tuple[str, str | None], str]:
        endpoints: dict[tuple[str, str | None], str] = {}
        for endpoint in self.partner.endpoints.all():
            endpoints.setdefault((endpoint.identifier, endpoint.role), endpoint.url)
            endpoints.setdefault((endpoint.identifier, None), endpoint.url)
        return endpoints

    # --- authentication (REFERENCE §2.1) ----------------------------------------------------------------------------

    def check_wrong_token(self, module_url: str | None) -> None:
        """A random token is refused with HTTP 401 on the versions endpoint and on one module endpoint."""
        targets = [("auth.wrong_token.versions", "versions", self.partner.versions_url)]
        targets.append(("auth.wrong_token.module", "a module endpoint", module_url or ""))
        for rule, where, url in targets:
            title = f"A wrong token is refused with HTTP 401 on {where}"
            if not url:
                self.emit(CheckResult(rule=rule, title=title, outcome=SKIP, evidence="no module endpoint advertised"))
                continue
            answer = self.prober.get(url, params={"limit": 1} if where != "versions" else None, token=token_generate())
            if answer.error:
                self.emit(answer.result(rule, title, FAIL, "no answer to a request with a wrong token"))
            elif answer.http_status == 401:
                self.emit(answer.result(rule, title, PASS))
            else:
                note = "a random token was accepted" if answer.http_status == 200 else "expected HTTP 401"
                self.emit(answer.result(rule, title, FAIL, note))

    # --- credentials (REFERENCE §5) ---------------------------------------------------------------------------------

    def check_credentials(self, url: str | None) -> None:
        """Credentials GET answers a valid envelope carrying a valid Credentials object."""
        title = "Credentials GET answers a valid Credentials object"
        if url is None:
            self.emit(CheckResult(rule="credentials.get", title=title, outcome=SKIP, evidence="no credentials URL"))
            return
        answer = self.prober.get(url)
        problems = envelope_problems(answer, expect=dict)
        self.emit(answer.result("credentials.get", title, FAIL if problems else PASS, *problems))
        if isinstance(answer.data, dict):
            title = "Credentials object follows the 2.2.1 field rules"
            self.emit_all(
                violations("credentials.object", title, "Credentials", [("data", url, answer.data)], nested=True)
            )

    # --- Sender lists (REFERENCE §2.7, object sections) --------------------------------------------------------------

    def walk(self, url: str) -> Walk:
        """Follow Link headers from the first page (limit=OCPI_SELFTEST_PAGE_LIMIT), at most OCPI_SELFTEST_MAX_PAGES."""
        walk = Walk()
        next_url: str | None = with_params(url, {"limit": self.page_limit})
        requested: set[str] = set()
        keys: dict[str, int] = {}

        def note(bucket: list[str], answer: Answer, text: str) -> None:
            bucket.append(f"page {len(walk.pages)}: {text}")
            walk.bad = walk.bad or answer

        while next_url is not None:
            if len(walk.pages) >= self.max_pages:
                walk.stopped = f"stopped after {self.max_pages} pages (bound of the self-test), Link still present"
                break
            requested.add(canonical(next_url))
            answer = self.prober.get(next_url)
            walk.pages.append(answer)
            problems = envelope_problems(answer, expect=list)
            if problems:
                for problem in problems:
                    note(walk.envelope, answer, problem)
                break
            items: list[Any] = answer.data
            for name in ("X-Total-Count", "X-Limit"):
                if int_header(answer.headers, name) is None:
                    value = answer.headers.get(name)
                    note(walk.headers, answer, f"{name} {'is missing' if value is None else f'is {value!r}'}")
            total, cap = int_header(answer.headers, "X-Total-Count"), int_header(answer.headers, "X-Limit")
            if len(items) > self.page_limit or (cap and len(items) > cap):
                note(walk.paging, answer, f"{len(items)} objects, more than limit={self.page_limit} / X-Limit={cap}")
            for item in items:
                key = object_key(item)
                if key in keys:
                    note(walk.paging, answer, f"object {key} was already on page {keys[key]}")
                else:
                    keys[key] = len(walk.pages)
                    walk.objects.append((key, answer.url, item))
            received = len(keys)  # distinct objects: a page served twice is a paging fault, not more data
            raw_link = answer.headers.get("Link")
            link = link_next(raw_link)
            more = total is not None and received < total
            if raw_link is not None and link is None and ("next" in raw_link):
                note(walk.link, answer, f'Link {raw_link!r} cannot be parsed as <url>; rel="next"')
            if link is None:
                if more:
                    note(walk.link, answer, f'no Link rel="next" although X-Total-Count={total} and {received} seen')
                break
            if total is not None and received >= total:
                note(walk.link, answer, f'Link rel="next" on the last page (X-Total-Count={total}, {received} seen)')
            if not items:
                note(walk.link, answer, 'Link rel="next" on an empty page')
                break
            candidate = urljoin(answer.url, link)
            if canonical(candidate) in requested:
                note(walk.paging, answer, f"Link loops back to a page already fetched: {candidate}")
                break
            next_url = candidate
        return walk

    def check_list(self, module: str, type_name: str, url: str) -> None:
        """Envelope, pagination headers, Link, date filters and field rules of one Sender list."""
        walk = self.walk(url)
        first = walk.pages[0]
        evidence_page = walk.bad or first
        headers = _PAGINATION_HEADERS
        walked = f"{len(walk.pages)} page(s) walked with limit={self.page_limit}, {len(walk.objects)} objects"
        self.emit(
            evidence_page.result(
                f"{module}.envelope",
                f"{module}: list pages answer a valid OCPI envelope",
                FAIL if walk.envelope else PASS,
                *walk.envelope,
                walked,
            )
        )
        if walk.envelope and not walk.objects:
            for rule, title in (
                ("headers", "pagination headers"),
                ("link", "Link"),
                ("paging", "paging"),
                ("date_filters", "date filters"),
            ):
                self.emit(
                    CheckResult(
                        rule=f"{module}.{rule}",
                        title=f"{module}: {title}",
                        outcome=SKIP,
                        evidence="the first page is not a valid list envelope",
                    )
                )
            return
        for rule, title, problems in (
            ("headers", "X-Total-Count and X-Limit on every page", walk.headers),
            ("link", 'Link rel="next" present exactly when more pages follow', walk.link),
            ("paging", "pages followed through Link hold no duplicates and do not loop", walk.paging),
        ):
            page = walk.bad if problems and walk.bad is not None else walk.pages[-1]
            notes = [*problems, walked, walk.stopped]
            self.emit(
                page.result(
                    f"{module}.{rule}", f"{module}: {title}", FAIL if problems else PASS, *notes, headers=headers
                )
            )
        self._step(f"{module} date filters")
        self.check_date_filters(module, url, walk)
        self.emit_all(
            violations(
                f"{module}.objects",
                f"{module}: {type_name} objects follow the 2.2.1 field rules",
                type_name,
                walk.objects,
            )
        )

    def emit_all(self, results: Iterable[CheckResult]) -> None:
        for result in results:
            self.emit(result)

    def check_date_filters(self, module: str, url: str, walk: Walk) -> None:
        """date_from in the future → empty; date_to at the oldest object seen → only older ones (exclusive);
        date_from at the newest seen → only objects at least as new, that one included (inclusive)."""
        stamps = sorted((s for _, _, item in walk.objects if (s := last_updated_of(item)) is not None))
        future = format_datetime(datetime.now(UTC).replace(microsecond=0) + timedelta(days=1))
        answer = self.prober.get(url, params={"date_from": future, "limit": self.page_limit})
        title = f"{module}: date_from in the future gives an empty list"
        problems = envelope_problems(answer, expect=list)
        if not problems and answer.data:
            problems.append(f"{len(answer.data)} object(s) returned, e.g. {object_key(answer.data[0])}")
        total = int_header(answer.headers, "X-Total-Count")
        if not problems and total:
            problems.append(f"X-Total-Count is {total}, expected 0")
        self.emit(answer.result(f"{module}.date_from_future", title, FAIL if problems else PASS, *problems))

        date_to = stamps[0][1] if stamps else "2000-01-01T00:00:00Z"
        answer = self.prober.get(url, params={"date_to": date_to, "limit": self.page_limit})
        title = f"{module}: date_to before every object gives none (date_to is exclusive)"
        self.emit(self._judge_window(f"{module}.date_to", title, answer, lambda when: when < parse_datetime(date_to)))

        title = f"{module}: objects returned with date_from have last_updated ≥ date_from (inclusive)"
        if not stamps:
            self.emit(CheckResult(rule=f"{module}.date_from", title=title, outcome=SKIP, evidence="no objects listed"))
            return
        date_from = stamps[-1][1]
        answer = self.prober.get(url, params={"date_from": date_from, "limit": self.page_limit})
        result = self._judge_window(
            f"{module}.date_from", title, answer, lambda when: when >= parse_datetime(date_from)
        )
        if result.outcome == PASS and not answer.data:
            result.outcome = FAIL
            result.evidence = f"the newest object (last_updated {date_from}) is missing\n{result.evidence}"
        self.emit(result)

    @staticmethod
    def _judge_window(rule: str, title: str, answer: Answer, inside: Callable[[datetime], bool]) -> CheckResult:
        problems = envelope_problems(answer, expect=list)
        if not problems:
            for item in answer.data:
                stamp = last_updated_of(item)
                if stamp is not None and not inside(stamp[0]):
                    problems.append(f"{object_key(item)} has last_updated {stamp[1]}, outside the window")
        return answer.result(rule, title, FAIL if problems else PASS, *problems[:5])
