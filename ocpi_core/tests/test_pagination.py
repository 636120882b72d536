"""Pagination of Sender lists (REFERENCE §2.7) through real HTTP, on the probe endpoint listing Party rows by
`updated_at`: offset/limit, the server cap, X-Total-Count, X-Limit, date windows, Link, and the keyset cursor."""

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from ocpi_core.client import OcpiClient
from ocpi_core.constants import Role
from ocpi_core.models import Party
from ocpi_core.tests.test_protocol import assert_envelope
from tests.probe.urls import PROBE_COUNTRY

pytestmark = pytest.mark.urls("tests.probe.urls")

PROBE = "/ocpi/2.2.1/probe"
T0 = datetime(2024, 3, 1, 12, 0, 0, tzinfo=UTC)


def make_objects(stamps: list[datetime]) -> list[int]:
    """One probe object (a Party row) per timestamp, created in this order; returns their pks in creation order."""
    parties = Party.objects.bulk_create(
        Party(country_code=PROBE_COUNTRY, party_id=f"{index:03d}", role=Role.CPO, name=f"probe {index}")
        for index in range(len(stamps))
    )
    for party, stamp in zip(parties, stamps, strict=True):
        party.updated_at = stamp
    Party.objects.bulk_update(parties, ["updated_at"])  # bulk_update leaves auto_now alone
    return [party.pk for party in parties]


def minutes(count: int) -> list[datetime]:
    return [T0 + timedelta(minutes=index) for index in range(count)]


def stamp(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def pks(response: httpx.Response) -> list[int]:
    return [item["pk"] for item in response.json()["data"]]


def next_link(response: httpx.Response) -> str | None:
    header = response.headers.get("Link")
    if header is None:
        return None
    url, _, rel = header.partition(";")
    assert rel.strip() == 'rel="next"'
    assert url.startswith("<")
    assert url.endswith(">")
    return url[1:-1]


def link_params(response: httpx.Response) -> dict[str, str]:
    link = next_link(response)
    assert link is not None
    return {key: values[0] for key, values in parse_qs(urlsplit(link).query).items()}


def follow_all(client: httpx.Client, params: dict[str, Any]) -> tuple[list[int], list[httpx.Response]]:
    """Every page from the first request on, following Link; returns the pks served and the responses."""
    responses = [client.get(PROBE, params=params)]
    while (link := next_link(responses[-1])) is not None:
        assert len(responses) < 200, "pagination does not terminate"
        responses.append(client.get(link))
    served: list[int] = []
    for response in responses:
        assert_envelope(response, 200, 1000)
        served.extend(pks(response))
    return served, responses


@pytest.fixture
def probe(ocpi, registered_partner) -> httpx.Client:
    """A registered partner's client on the live server."""
    _, token = registered_partner
    return ocpi(token)


def test_offset_and_limit_select_a_window(probe):
    ids = make_objects(minutes(5))

    response = probe.get(PROBE, params={"offset": 1, "limit": 2})

    assert_envelope(response, 200, 1000)
    assert pks(response) == ids[1:3]
    assert response.headers["X-Total-Count"] == "5"
    assert response.headers["X-Limit"] == "100"
    assert response.json()["data"][0]["last_updated"] == "2024-03-01T12:01:00Z"
    params = link_params(response)
    assert (params["offset"], params["limit"]) == ("3", "2")


def test_order_is_by_timestamp_then_pk_not_by_creation(probe):
    ids = make_objects([T0 + timedelta(minutes=3), T0, T0 + timedelta(minutes=1), T0])

    response = probe.get(PROBE)

    assert pks(response) == [ids[1], ids[3], ids[2], ids[0]]


def test_limit_is_capped_and_x_limit_is_always_the_cap(probe, settings):
    settings.OCPI_MAX_PAGE_LIMIT = 3
    ids = make_objects(minutes(7))

    first = probe.get(PROBE, params={"limit": 50})
    unasked = probe.get(PROBE)
    last = probe.get(PROBE, params={"offset": 6, "limit": 50})
    small = probe.get(PROBE, params={"limit": 2})

    assert pks(first) == ids[:3]
    assert first.headers["X-Limit"] == "3"
    assert link_params(first)["limit"] == "3"
    assert link_params(first)["offset"] == "3"
    assert pks(unasked) == ids[:3]
    assert pks(last) == ids[6:]
    assert last.headers["X-Limit"] == "3"  # also on a short last page
    assert "Link" not in last.headers
    assert small.headers["X-Limit"] == "3"
    assert len(pks(small)) == 2


def test_total_count_counts_date_filters_not_offset_or_limit(probe):
    make_objects(minutes(10))
    params = {"date_from": stamp(T0 + timedelta(minutes=2)), "date_to": stamp(T0 + timedelta(minutes=8))}

    responses = [probe.get(PROBE, params={**params, **page}) for page in ({}, {"offset": 4}, {"limit": 1})]

    assert [r.headers["X-Total-Count"] for r in responses] == ["6", "6", "6"]
    assert [len(pks(r)) for r in responses] == [6, 2, 1]
    assert probe.get(PROBE).headers["X-Total-Count"] == "10"


def test_date_from_is_inclusive_and_date_to_exclusive(probe):
    ids = make_objects(minutes(4))

    response = probe.get(
        PROBE, params={"date_from": stamp(T0 + timedelta(minutes=1)), "date_to": stamp(T0 + timedelta(minutes=3))}
    )

    assert pks(response) == ids[1:3]


def test_dates_are_accepted_with_and_without_z_and_with_fractions(probe):
    ids = make_objects(minutes(3))

    for value in ("2024-03-01T12:01:00Z", "2024-03-01T12:01:00", "2024-03-01T12:01:00.000Z", "2024-03-01T12:00:59.5"):
        assert pks(probe.get(PROBE, params={"date_from": value})) == ids[1:], value


def test_consecutive_windows_neither_overlap_nor_miss(probe):
    ids = make_objects(minutes(9))
    bounds = [T0, T0 + timedelta(minutes=3), T0 + timedelta(minutes=6), T0 + timedelta(minutes=9)]

    windows = [pks(probe.get(PROBE, params={"date_from": stamp(a), "date_to": stamp(b)})) for a, b in pairwise(bounds)]

    assert windows == [ids[0:3], ids[3:6], ids[6:9]]


def test_link_only_when_more_pages_and_keeps_filters(probe):
    make_objects(minutes(6))
    params = {"date_from": stamp(T0 + timedelta(minutes=1)), "date_to": stamp(T0 + timedelta(minutes=5)), "limit": 2}

    first = probe.get(PROBE, params=params)
    complete = probe.get(PROBE, params={**params, "limit": 4})
    exact_end = probe.get(PROBE, params={**params, "offset": 2})

    kept = link_params(first)
    assert (kept["date_from"], kept["date_to"], kept["limit"], kept["offset"]) == (
        "2024-03-01T12:01:00Z",
        "2024-03-01T12:05:00Z",
        "2",
        "2",
    )
    assert "Link" not in complete.headers  # everything fit on one page
    assert "Link" not in exact_end.headers  # the last page ends exactly at the total


def test_link_scheme_and_host_come_from_ocpi_base_url(probe, settings):
    settings.OCPI_BASE_URL = "https://ocpi.example.com"
    make_objects(minutes(3))

    link = next_link(probe.get(PROBE, params={"limit": 1}))

    assert link is not None
    parts = urlsplit(link)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "ocpi.example.com", PROBE)


@pytest.mark.parametrize("limit", [1, 4, 7, 25])
def test_following_links_serves_every_object_once_in_order(probe, ocpi_base_url, limit):
    ids = make_objects([T0 + timedelta(seconds=(index * 7) % 23) for index in range(23)])
    expected = list(Party.objects.filter(pk__in=ids).order_by("updated_at", "pk").values_list("pk", flat=True))

    served, responses = follow_all(probe, {"limit": limit})

    assert served == expected
    assert len(responses) == -(-23 // limit)
    assert {r.headers["X-Total-Count"] for r in responses} == {"23"}


def test_following_links_with_shared_timestamps(probe, ocpi_base_url):
    """Many objects with one timestamp: the pk breaks the tie, so no page repeats or skips one."""
    ids = make_objects([T0] * 12 + [T0 + timedelta(seconds=1)] * 5 + [T0] * 4)
    expected = sorted(ids[:12] + ids[17:]) + ids[12:17]

    served, _ = follow_all(probe, {"limit": 5})

    assert served == expected


def test_following_links_with_sub_millisecond_timestamps(probe, ocpi_base_url):
    """Timestamps that differ in microseconds only (what timezone.now() produces): the cursor must not round."""
    base = T0 + timedelta(microseconds=123_000)
    ids = make_objects([base + timedelta(microseconds=micro) for micro in (900, 100, 500, 700, 300, 1500, 2100)])
    expected = list(Party.objects.filter(pk__in=ids).order_by("updated_at", "pk").values_list("pk", flat=True))

    for limit in (1, 2, 3):
        served, _ = follow_all(probe, {"limit": limit})
        assert served == expected, limit


def test_following_links_within_a_date_window(probe, ocpi_base_url):
    ids = make_objects(minutes(20))
    params = {"date_from": stamp(T0 + timedelta(minutes=5)), "date_to": stamp(T0 + timedelta(minutes=15)), "limit": 3}

    served, responses = follow_all(probe, params)

    assert served == ids[5:15]
    assert {r.headers["X-Total-Count"] for r in responses} == {"10"}


def test_object_updated_while_paging_skips_nothing(probe, ocpi_base_url):
    """An object updated mid-pull moves behind the cursor; offset paging would now skip the next object, the Link's
    cursor does not, and the moved object comes once more at the end, in its new state."""
    ids = make_objects(minutes(6))
    first = probe.get(PROBE, params={"limit": 2})
    Party.objects.filter(pk=ids[0]).update(updated_at=T0 + timedelta(hours=1))

    rest, responses = follow_all(probe, dict(parse_qs(urlsplit(next_link(first) or "").query)))

    assert pks(first) + rest == [*ids, ids[0]]
    assert "Link" not in responses[-1].headers


@pytest.mark.parametrize("cursor", ["garbage!!", "bm90LWEtY3Vyc29y", "MjAyNC0wMy0wMVQxMjowMDowMFp8eA", ""])
def test_damaged_cursor_falls_back_to_offset(probe, cursor):
    ids = make_objects(minutes(6))

    response = probe.get(PROBE, params={"offset": 2, "limit": 2, "cursor": cursor})

    assert_envelope(response, 200, 1000)
    assert pks(response) == ids[2:4]
    assert link_params(response)["offset"] == "4"


def test_cursor_from_link_matches_offset_paging(probe):
    ids = make_objects(minutes(6))

    via_link = probe.get(PROBE, params=link_params(probe.get(PROBE, params={"limit": 2})))
    via_offset = probe.get(PROBE, params={"offset": 2, "limit": 2})

    assert pks(via_link) == pks(via_offset) == ids[2:4]


def test_limit_zero_and_offset_past_the_end(probe):
    make_objects(minutes(3))

    zero = probe.get(PROBE, params={"limit": 0})
    past = probe.get(PROBE, params={"offset": 10})

    for response in (zero, past):
        assert_envelope(response, 200, 1000)
        assert response.json()["data"] == []
        assert response.headers["X-Total-Count"] == "3"
        assert "Link" not in response.headers


@pytest.mark.parametrize(
    "params",
    [
        {"offset": "-1"},
        {"limit": "-5"},
        {"limit": "abc"},
        {"limit": "1.5"},
        {"offset": "2e3"},
        {"offset": "+5"},
        {"limit": "1_000"},
        {"limit": " 5"},
        {"offset": "\u0663"},  # ARABIC-INDIC DIGIT THREE: int() would read it
        {"date_from": "yesterday"},
        {"date_from": "2024-03-01"},
        {"date_to": "2024-03-01T12:00:00+01:00"},
        {"date_from": "2024-03-01T12:00:00+00:00"},
        {"date_to": "2024-13-01T12:00:00Z"},
    ],
)
def test_bad_parameters_are_2001(probe, params):
    make_objects(minutes(2))

    body = assert_envelope(probe.get(PROBE, params=params), 200, 2001)

    assert next(iter(params)) in body["status_message"]


def test_ocpi_client_pulls_every_page_from_our_own_server(probe, ocpi_base_url, registered_partner):
    """Our client against our server: iter_pages follows our Links end to end."""
    _, token = registered_partner
    ids = make_objects([T0] * 4 + minutes(9))
    expected = list(Party.objects.filter(pk__in=ids).order_by("updated_at", "pk").values_list("pk", flat=True))

    pages = list(OcpiClient(token=token).iter_pages(f"{ocpi_base_url}{PROBE}", limit=4))

    assert [item["pk"] for page in pages for item in page.data] == expected
    assert len(pages) == 4


def test_a_walk_through_links_counts_once_and_the_count_follows_new_objects(db, django_assert_num_queries):
    """The first page counts; pages reached through the Link carry X-Total-Count in the cursor (one query each: a
    keyset range of the page's rows), raised when more objects turn up than were counted."""
    from django.http import QueryDict

    from ocpi_core.pagination import paginate

    make_objects(minutes(5))
    queryset = Party.objects.filter(country_code=PROBE_COUNTRY)
    with django_assert_num_queries(2):
        first = paginate(queryset, QueryDict("limit=2"), "/ocpi/2.2.1/probe", date_field="updated_at")
    assert first.headers["X-Total-Count"] == "5"
    late = Party.objects.create(country_code=PROBE_COUNTRY, party_id="999", role=Role.CPO, name="late")
    Party.objects.filter(pk=late.pk).update(updated_at=T0 + timedelta(hours=2))  # one more arrives during the walk
    query = urlsplit(first.headers["Link"].split(">")[0].lstrip("<")).query
    pages = [first]
    while "Link" in pages[-1].headers:
        with django_assert_num_queries(1):
            pages.append(paginate(queryset, QueryDict(query), "/ocpi/2.2.1/probe", date_field="updated_at"))
        if "Link" in pages[-1].headers:
            query = urlsplit(pages[-1].headers["Link"].split(">")[0].lstrip("<")).query
    assert sum(len(page.objects) for page in pages) == 6
    assert pages[-1].headers["X-Total-Count"] == "6"
