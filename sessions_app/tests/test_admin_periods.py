"""The session page shows the charging periods as a table (start, duration, every dimension with its unit) and a
power/energy chart drawn as inline SVG from the same periods."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from ocpi_core.models import Party
from sessions_app.charts import power_energy_chart, read_periods
from sessions_app.services import session_start, session_stop, session_update
from sessions_app.tests.factories import cdr_token, own_charging_location

URL = "/admin/sessions_app/session/"
START = datetime(2024, 3, 4, 9, 0, tzinfo=UTC)


@pytest.fixture
def admin_client(own_parties: list[Party]) -> Client:
    client = Client()
    client.force_login(get_user_model().objects.create_superuser("admin", "admin@example.com", "pw"))
    return client


def period(minute: int, kwh: str, hours: str, **extra: str) -> dict[str, object]:
    dimensions = [{"type": "ENERGY", "volume": Decimal(kwh)}, {"type": "TIME", "volume": Decimal(hours)}]
    dimensions += [{"type": name, "volume": Decimal(value)} for name, value in extra.items()]
    return {"start_date_time": f"2024-03-04T09:{minute:02d}:00Z", "dimensions": dimensions, "tariff_id": "T1"}


def test_the_session_page_shows_the_periods_table_and_an_svg_chart(admin_client: Client) -> None:
    own_charging_location()
    session = session_start(
        location_id="LOC1",
        evse_uid="EVSE1",
        connector_id="1",
        cdr_token=cdr_token(uid="RFID42"),
        auth_method="WHITELIST",
        start=START,
    )
    session_update(
        session=session, charging_period=period(0, "5.5", "0.5", MAX_POWER="11"), kwh=Decimal("5.5"), at=START
    )
    session_update(session=session, charging_period=period(30, "2.75", "0.25"), kwh=Decimal("8.25"), at=START)
    session_stop(session=session, at=datetime(2024, 3, 4, 9, 45, tzinfo=UTC))

    page = admin_client.get(f"{URL}{session.pk}/change/").content.decode()

    assert '<table class="charging-periods">' in page
    for text in ("ENERGY (kWh)", "TIME (h)", "MAX_POWER (kW)", "2024-03-04 09:00:00 UTC", "30 min", "15 min", "5.5"):
        assert text in page, text
    svg = page[page.index('<svg xmlns="http://www.w3.org/2000/svg" class="session-chart"') :]
    svg = svg[: svg.index("</svg>")]
    assert svg.count('<rect class="bar"') == 2
    assert "period 1: 11.00 kW" in svg  # the reported MAX_POWER
    assert "period 2: 11.00 kW" in svg  # 2.75 kWh over a quarter of an hour
    assert "8.250 kWh so far" in svg
    assert "<polyline" in svg


def test_no_periods_no_chart() -> None:
    assert power_energy_chart(read_periods([], None)) == ""
    assert power_energy_chart(read_periods([period(0, "1", "1")], None)) == ""  # still running: no end to draw to
