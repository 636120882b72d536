"""CDR reconciliation through the real eMSP Receiver over HTTP: a partner's CDR is priced again by our tariff engine
(from its embedded tariff, else the partner's stored one, in the time zone of the partner's location we hold) and
flagged MATCH, MISMATCH (with both figures) or NOT_CHECKABLE (with the reason) — and the receiver answers success
whatever the outcome. Then the admin (badge, filter, comparison, recompute action) and the platform API."""

import copy
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from cdrs.models import Cdr, Reconciliation
from cdrs.tests.factories import cdr_data, own_cdr
from conftest import make_partner
from ocpi_core.constants import Role
from ocpi_core.models import Partner
from tariffs.models import decimalize, dumps_exact
from tariffs.pricing import price_session

URL = "/ocpi/2.2.1/emsp/cdrs"
CHANGELIST = reverse("admin:cdrs_cdr_changelist")

# A Belgian partner's tariff: €1.00 start fee, €0.30/kWh, and €2.00/h charging time 08:00-18:00 local time only.
GENT_TARIFF: dict[str, Any] = {
    "country_code": "BE",
    "party_id": "BEC",
    "id": "TGENT",
    "currency": "EUR",
    "elements": [
        {
            "price_components": [
                {"type": "FLAT", "price": Decimal("1.00"), "vat": Decimal("21.0"), "step_size": 1},
                {"type": "ENERGY", "price": Decimal("0.30"), "vat": Decimal("21.0"), "step_size": 1},
            ]
        },
        {
            "price_components": [{"type": "TIME", "price": Decimal("2.00"), "vat": Decimal("21.0"), "step_size": 60}],
            "restrictions": {"start_time": "08:00", "end_time": "18:00"},
        },
    ],
    "last_updated": "2023-12-01T00:00:00Z",
}


@pytest.fixture
def cpo(own_parties: Any, ocpi_base_url: str) -> tuple[Partner, str]:
    """A registered CPO partner owning BE*BEC; the CDRs' token belongs to our own eMSP NL*OWE."""
    return make_partner(name="cpo", roles=(("BE", "BEC", Role.CPO),))


def post(ocpi: Any, token: str, data: dict[str, Any]) -> Cdr:
    """POST a CDR (exact JSON: Decimals keep their digits) and return what was stored; the receiver said 201."""
    response = ocpi(token).post(URL, content=dumps_exact(data), headers={"Content-Type": "application/json"})
    assert (response.status_code, response.json()["status_code"]) == (201, 1000), response.text
    return Cdr.objects.get(ocpi_id=data["id"])


def info_of(cdr: Cdr) -> dict[str, Any]:
    """The stored reconciliation of a CDR (its reason, figures and rows)."""
    info: dict[str, Any] = cdr.reconciliation or {}
    return info


def engine_priced_cdr() -> dict[str, Any]:
    """A CDR priced by our engine with GENT_TARIFF in Brussels time, 07:30-09:00 local on a Monday (TIME is charged
    08:00-09:00 only: in UTC it would be charged for nothing); no tariff embedded, the periods name TGENT."""
    data = cdr_data("ENGINE1", start_date_time="2024-01-01T06:30:00Z", end_date_time="2024-01-01T08:00:00Z")
    del data["tariffs"], data["total_energy_cost"]
    periods = [
        {
            "start_date_time": "2024-01-01T06:30:00Z",
            "dimensions": [{"type": "ENERGY", "volume": Decimal("8.5")}, {"type": "TIME", "volume": Decimal("0.75")}],
            "tariff_id": "TGENT",
        },
        {
            "start_date_time": "2024-01-01T07:15:00Z",
            "dimensions": [{"type": "ENERGY", "volume": Decimal("6.25")}, {"type": "TIME", "volume": Decimal("0.75")}],
            "tariff_id": "TGENT",
        },
    ]
    priced = price_session(
        tariff=decimalize("Tariff", GENT_TARIFF),
        charging_periods=periods,
        start_date_time=datetime(2024, 1, 1, 6, 30, tzinfo=UTC),
        end_date_time=datetime(2024, 1, 1, 8, 0, tzinfo=UTC),
        time_zone="Europe/Brussels",
    )
    assert priced.total_time_cost is not None
    assert priced.total_time_cost.excl_vat == Decimal("2.0000")
    data["charging_periods"] = periods
    data.update(priced.cdr_totals())
    return data


def test_a_cdr_matching_its_embedded_tariff_is_flagged_match(ocpi, cpo):
    _, token = cpo

    cdr = post(ocpi, token, cdr_data("HAND1"))  # 11.25 kWh at €0.25: €2.8125 excl., €3.403125 incl. 21 % VAT

    assert cdr.reconciliation_status == Reconciliation.MATCH, cdr.reconciliation
    info = info_of(cdr)
    assert info["tariff_id"] == "T1"
    assert info["tariff_source"] == "embedded in the CDR"
    assert (info["time_zone"], info["time_zone_source"]) == (
        "UTC",
        "UTC assumed: we hold no location LOC1 of this partner",
    )
    assert "UTC assumed" in info["reason"]
    assert info["tolerance"] == "0.01"
    rows = {(row["field"], row["vat"]): row for row in info["rows"]}
    assert rows[("total_cost", "excl_vat")] == {
        "field": "total_cost",
        "vat": "excl_vat",
        "theirs": "2.8125",
        "ours": "2.8125",
        "difference": "0.0000",
        "ok": True,
    }
    assert rows[("total_cost", "incl_vat")]["ours"] == "3.4031"  # rounded to OCPI_PRICE_DECIMALS: within tolerance
    assert rows[("total_energy_cost", "excl_vat")]["ok"] is True
    assert cdr.doc == Cdr.objects.get(pk=cdr.pk).doc  # the CDR itself is untouched


def test_an_engine_priced_cdr_matches_with_the_stored_tariff_and_the_locations_time_zone(ocpi, cpo):
    from locations.services import Key as LocationKey
    from locations.services import location_put
    from locations.tests.factories import location_data
    from tariffs.services import Key as TariffKey
    from tariffs.services import tariff_put

    partner, token = cpo
    tariff_put(partner=partner, key=TariffKey("BE", "BEC", "TGENT"), data=copy.deepcopy(GENT_TARIFF))
    location = location_data("LOC1", country_code="BE", party_id="BEC", time_zone="Europe/Brussels")
    location_put(partner=partner, key=LocationKey("BE", "BEC", "LOC1"), data=location)

    cdr = post(ocpi, token, engine_priced_cdr())

    assert cdr.reconciliation_status == Reconciliation.MATCH, cdr.reconciliation
    info = info_of(cdr)
    assert (info["tariff_id"], info["tariff_source"]) == ("TGENT", "stored partner tariff")
    assert (info["time_zone"], info["time_zone_source"]) == ("Europe/Brussels", "location LOC1")
    compared = {row["field"] for row in info["rows"]}
    assert compared == {"total_cost", "total_fixed_cost", "total_energy_cost", "total_time_cost"}
    assert info["ours"]["total_time_cost"] == {"excl_vat": "2.0000", "incl_vat": "2.4200"}


def test_a_mismatching_cdr_is_flagged_with_both_figures(ocpi, cpo):
    _, token = cpo
    data = cdr_data("DEAR1", total_cost={"excl_vat": Decimal("5.25"), "incl_vat": Decimal("6.3525")})

    cdr = post(ocpi, token, data)

    assert cdr.reconciliation_status == Reconciliation.MISMATCH
    info = info_of(cdr)
    rows = {(row["field"], row["vat"]): row for row in info["rows"]}
    assert rows[("total_cost", "excl_vat")] == {
        "field": "total_cost",
        "vat": "excl_vat",
        "theirs": "5.25",
        "ours": "2.8125",
        "difference": "2.4375",
        "ok": False,
    }
    assert rows[("total_cost", "incl_vat")]["ok"] is False
    assert rows[("total_energy_cost", "excl_vat")]["ok"] is True  # only total_cost is wrong
    assert "total_cost.excl_vat: theirs 5.25, ours 2.8125 (difference +2.4375)" in info["reason"]
    assert "total_energy_cost" not in info["reason"]


def test_a_difference_within_the_tolerance_setting_matches(ocpi, cpo, settings):
    _, token = cpo
    data = cdr_data("NEAR1", total_cost={"excl_vat": Decimal("2.82"), "incl_vat": Decimal("3.41")})

    settings.OCPI_RECONCILE_TOLERANCE = "0.001"
    strict = post(ocpi, token, data)
    settings.OCPI_RECONCILE_TOLERANCE = "0.05"
    loose = post(ocpi, token, {**data, "id": "NEAR2"})

    assert strict.reconciliation_status == Reconciliation.MISMATCH
    assert loose.reconciliation_status == Reconciliation.MATCH
    assert info_of(loose)["tolerance"] == "0.05"


def test_a_cdr_without_a_tariff_is_not_checkable(ocpi, cpo):
    _, token = cpo
    data = cdr_data("NOTARIFF1")
    del data["tariffs"]
    for period in data["charging_periods"]:
        del period["tariff_id"]

    cdr = post(ocpi, token, data)

    assert cdr.reconciliation_status == Reconciliation.NOT_CHECKABLE
    assert info_of(cdr)["reason"] == "no tariff: the CDR embeds none and its charging periods name none"


def test_a_named_tariff_we_do_not_hold_is_not_checkable(ocpi, cpo):
    _, token = cpo
    data = cdr_data("UNKNOWN1")
    del data["tariffs"]

    cdr = post(ocpi, token, data)

    assert cdr.reconciliation_status == Reconciliation.NOT_CHECKABLE
    assert info_of(cdr)["reason"] == "no tariff: the CDR embeds none and we hold no tariff T1 of this partner"


def test_a_failing_engine_never_refuses_the_cdr(ocpi, cpo, monkeypatch):
    _, token = cpo

    def broken(**kwargs: Any) -> Any:
        raise RuntimeError("engine on fire")

    monkeypatch.setattr("tariffs.pricing.price_session", broken)
    cdr = post(ocpi, token, cdr_data("BROKEN1"))  # still 201

    assert cdr.reconciliation_status == Reconciliation.NOT_CHECKABLE
    assert info_of(cdr)["reason"] == "recomputing failed: RuntimeError: engine on fire"
    assert ocpi(token).get(URL + f"/{cdr.pk}").json()["data"]["id"] == "BROKEN1"


# --- admin and platform API ---


@pytest.fixture
def reconciled(own_parties: Any) -> dict[str, Cdr]:
    """A matching, a mismatching and an uncheckable partner CDR, and one of our own (never reconciled)."""
    from cdrs.services import cdr_receive

    partner, _ = make_partner(name="cpo", roles=(("BE", "BEC", Role.CPO),))
    no_tariff = cdr_data("NOTARIFF1")
    del no_tariff["tariffs"]
    return {
        "match": cdr_receive(partner=partner, data=cdr_data("GOOD1")).cdr,
        "mismatch": cdr_receive(partner=partner, data=cdr_data("DEAR1", total_cost={"excl_vat": 9, "incl_vat": 9})).cdr,
        "unchecked": cdr_receive(partner=partner, data=no_tariff).cdr,
        "own": own_cdr("MINE"),
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?reconciliation=MATCH", ["GOOD1"]),
        ("?reconciliation=MISMATCH", ["DEAR1"]),
        ("?reconciliation=NOT_CHECKABLE", ["NOTARIFF1"]),
        ("?reconciliation=none", ["MINE"]),
    ],
)
def test_the_admin_list_shows_a_badge_and_filters_by_outcome(admin_client, reconciled, query, expected):
    answer = admin_client.get(CHANGELIST + query)
    assert sorted(cdr.ocpi_id for cdr in answer.context["cl"].result_list) == expected
    assert "reconciliation" in answer.content.decode()


def test_the_admin_page_shows_the_comparison(admin_client, reconciled):
    page = admin_client.get(reverse("admin:cdrs_cdr_change", args=[reconciled["mismatch"].pk])).content.decode()
    assert "Reconciliation" in page
    assert '<table class="reconciliation">' in page
    assert "mismatch" in page
    assert "differs" in page
    assert "2.8125" in page
    assert ">9<" in page
    own = admin_client.get(reverse("admin:cdrs_cdr_change", args=[reconciled["own"].pk])).content.decode()
    assert "our own CDR" in own


def test_the_admin_action_recomputes(admin_client, reconciled):
    mismatch = reconciled["mismatch"]
    Cdr.objects.filter(pk=mismatch.pk).update(reconciliation_status="", reconciliation=None)
    pks = [mismatch.pk, reconciled["own"].pk]

    answer = admin_client.post(CHANGELIST, {"action": "recompute_reconciliation", "_selected_action": pks}, follow=True)

    assert "Reconciled 1 CDR(s): 1 mismatch; 1 own CDR(s) skipped" in answer.content.decode()
    assert Cdr.objects.get(pk=mismatch.pk).reconciliation_status == Reconciliation.MISMATCH
    assert Cdr.objects.get(pk=reconciled["own"].pk).reconciliation_status == ""


@pytest.fixture
def staff(db: None) -> Client:
    get_user_model().objects.create_user("operator", password="pw-for-tests-only", is_staff=True)
    client = Client()
    tokens = client.post(
        "/api/token/", {"username": "operator", "password": "pw-for-tests-only"}, content_type="application/json"
    )
    client.defaults["HTTP_AUTHORIZATION"] = f"Bearer {tokens.json()['access']}"
    return client


def test_the_platform_api_exposes_the_reconciliation(staff, reconciled):
    mismatch = reconciled["mismatch"]

    got = staff.get(f"/api/cdrs/{mismatch.pk}/reconciliation")
    again = staff.post(f"/api/cdrs/{mismatch.pk}/reconciliation")
    own = staff.get(f"/api/cdrs/{reconciled['own'].pk}/reconciliation")
    listed = staff.get("/api/cdrs/?reconciliation=MISMATCH").json()

    assert got.status_code == 200
    body = got.json()
    assert (body["pk"], body["status"], body["tariff_id"]) == (mismatch.pk, "MISMATCH", "T1")
    assert {"field": "total_cost", "vat": "excl_vat", "theirs": "9", "ours": "2.8125"}.items() <= body["rows"][
        0
    ].items()
    assert again.status_code == 200
    assert again.json()["status"] == "MISMATCH"
    assert own.status_code == 404
    assert [(item["cdr"]["id"], item["reconciliation"]) for item in listed["results"]] == [("DEAR1", "MISMATCH")]
    assert staff.get("/api/cdrs/").status_code == 200
