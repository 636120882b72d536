"""CDR generation from our own sessions (REFERENCE §8.1: sealed at the session's start, priced by the tariff engine,
queued for the token's eMSP only) and credit CDRs, through the services the sessions module and the admin call."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from cdrs.models import Cdr
from cdrs.services import cdr_credit, cdr_generate
from conftest import make_partner
from ocpi_core.constants import Role
from ocpi_core.exceptions import InvalidParameters
from ocpi_core.models import Delivery, Partner, PartnerEndpoint
from sessions_app.services import session_start, session_stop, session_update
from sessions_app.tests.factories import cdr_token, own_charging_location
from tariffs.services import Key as TariffKey
from tariffs.services import tariff_put
from tariffs.tests.factories import tariff_data

pytestmark = pytest.mark.django_db
START = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
EMSP_CDRS = "http://127.0.0.1:9/ocpi/2.2.1/emsp/cdrs"


@pytest.fixture
def emsp(own_parties: Any) -> Partner:
    """The registered eMSP partner owning DE*PRT (the token's party), with a CDRs Receiver."""
    partner, _ = make_partner(name="emsp", roles=(("DE", "PRT", Role.EMSP),))
    PartnerEndpoint.objects.create(partner=partner, identifier="cdrs", role="RECEIVER", url=EMSP_CDRS)
    return partner


def charge(
    *, kwh: str = "10", minutes: int = 90, token: tuple[str, str] = ("DE", "PRT"), status: str = "COMPLETED"
) -> Any:
    """An own session at LOC1/EVSE1/1 from START: one charging period of `kwh`, stopped `minutes` later."""
    session = session_start(
        location_id="LOC1",
        evse_uid="EVSE1",
        connector_id="1",
        cdr_token=cdr_token(*token),
        auth_method="WHITELIST",
        authorization_reference="AUTH1",
        start=START,
    )
    hours = Decimal(minutes) / 60
    period = {
        "start_date_time": "2024-03-01T09:00:00Z",
        "dimensions": [{"type": "ENERGY", "volume": Decimal(kwh)}, {"type": "TIME", "volume": hours}],
    }
    session_update(session=session, kwh=Decimal(kwh), charging_period=period, at=START + timedelta(minutes=1))
    return session_stop(session=session, at=START + timedelta(minutes=minutes), status=status)


def test_a_completed_session_gets_its_priced_cdr_queued_for_the_tokens_emsp(emsp):
    own_charging_location()

    session = charge()

    cdr = Cdr.objects.get()
    data = cdr.data
    assert (cdr.is_own, cdr.session_id, cdr.receiver) == (True, session.ocpi_id, emsp)
    assert len(cdr.ocpi_id) <= 36
    # €0.25/kWh x 10 kWh + €0.50 start fee, 21 % VAT
    assert data["total_cost"] == {"excl_vat": Decimal("3.00"), "incl_vat": Decimal("3.63")}
    assert data["total_energy_cost"]["excl_vat"] == Decimal("2.50")
    assert data["total_fixed_cost"]["excl_vat"] == Decimal("0.50")
    assert (data["total_energy"], data["total_time"]) == (Decimal("10"), Decimal("1.5"))
    assert data["cdr_token"] == cdr_token("DE", "PRT")
    assert (data["auth_method"], data["authorization_reference"]) == ("WHITELIST", "AUTH1")
    assert (data["start_date_time"], data["end_date_time"]) == ("2024-03-01T09:00:00Z", "2024-03-01T10:30:00Z")
    assert [t["id"] for t in data["tariffs"]] == ["T1"]
    assert all(period["tariff_id"] == "T1" for period in data["charging_periods"])
    location = data["cdr_location"]
    assert (location["id"], location["evse_uid"], location["connector_id"]) == ("LOC1", "EVSE1", "1")
    assert (location["connector_standard"], location["country"]) == ("IEC_62196_T2", "NLD")
    assert (cdr.pricing or {})["tariff_id"] == "T1"  # the engine's audit breakdown is kept
    delivery = Delivery.objects.get(module="cdrs")
    assert (delivery.partner, delivery.method, delivery.object_path) == (emsp, "POST", cdr.ocpi_id)


def test_a_session_started_and_stopped_now_without_periods_gets_its_cdr(emsp):
    """What a charge point backend does most: start now, report energy, stop now; no charging period sent. The CDR's
    one period starts at the session's start (our stamps: milliseconds, rounded up), not at the whole second before
    it (which the pricing refused as "outside the session": no CDR at all)."""
    own_charging_location()
    session = session_start(
        location_id="LOC1",
        evse_uid="EVSE1",
        connector_id="1",
        cdr_token=cdr_token("DE", "PRT"),
        auth_method="WHITELIST",
        start=datetime(2024, 3, 1, 9, 0, 0, 441_515, tzinfo=UTC),
    )
    session = session_update(session=session, kwh=Decimal("4"), at=datetime(2024, 3, 1, 9, 30, 0, 7, tzinfo=UTC))
    session_stop(session=session, at=datetime(2024, 3, 1, 10, 0, 0, 999_999, tzinfo=UTC))
    data = Cdr.objects.get().data
    assert (data["start_date_time"], data["end_date_time"]) == ("2024-03-01T09:00:00.442Z", "2024-03-01T10:00:01Z")
    assert [period["start_date_time"] for period in data["charging_periods"]] == ["2024-03-01T09:00:00.442Z"]
    assert data["total_energy"] == Decimal("4")


def test_the_cdr_is_sealed_with_the_tariff_and_location_of_the_sessions_start(emsp):
    own_charging_location()
    session = session_start(
        location_id="LOC1",
        evse_uid="EVSE1",
        connector_id="1",
        cdr_token=cdr_token(),
        auth_method="COMMAND",
        start=START,
    )
    dearer = tariff_data("T1", last_updated="2024-03-01T09:30:00Z")
    dearer["elements"][0]["price_components"][0]["price"] = 1.00
    tariff_put(partner=None, key=TariffKey("NL", "OWN", "T1"), data=dearer)
    period = {"start_date_time": "2024-03-01T09:00:00Z", "dimensions": [{"type": "ENERGY", "volume": Decimal("4")}]}
    session_update(session=session, kwh=Decimal("4"), charging_period=period, at=START + timedelta(minutes=1))

    session_stop(session=session, at=START + timedelta(hours=1))

    data = Cdr.objects.get().data
    assert data["tariffs"][0]["elements"][0]["price_components"][0]["price"] == Decimal("0.25")
    assert data["total_cost"]["excl_vat"] == Decimal("1.50")  # 4 x 0.25 + 0.50, not 4 x 1.00 + 0.50


def test_a_session_without_a_tariff_gets_a_zero_cost_cdr_saying_so(emsp):
    own_charging_location(tariff_ids=())

    charge(kwh="7.5", minutes=60)

    data = Cdr.objects.get().data
    assert data["total_cost"] == {"excl_vat": Decimal(0), "incl_vat": Decimal(0)}
    assert (data["total_energy"], data["total_time"]) == (Decimal("7.5"), Decimal("1"))
    assert "No tariff" in data["remark"]
    assert "tariffs" not in data


def test_an_invalid_session_and_a_second_call_make_no_new_cdr(emsp):
    own_charging_location()

    session = charge(status="INVALID")
    assert not Cdr.objects.exists()

    session.status = "COMPLETED"
    first, again = cdr_generate(session=session), cdr_generate(session=session)
    assert first == again
    assert Cdr.objects.count() == 1


def test_a_token_of_an_emsp_we_are_not_connected_to_gets_a_cdr_but_no_push(own_parties):
    own_charging_location()

    charge(token=("FR", "XYZ"))

    cdr = Cdr.objects.get()
    assert cdr.receiver is None
    assert not Delivery.objects.filter(module="cdrs").exists()


def test_a_credit_cdr_negates_every_amount_links_the_original_and_is_queued(emsp):
    own_charging_location()
    charge()
    original = Cdr.objects.get()

    credit = cdr_credit(cdr=original)

    data, before = credit.data, original.data
    assert (credit.ocpi_id, credit.credit, credit.credit_of) == (original.ocpi_id + "-C", True, original)
    assert (data["credit"], data["credit_reference_id"]) == (True, original.ocpi_id)
    assert data["total_cost"] == {"excl_vat": Decimal("-3.00"), "incl_vat": Decimal("-3.63")}
    assert data["total_energy_cost"]["excl_vat"] == Decimal("-2.50")
    assert data["total_energy"] == before["total_energy"]  # quantities stay: only amounts are negated
    assert data["cdr_location"] == before["cdr_location"]
    assert data["session_id"] == before["session_id"]
    assert Delivery.objects.filter(module="cdrs", object_path=credit.ocpi_id, method="POST").count() == 1


def test_a_cdr_is_credited_once_and_a_credit_never(emsp):
    own_charging_location()
    charge()
    original = Cdr.objects.get()
    credit = cdr_credit(cdr=original)

    with pytest.raises(InvalidParameters, match="already credited"):
        cdr_credit(cdr=original)
    with pytest.raises(InvalidParameters, match="credit CDR cannot"):
        cdr_credit(cdr=credit)
    assert Cdr.objects.count() == 2
