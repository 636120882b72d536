"""A fake partner platform for the self-test: the conftest FakePartner (versions, details, credentials) plus Sender
lists with real pagination and date filters, and switchable non-conformities (`quirks`)."""

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from werkzeug import Request, Response

from conftest import FakePartner, envelope_body, make_partner
from ocpi_core.constants import InterfaceRole
from ocpi_core.envelope import dumps, format_datetime, parse_datetime
from ocpi_core.models import Partner

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
X_LIMIT = 100


def stamp(minutes: int) -> str:
    return format_datetime(T0 + timedelta(minutes=minutes))


def location(n: int) -> dict[str, Any]:
    return {
        "country_code": "DE",
        "party_id": "FKC",
        "id": f"LOC{n}",
        "publish": True,
        "address": f"Street {n}",
        "city": "Berlin",
        "country": "DEU",
        "coordinates": {"latitude": "52.520008", "longitude": "13.404954"},
        "time_zone": "Europe/Berlin",
        "last_updated": stamp(n),
    }


def tariff(n: int) -> dict[str, Any]:
    return {
        "country_code": "DE",
        "party_id": "FKC",
        "id": f"T{n}",
        "currency": "EUR",
        "elements": [{"price_components": [{"type": "ENERGY", "price": 0.25, "step_size": 1}]}],
        "last_updated": stamp(n),
    }


def token(n: int) -> dict[str, Any]:
    return {
        "country_code": "DE",
        "party_id": "FKC",
        "uid": f"0123456{n}",
        "type": "RFID",
        "contract_id": f"DE8ACC12E46L8{n}",
        "issuer": "Fake eMSP",
        "valid": True,
        "whitelist": "ALWAYS",
        "last_updated": stamp(n),
    }


@dataclass
class SenderPartner(FakePartner):
    """`lists` maps a module to the objects its Sender serves; `quirks` maps a module (or "*") to what it gets wrong:
    bad_envelope (no timestamp), no_total (no X-Total-Count), link_loop (Link to the same page), ignore_dates,
    accept_any_token ("*" only)."""

    lists: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    quirks: dict[str, set[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.extra_endpoints = [
            {"identifier": module, "role": "SENDER", "url": self.server.url_for(f"/ocpi/2.2.1/{module}")}
            for module in self.lists
        ]

    def start(self) -> "SenderPartner":
        super().start()
        return self

    def _authorized(self, request: Request) -> bool:
        if "accept_any_token" in self.quirks.get("*", set()) and request.headers.get("Authorization"):
            return True
        return super()._authorized(request)

    def _handle(self, request: Request) -> Response:
        path = request.path.rstrip("/")
        module = path.rsplit("/", 1)[-1]
        if request.method == "GET" and (module in self.lists or module == "credentials"):
            self.received.append({"method": request.method, "path": request.path, "args": dict(request.args)})
            if not self._authorized(request):
                return Response(
                    envelope_body(status_code=2000, message="Unauthorized"), 401, mimetype="application/json"
                )
            if module == "credentials":
                creds = {"token": self.credentials_token, "url": self.versions_url, "roles": self.roles}
                return Response(envelope_body(creds), mimetype="application/json")
            return self._list(module, request)
        return super()._handle(request)

    def _list(self, module: str, request: Request) -> Response:
        quirks = self.quirks.get(module, set())
        items = self.lists[module]
        date_from, date_to = request.args.get("date_from"), request.args.get("date_to")
        if "ignore_dates" not in quirks:
            if date_from:
                items = [i for i in items if parse_datetime(i["last_updated"]) >= parse_datetime(date_from)]
            if date_to:
                items = [i for i in items if parse_datetime(i["last_updated"]) < parse_datetime(date_to)]
        offset = int(request.args.get("offset", 0))
        limit = min(int(request.args.get("limit", X_LIMIT)), X_LIMIT)
        page = items[offset : offset + limit]
        headers = {"X-Limit": str(X_LIMIT)}
        if "no_total" not in quirks:
            headers["X-Total-Count"] = str(len(items))
        if offset + limit < len(items):
            next_offset = offset if "link_loop" in quirks else offset + limit
            query = {k: v for k, v in request.args.items() if k in ("date_from", "date_to")}
            query.update(offset=str(next_offset), limit=str(limit))
            headers["Link"] = f'<{self.server.url_for(request.path)}?{urlencode(query)}>; rel="next"'
        body: dict[str, Any] = {"status_code": 1000, "data": page}
        if "bad_envelope" not in quirks:
            body["timestamp"] = format_datetime(datetime.now(UTC))
        return Response(dumps(body), headers=headers, mimetype="application/json")


def sender_partner_registered(platform: SenderPartner, *, name: str = "sender") -> Partner:
    """Register `platform` with us as a partner (endpoints stored as its version details list them)."""
    partner, _ = make_partner(name=name, base_url=platform.server.url_for("/ocpi").rstrip("/"))
    platform.accepted_tokens.add(partner.token_out())
    for endpoint in platform.extra_endpoints:
        if endpoint["role"] not in InterfaceRole.values:
            continue  # registration would have refused it
        partner.endpoints.create(identifier=endpoint["identifier"], role=endpoint["role"], url=endpoint["url"])
    return partner
