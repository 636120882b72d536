"""The hot paths served without DRF (ocpi_core.fastpath, locations/fast.py) answer exactly as the DRF views do, on
PostgreSQL and on SQLite (tests/test_sqlite_default.py runs this file there too).

Every request here is made twice through the whole middleware stack, once as shipped (OCPI_FAST_PATH on) and once
with the fast path off (DRF), and the answers are compared: status, envelope, headers; for PATCHes also what was
stored (each run on the same state, rolled back after). A spy-free check that the
fast path really served each one: `fast_dispatch` returns the answer for these requests itself.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from django.core.cache import cache
from django.db import connection, transaction
from django.test import Client, RequestFactory, override_settings

from conftest import auth_header, make_partner, pg_session_elsewhere
from dashboard.models import EvseStatusChange
from locations.models import Evse, Location
from locations.services import Key, location_put
from locations.tests.factories import location_data, own_location
from ocpi_core import pagination
from ocpi_core.constants import Role
from ocpi_core.fastpath import fast_dispatch, routes
from ocpi_core.models import Partner, PartnerToken, Party

LIST = "/ocpi/2.2.1/cpo/locations"
T0 = datetime(2024, 3, 1, tzinfo=UTC)
_VOLATILE = {"Date", "X-Request-ID", "X-Correlation-ID"}


@pytest.fixture(autouse=True)
def _cold_caches() -> Any:
    from ocpi_core.hot import hot_caches_clear

    hot_caches_clear()
    yield
    hot_caches_clear()


@pytest.fixture
def world(own_parties: list[Party]) -> dict[str, Any]:
    """Own locations of two own CPO parties (published, unpublished, unpublished but allowed to some drivers), with
    shared last_updated stamps, and a partner's location that must never be sent."""
    Party.objects.create(country_code="BE", party_id="OW2", role=Role.CPO, name="Own CPO 2")
    for i in range(9):
        own_location(f"LOC{i:02d}", last_updated=T0 + timedelta(minutes=i // 2))
    for i in range(3):
        own_location(f"BEL{i}", country_code="BE", party_id="OW2", last_updated=T0 + timedelta(minutes=i))
    own_location("HIDDEN", last_updated=T0, publish=False)
    own_location(
        "ALLOWED",
        last_updated=T0 + timedelta(minutes=1),
        publish=False,
        publish_allowed_to=[{"uid": "012345678", "type": "RFID"}],
    )
    partner, token = make_partner(roles=(("DE", "PRT", Role.EMSP), ("DE", "PRC", Role.CPO)))
    Location.objects.filter(ocpi_id="LOC08").update(partner=partner)  # not ours any more: never sent
    invited, token_a = make_partner(name="invited", status=Partner.Status.INVITED, kind=PartnerToken.Kind.REGISTRATION)
    return {"token": token, "token_a": token_a, "partner": partner, "invited": invited}


def _normal(response: Any) -> tuple[int, dict[str, Any], dict[str, str]]:
    body = orjson.loads(response.content)
    body.pop("timestamp", None)
    headers = {name: value for name, value in response.headers.items() if name not in _VOLATILE}
    return response.status_code, body, headers


def both(path: str, token: str | None, **headers: str) -> tuple[Any, Any]:
    """The answer of the fast path and of DRF to the same request."""
    if token is not None:
        headers["HTTP_AUTHORIZATION"] = auth_header(token)
    fast = Client().get(path, **headers)  # type: ignore[arg-type]
    with override_settings(OCPI_FAST_PATH=False):
        slow = Client().get(path, **headers)  # type: ignore[arg-type]
    assert _normal(fast) == _normal(slow), path
    return fast, slow


def served_fast(path: str, token: str | None, **headers: str) -> bool:
    if token is not None:
        headers["HTTP_AUTHORIZATION"] = auth_header(token)
    request = RequestFactory().get(path, **headers)  # type: ignore[arg-type]
    return fast_dispatch(request) is not None


def test_the_locations_hot_paths_are_registered() -> None:
    assert ("GET", r"^/ocpi/2\.2\.1/cpo/locations/?$") in routes()
    assert ("GET", r"^/ocpi/2\.2\.1/cpo/locations/(?P<location_id>[^/]+)/?$") in routes()


def test_a_link_walk_is_identical_on_both_paths(world: dict[str, Any]) -> None:
    token = world["token"]
    fast, _ = both(f"{LIST}?limit=3", token)
    assert served_fast(f"{LIST}?limit=3", token)
    seen: list[str] = [item["id"] for item in orjson.loads(fast.content)["data"]]
    while "Link" in fast.headers:
        link = fast.headers["Link"].split(">")[0].lstrip("<").replace("http://testserver", "")
        assert "cursor=" in link
        assert served_fast(link, token)
        fast, _ = both(link, token)
        seen += [item["id"] for item in orjson.loads(fast.content)["data"]]
    expected = {f"LOC{i:02d}" for i in range(8)} | {"BEL0", "BEL1", "BEL2", "ALLOWED"}
    assert len(seen) == len(expected)
    assert set(seen) == expected
    assert fast.headers["X-Total-Count"] == str(len(expected))


@pytest.mark.parametrize(
    "query",
    [
        "",
        "/",
        "?limit=0",
        "?limit=2",
        "?limit=1000",
        "?offset=5&limit=4",
        "?offset=11&limit=4",
        "?offset=99",
        f"?date_from={T0.strftime('%Y-%m-%dT%H:%M:%SZ')}&date_to=2024-03-01T00:02:00Z",
        "?date_from=2024-03-01T00:03:00Z&limit=2",
        "?date_to=2020-01-01T00:00:00Z",
        "?cursor=not-a-cursor&offset=2&limit=2",
        "?offset=-1",
        "?limit=abc",
        "?date_from=yesterday",
        "?date_to=2024-03-01T00:00:00+01:00",
    ],
)
def test_list_requests_answer_the_same(world: dict[str, Any], query: str) -> None:
    fast, _ = both(f"{LIST}{query}", world["token"])
    assert served_fast(f"{LIST}{query}", world["token"])
    if (code := orjson.loads(fast.content)["status_code"]) != 1000:
        assert (fast.status_code, code) == (200, 2001)  # reached the OCPI layer: no HTTP error (status_codes)


@pytest.mark.parametrize("query", ["?limit=abc", "?date_from=yesterday", "?offset=-1", "?cursor=x&offset=2"])
@pytest.mark.parametrize("token_key", [None, "bogus", "token_a"])
def test_a_401_wins_over_the_requests_own_errors(world: dict[str, Any], query: str, token_key: str | None) -> None:
    """The hot reads are planned before the token is known (they go with its lookup): the plan's errors (bad
    parameters) still come after the token's."""
    token = None if token_key is None else world.get(token_key, "bm90LWEtdG9rZW4=")
    fast, _ = both(f"{LIST}{query}", token)
    assert fast.status_code == 401
    assert orjson.loads(fast.content)["status_code"] == 2000


@pytest.mark.parametrize(
    "path",
    ["LOC03", "loc03", "LOC03/", "BEL1", "ALLOWED", "HIDDEN", "LOC08", "NOPE", "x" * 80],
)
def test_object_requests_answer_the_same(world: dict[str, Any], path: str) -> None:
    fast, _ = both(f"{LIST}/{path}", world["token"])
    assert served_fast(f"{LIST}/{path}", world["token"])
    if path in ("HIDDEN", "LOC08", "NOPE"):
        assert fast.status_code == 404
        assert orjson.loads(fast.content)["status_code"] == 2003


def test_deeper_objects_take_the_drf_path(world: dict[str, Any]) -> None:
    evse = Location.objects.get(ocpi_id="LOC03").evses.get()
    both(f"{LIST}/LOC03/{evse.uid}", world["token"])
    assert not served_fast(f"{LIST}/LOC03/{evse.uid}", world["token"])
    assert not served_fast("/ocpi/2.2.1/cpo/tariffs", world["token"])


@pytest.mark.parametrize(
    ("token_key", "headers", "status"),
    [
        (None, {}, 401),
        ("bogus", {}, 401),
        ("token_a", {}, 401),  # token A of an invited partner: not for functional modules
        ("token", {"HTTP_OCPI_TO_COUNTRY_CODE": "NL", "HTTP_OCPI_TO_PARTY_ID": "OWN"}, 200),
        ("token", {"HTTP_OCPI_TO_COUNTRY_CODE": "be", "HTTP_OCPI_TO_PARTY_ID": "ow2"}, 200),
        ("token", {"HTTP_OCPI_TO_COUNTRY_CODE": "NL", "HTTP_OCPI_TO_PARTY_ID": "OWE"}, 404),  # ours, not a CPO
        ("token", {"HTTP_OCPI_TO_COUNTRY_CODE": "NL"}, 200),  # half a pair
        ("token", {"HTTP_OCPI_FROM_COUNTRY_CODE": "DE", "HTTP_OCPI_FROM_PARTY_ID": "PRT"}, 200),
        ("bogus", {"HTTP_OCPI_TO_COUNTRY_CODE": "NL"}, 401),  # a 401 wins over a 2001
        ("bogus", {"HTTP_OCPI_TO_COUNTRY_CODE": "NL", "HTTP_OCPI_TO_PARTY_ID": "OWE"}, 401),  # and over a 404
        (None, {"HTTP_OCPI_TO_COUNTRY_CODE": "NL", "HTTP_OCPI_TO_PARTY_ID": "XXX"}, 401),
        ("token_a", {"HTTP_OCPI_TO_COUNTRY_CODE": "NL", "HTTP_OCPI_TO_PARTY_ID": "XXX"}, 401),
    ],
)
def test_authentication_and_routing_answer_the_same(
    world: dict[str, Any], token_key: str | None, headers: dict[str, str], status: int
) -> None:
    token = None if token_key is None else world.get(token_key, "bm90LWEtdG9rZW4=")
    addressed_to_be = headers.get("HTTP_OCPI_TO_COUNTRY_CODE") == "be"
    for path in (f"{LIST}?limit=2", f"{LIST}/{'BEL1' if addressed_to_be else 'LOC01'}"):
        fast, _ = both(path, token, **headers)
        assert fast.status_code == status
        assert served_fast(path, token, **headers)
    if status == 200 and "HTTP_OCPI_FROM_COUNTRY_CODE" in headers:
        assert fast.headers["OCPI-to-country-code"] == "DE"
        assert fast.headers["OCPI-to-party-id"] == "PRT"
    if addressed_to_be:
        page = Client().get(f"{LIST}?limit=2", HTTP_AUTHORIZATION=auth_header(token or ""), **headers)  # type: ignore[arg-type]
        assert [item["id"] for item in orjson.loads(page.content)["data"]] == ["BEL0", "BEL1"]


@override_settings(OCPI_COUNT_CACHE_SECONDS=60)
def test_offset_pages_from_anchors_are_the_same_slices(world: dict[str, Any], monkeypatch: Any) -> None:
    monkeypatch.setattr(pagination, "ANCHOR_EVERY", 3)
    walk = [
        item["id"]
        for item in orjson.loads(
            Client().get(f"{LIST}?limit=100", HTTP_AUTHORIZATION=auth_header(world["token"])).content
        )["data"]
    ]
    for offset in range(len(walk) + 2):
        cache.clear()  # the first request is an offset's: the count comes from the anchors' scan
        pagination._kept.clear()  # and what this process kept of them
        fast, _ = both(f"{LIST}?offset={offset}&limit=2", world["token"])
        assert [item["id"] for item in orjson.loads(fast.content)["data"]] == walk[offset : offset + 2], offset
        assert fast.headers["X-Total-Count"] == str(len(walk)), offset


@override_settings(OCPI_DB_PREPARE=False)
def test_statements_work_unprepared(world: dict[str, Any]) -> None:
    both(f"{LIST}?limit=2", world["token"])
    both(f"{LIST}/LOC02", world["token"])


def _drop_connection() -> int:
    """Have the database end this process's kept connection (as a restart would); its backend pid."""
    connection.ensure_connection()
    pid = connection.connection.info.backend_pid
    with pg_session_elsewhere() as other:
        other.execute("SELECT pg_terminate_backend(%s)", [pid])
    return int(pid)


_POSTGRES_ONLY = pytest.mark.skipif(connection.vendor != "postgresql", reason="ends a PostgreSQL backend")


@_POSTGRES_ONLY
def test_a_connection_that_died_between_requests_is_opened_again(transactional_db: None) -> None:
    """What Django's per-request `SELECT 1` health check would catch: the database dropped the kept connection."""
    Party.objects.create(country_code="NL", party_id="OWN", role=Role.CPO, name="Own CPO")
    own_location("LOC1")
    _, token = make_partner()
    client = Client(HTTP_AUTHORIZATION=auth_header(token))
    assert client.get(f"{LIST}/LOC1").status_code == 200
    pid = _drop_connection()
    response = client.get(f"{LIST}/LOC1")
    assert response.status_code == 200
    assert orjson.loads(response.content)["data"]["id"] == "LOC1"
    assert connection.connection.info.backend_pid != pid


@_POSTGRES_ONLY
def test_a_patch_on_a_connection_that_died_between_requests_opens_it_again(transactional_db: None) -> None:
    """The receiver's PATCH starts its transaction with the token lookup: a kept connection the database dropped
    fails at that first statement, before anything was written, and the PATCH runs once more on a new one."""
    for country, party, role in (("NL", "OWN", Role.CPO), ("NL", "OWE", Role.EMSP)):
        Party.objects.create(country_code=country, party_id=party, role=role, name=party)
    partner, token = make_partner(roles=(("DE", "PRT", Role.EMSP), ("DE", "PRC", Role.CPO)))
    data = location_data("PLOC1", country_code="DE", party_id="PRC", evses=1, last_updated="2024-03-01T00:00:00Z")
    location_put(partner=partner, key=Key("DE", "PRC", "PLOC1"), data=data)
    uid = Evse.objects.get().uid
    client = Client(HTTP_AUTHORIZATION=auth_header(token))
    url = f"/ocpi/2.2.1/emsp/locations/DE/PRC/PLOC1/{uid}"
    body = {"status": "CHARGING", "last_updated": "2024-03-02T00:00:00Z"}
    assert client.patch(url, orjson.dumps(body), "application/json").status_code == 200
    pid = _drop_connection()
    body = {"status": "BLOCKED", "last_updated": "2024-03-02T00:01:00Z"}
    response = client.patch(url, orjson.dumps(body), "application/json")
    assert response.status_code == 200, response.content
    assert connection.connection.info.backend_pid != pid
    assert Evse.objects.get().status == "BLOCKED"
    assert list(EvseStatusChange.objects.order_by("since").values_list("status", flat=True))[-2:] == [
        "CHARGING",
        "BLOCKED",
    ]


# --- the receiver's PATCH of an EVSE (a status change) ---

RECEIVER = "/ocpi/2.2.1/emsp/locations/DE/PRC/PLOC1"


@pytest.fixture
def receiver(own_parties: list[Party]) -> str:
    """A partner CPO (DE*PRC) whose location PLOC1 (2 EVSEs) we hold; returns its token."""
    partner, token = make_partner(roles=(("DE", "PRT", Role.EMSP), ("DE", "PRC", Role.CPO)))
    make_partner(name="other", roles=(("FR", "OTH", Role.CPO),))
    data = location_data("PLOC1", country_code="DE", party_id="PRC", evses=2, last_updated="2024-03-01T00:00:00Z")
    location_put(partner=partner, key=Key("DE", "PRC", "PLOC1"), data=data)
    return token


def _stored() -> tuple[Any, ...]:
    location = Location.objects.get(ocpi_id="PLOC1")
    evses = list(Evse.objects.filter(location=location).order_by("pk").values_list("uid", "status", "last_updated"))
    history = list(EvseStatusChange.objects.order_by("pk").values_list("status", "since"))
    return location.doc, location.last_updated, evses, history


def patch_both(path: str, body: bytes, token: str, content_type: str = "application/json", **headers: str) -> Any:
    """The same PATCH through the fast path and through DRF, each on the same stored state (rolled back after):
    equal answers and equal stored results."""
    outcomes = []
    for fast in (True, False):
        with override_settings(OCPI_FAST_PATH=fast), transaction.atomic():
            headers["HTTP_AUTHORIZATION"] = auth_header(token)
            response = Client().patch(path, body, content_type=content_type, **headers)  # type: ignore[arg-type]
            outcomes.append((_normal(response), _stored()))
            transaction.set_rollback(True)
    assert outcomes[0] == outcomes[1], path
    return outcomes[0]


def _evse_uid() -> str:
    return str(Evse.objects.filter(location__ocpi_id="PLOC1").order_by("pk").values_list("uid", flat=True)[0])


@pytest.mark.parametrize(
    ("body", "ocpi_status"),
    [
        ({"status": "CHARGING", "last_updated": "2024-03-02T00:00:00Z"}, 1000),
        ({"status": "OUTOFORDER", "floor_level": "-1", "last_updated": "2024-03-02T00:00:00.123Z"}, 1000),
        ({"status": "CHARGING", "last_updated": "2020-01-01T00:00:00Z"}, 1000),  # older than stored: ignored
        ({"status": "CHARGING"}, 2001),  # no last_updated
        ({"status": "SLEEPING", "last_updated": "2024-03-02T00:00:00Z"}, 2001),
        ({"uid": "OTHER", "status": "CHARGING", "last_updated": "2024-03-02T00:00:00Z"}, 2001),
        ([{"status": "CHARGING"}], 2001),
        (None, 2001),
    ],
)
def test_evse_patches_answer_and_store_the_same(receiver: str, body: Any, ocpi_status: int) -> None:
    """Valid JSON: HTTP 200 whatever the OCPI status (status_codes: no HTTP error once at the OCPI layer)."""
    (code, envelope, _), _ = patch_both(f"{RECEIVER}/{_evse_uid()}", orjson.dumps(body), receiver)
    assert (code, envelope["status_code"]) == (200, ocpi_status)


def test_a_patch_addressed_to_a_party_we_do_not_host_is_404_and_stores_nothing(receiver: str) -> None:
    """Both paths: the `to` party must be one of ours (any role); else the request was routed to the wrong platform."""
    url, before = f"{RECEIVER}/{_evse_uid()}", _stored()
    body = orjson.dumps({"status": "CHARGING", "last_updated": "2024-03-02T00:00:00Z"})

    (code, envelope, _), stored = patch_both(
        url, body, receiver, HTTP_OCPI_TO_COUNTRY_CODE="FR", HTTP_OCPI_TO_PARTY_ID="QQQ"
    )
    assert (code, envelope["status_code"], stored) == (404, 2000, before)
    assert "FR*QQQ" in envelope["status_message"]

    (code, envelope, _), stored = patch_both(
        url, body, receiver, HTTP_OCPI_TO_COUNTRY_CODE="NL", HTTP_OCPI_TO_PARTY_ID="OWE"
    )
    assert (code, envelope["status_code"]) == (200, 1000)
    assert stored != before


def test_a_status_patch_is_served_by_the_fast_path(receiver: str) -> None:
    uid = _evse_uid()
    body = orjson.dumps({"status": "CHARGING", "last_updated": "2024-03-02T00:00:00Z"})
    request = RequestFactory().patch(
        f"{RECEIVER}/{uid}", body, content_type="application/json", HTTP_AUTHORIZATION=auth_header(receiver)
    )
    response = fast_dispatch(request)
    assert response is not None
    assert response.status_code == 200
    assert Evse.objects.get(uid=uid).status == "CHARGING"
    assert orjson.loads(Location.objects.get(ocpi_id="PLOC1").doc)["evses"][0]["status"] == "CHARGING"


@pytest.mark.parametrize(
    ("path", "body", "content_type", "status"),
    [
        ("{receiver}/NOPE", b'{"status": "CHARGING", "last_updated": "2024-03-02T00:00:00Z"}', "application/json", 404),
        (
            "/ocpi/2.2.1/emsp/locations/DE/PRC/NOPE/{uid}",
            b'{"status": "CHARGING", "last_updated": "2024-03-02T00:00:00Z"}',
            "application/json",
            404,
        ),
        (
            "/ocpi/2.2.1/emsp/locations/FR/OTH/PLOC1/{uid}",  # not the caller's party
            b'{"status": "CHARGING", "last_updated": "2024-03-02T00:00:00Z"}',
            "application/json",
            404,
        ),
        ("{receiver}/{uid}", b'{"status": ', "application/json", 400),  # not JSON: DRF answers
        ("{receiver}/{uid}", b"status=CHARGING", "text/plain", 415),  # not JSON: DRF answers
        ("{receiver}/{uid}", b"", "application/json", 200),
        ("{receiver}/{uid}/", b'{"status": "BLOCKED", "last_updated": "2024-03-02T00:00:00Z"}', "", 200),
    ],
)
def test_evse_patch_errors_answer_the_same(
    receiver: str, path: str, body: bytes, content_type: str, status: int
) -> None:
    url = path.format(receiver=RECEIVER, uid=_evse_uid())
    (code, _, _), _ = patch_both(url, body, receiver, content_type=content_type)
    assert code == status


def test_evse_patch_routing_headers_answer_the_same(receiver: str) -> None:
    body = orjson.dumps({"status": "CHARGING", "last_updated": "2024-03-02T00:00:00Z"})
    (code, _, headers), _ = patch_both(
        f"{RECEIVER}/{_evse_uid()}",
        body,
        receiver,
        HTTP_OCPI_FROM_COUNTRY_CODE="DE",
        HTTP_OCPI_FROM_PARTY_ID="PRC",
        HTTP_OCPI_TO_COUNTRY_CODE="NL",
        HTTP_OCPI_TO_PARTY_ID="OWE",
    )
    assert code == 200
    assert headers["OCPI-to-party-id"] == "PRC"
    assert headers["OCPI-from-party-id"] == "OWE"
