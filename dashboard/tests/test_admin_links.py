"""Links between related objects in the back-office (issue #6 "Admin polish"): the partner page, the location page,
the EVSE page and the command page link to changelists filtered on the related rows; following them gives 200 and
only those rows."""

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from cdrs.tests.factories import own_cdr
from conftest import make_partner
from dashboard.models import EvseStatusChange
from dashboard.tests.test_dashboard import session
from locations.models import Evse, Location
from locations.tests.factories import own_location
from ocpi_core.constants import Role
from ocpi_core.models import Party
from tokens.tests.factories import partner_token

START = datetime(2025, 3, 1, 10, tzinfo=UTC)


@pytest.fixture
def staff(own_parties: list[Party]) -> Client:
    user = get_user_model().objects.create_superuser("admin", "admin@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


def links(html: str) -> dict[str, str]:
    """The page's links by their text."""
    return {text: href.replace("&amp;", "&") for href, text in re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)</a>', html)}


def rows(client: Client, url: str) -> list[Any]:
    response = client.get(url)
    assert response.status_code == 200, url  # an unknown lookup would redirect with ?e=1
    assert "e=1" not in response.get("Location", "")
    return list(response.context["cl"].queryset)


def test_partner_page_links_to_its_filtered_data(staff: Client) -> None:
    cpo, _ = make_partner(name="cpo", roles=(("DE", "CPO", Role.CPO),))
    other, _ = make_partner(name="other", roles=(("DE", "OTH", Role.CPO),))
    session("S1", START, 30, "5", partner=cpo, party=("DE", "CPO"), location="PLOC")
    session("S2", START, 30, "5", partner=other, party=("DE", "OTH"), location="PLOC")
    session("S3", START, 30, "5")  # our own
    partner_token(cpo, "0AFF0001", party_id="CPO")
    partner_token(other, "0AFF0002", party_id="OTH")
    html = staff.get(reverse("admin:ocpi_core_partner_change", args=[cpo.pk])).content.decode()
    found = links(html)
    for text in ("traffic log", "deliveries", "sync runs", "sessions", "CDRs", "tokens", "commands"):
        assert f"partner__id__exact={cpo.pk}" in found[text], text
        assert all(row.partner_id == cpo.pk for row in rows(staff, found[text])), text
    assert [s.ocpi_id for s in rows(staff, found["sessions"])] == ["S1"]
    assert [t.uid for t in rows(staff, found["tokens"])] == ["0AFF0001"]


def test_location_page_links_to_its_sessions_and_cdrs(staff: Client) -> None:
    cdr = own_cdr("C1")
    location = own_location(cdr.location_id)
    own_location("LOC2")
    session("S1", START, 30, "5", location=cdr.location_id)
    session("S2", START, 30, "5", location="LOC2")
    session("S3", START, 30, "5", location=cdr.location_id, partner=make_partner(name="cpo")[0], party=("DE", "CPO"))
    html = staff.get(reverse("admin:locations_location_change", args=[location.pk])).content.decode()
    found = links(html)
    assert [s.ocpi_id for s in rows(staff, found["sessions"])] == ["S1"]  # not LOC2's, not the same id of a CPO's
    assert [c.ocpi_id for c in rows(staff, found["CDRs"])] == ["C1"]


def test_evse_page_links_to_its_status_history(staff: Client) -> None:
    own_location("LOC1")
    own_location("LOC2")
    evse = Evse.objects.get(location__ocpi_id="LOC1")
    EvseStatusChange.objects.create(evse=evse, status="CHARGING", since=datetime.now(UTC) + timedelta(seconds=1))
    html = staff.get(reverse("admin:locations_evse_change", args=[evse.pk])).content.decode()
    history = rows(staff, links(html)["status changes"])
    assert [c.status for c in history] == ["CHARGING", "AVAILABLE"]
    assert {c.evse_id for c in history} == {evse.pk}
    assert EvseStatusChange.objects.exclude(evse=evse).exists()
    assert Location.objects.count() == 2
