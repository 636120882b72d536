"""Back-office for sessions: list with filters and search, read-only detail pages, and the stop action going through
the services (push queued, signal sent)."""

from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from conftest import make_partner
from ocpi_core.constants import Role
from ocpi_core.models import Delivery, Party
from sessions_app.models import Session
from sessions_app.services import Key, session_put, session_start, session_update
from sessions_app.tests.factories import cdr_token, own_charging_location, session_data

URL = "/admin/sessions_app/session/"


@pytest.fixture
def admin_client(own_parties: list[Party]) -> Client:
    user = get_user_model().objects.create_superuser("admin", "admin@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def sessions(admin_client: Client) -> tuple[Session, Session]:
    own_charging_location()
    make_partner(name="emsp", roles=(("DE", "PRT", Role.EMSP),))
    own = session_start(
        location_id="LOC1",
        evse_uid="EVSE1",
        connector_id="1",
        cdr_token=cdr_token(uid="RFID42"),
        auth_method="WHITELIST",
    )
    own = session_update(session=own, kwh=Decimal("12.5"))
    cpo, _ = make_partner(name="cpo", roles=(("DE", "CPO", Role.CPO),))
    theirs = session_put(partner=cpo, key=Key("DE", "CPO", "S1"), data=session_data()).session
    return own, theirs


def test_list_filters_search_and_detail(admin_client: Client, sessions: tuple[Session, Session]) -> None:
    own, theirs = sessions
    page = admin_client.get(URL).content.decode()
    assert own.ocpi_id in page
    assert "S1" in page
    assert "12.5" in page
    assert admin_client.get(URL, {"owner": "own"}).content.decode().count("RFID42") >= 1
    assert "S1" not in admin_client.get(URL, {"owner": "own"}).content.decode().split("result_list")[-1]
    assert own.ocpi_id in admin_client.get(URL, {"q": "RFID42"}).content.decode()
    for params in ({"status": "ACTIVE"}, {"party": "DE*CPO"}, {"token_party": "NL*OWE"}, {"location": "LOC1"}):
        assert admin_client.get(URL, params).status_code == 200
    detail = admin_client.get(f"{URL}{theirs.pk}/change/")
    assert detail.status_code == 200
    assert b"0.378125" in detail.content
    assert b'name="kwh"' not in detail.content  # read-only


def test_stop_action_goes_through_the_service(admin_client: Client, sessions: tuple[Session, Session]) -> None:
    own, theirs = sessions
    response = admin_client.post(URL, {"action": "stop_completed", "_selected_action": [own.pk, theirs.pk]})
    assert response.status_code == 302
    stored: Any = Session.objects.get(pk=own.pk)
    assert stored.status == "COMPLETED"
    assert stored.end_date_time is not None
    assert Session.objects.get(pk=theirs.pk).status == "ACTIVE"  # a partner's session is not ours to stop
    assert Delivery.objects.filter(module="sessions").count() == 0  # the token's eMSP offers no Sessions Receiver
