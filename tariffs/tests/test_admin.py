"""The tariffs back-office (STYLE §8): every page loads, the list reads prices in words, staff create, edit and
delete our own tariffs through the services (validated like a partner's PUT, pushed through the outbox), a tariff
our connectors use cannot be deleted, and partners' tariffs are read-only."""

import json
from decimal import Decimal
from typing import Any

import pytest
from django.urls import reverse

from conftest import make_partner
from ocpi_core.constants import Role
from ocpi_core.models import Delivery, Partner, PartnerEndpoint
from tariffs.admin import money, price_summary
from tariffs.models import Tariff
from tariffs.services import Key, tariff_put
from tariffs.tests.factories import example, own_connector, own_tariff, tariff_data

CHANGELIST = reverse("admin:tariffs_tariff_changelist")
ADD = reverse("admin:tariffs_tariff_add")


def change_url(tariff: Tariff) -> str:
    return reverse("admin:tariffs_tariff_change", args=[tariff.pk])


def delete_url(tariff: Tariff) -> str:
    return reverse("admin:tariffs_tariff_delete", args=[tariff.pk])


@pytest.fixture
def receiver(own_parties: Any) -> Partner:
    """A registered eMSP with a tariffs RECEIVER endpoint (gets our pushes), and one without (gets nothing)."""
    partner, _ = make_partner(name="emsp", roles=(("DE", "EMS", Role.EMSP),))
    PartnerEndpoint.objects.create(
        partner=partner, identifier="tariffs", role="RECEIVER", url="http://127.0.0.1:9/ocpi/2.2.1/tariffs"
    )
    make_partner(name="no-tariffs", roles=(("FR", "EMS", Role.EMSP),))
    return partner


@pytest.fixture
def partner_tariff(own_parties: Any) -> Tariff:
    cpo, _ = make_partner(name="cpo", roles=(("DE", "CPO", Role.CPO),))
    data = tariff_data("P1", country_code="DE", party_id="CPO", currency="CHF", type="AD_HOC_PAYMENT")
    return tariff_put(partner=cpo, key=Key("DE", "CPO", "P1"), data=data).tariff


def results(response: Any) -> list[str]:
    assert response.status_code == 200
    return [t.ocpi_id for t in response.context["cl"].result_list]


def form_data(**changes: Any) -> dict[str, Any]:
    """What the add/change form posts for a valid own tariff."""
    data = {
        "country_code": "NL",
        "party_id": "OWN",
        "ocpi_id": "ADM1",
        "currency": "EUR",
        "type": "REGULAR",
        "elements": json.dumps(
            [
                {"price_components": [{"type": "ENERGY", "price": 0.1234, "vat": 21.0, "step_size": 1}]},
                {
                    "price_components": [{"type": "PARKING_TIME", "price": 2.00, "step_size": 900}],
                    "restrictions": {"start_time": "08:00", "end_time": "18:00", "day_of_week": ["MONDAY", "FRIDAY"]},
                },
            ]
        ),
        "min_price": "",
        "max_price": '{"excl_vat": 10.00, "incl_vat": 12.10}',
        "start_date_time_0": "",
        "start_date_time_1": "",
        "end_date_time_0": "",
        "end_date_time_1": "",
        "tariff_alt_text": "",
        "tariff_alt_url": "",
        "energy_mix": "",
    }
    data.update(changes)
    return data


def deliveries() -> list[tuple[str, str, str]]:
    return list(Delivery.objects.order_by("pk").values_list("partner__name", "method", "object_path"))


# --- every page ------------------------------------------------------------------------------------------------------


def test_changelist_shows_own_and_partner_tariffs_with_price_summaries(admin_client, receiver, partner_tariff):
    own_tariff("T1", type="REGULAR")

    response = admin_client.get(CHANGELIST)
    content = response.content.decode()

    assert sorted(results(response)) == ["P1", "T1"]
    assert "€0.25/kWh · €0.50 start" in content
    assert "CHF 0.25/kWh · CHF 0.50 start" in content
    assert "NL*OWN" in content
    assert ">own</span>" in content
    assert ">cpo</span>" in content


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"owner": "own"}, ["T1"]),
        ({"owner": "partner"}, ["P1"]),
        ({"party": "DE*CPO"}, ["P1"]),
        ({"currency": "EUR"}, ["T1"]),
        ({"type__exact": "AD_HOC_PAYMENT"}, ["P1"]),
        ({"q": "p1"}, ["P1"]),
        ({"q": "cpo"}, ["P1"]),
    ],
)
def test_changelist_filters_and_search(admin_client, receiver, partner_tariff, params, expected):
    own_tariff("T1", type="REGULAR")

    assert results(admin_client.get(CHANGELIST, params)) == expected


def test_add_change_and_delete_pages_load(admin_client, receiver, partner_tariff):
    own = own_tariff("T1", min_price={"excl_vat": 0.1234})

    add = admin_client.get(ADD)
    change = admin_client.get(change_url(own))
    partner_page = admin_client.get(change_url(partner_tariff))
    delete = admin_client.get(delete_url(own))

    assert add.status_code == 200
    assert 'name="elements"' in add.content.decode()
    assert change.status_code == 200
    own_page = change.content.decode()
    assert 'name="elements"' in own_page
    assert "0.1234" in own_page  # the stored digits, not a float's
    assert "€0.25/kWh · €0.50 start" in own_page
    assert partner_page.status_code == 200
    assert 'name="elements"' not in partner_page.content.decode()  # read-only
    assert 'name="_save"' not in partner_page.content.decode()
    assert "0.25" in partner_page.content.decode()
    assert delete.status_code == 200
    assert "Are you sure" in delete.content.decode()


def test_index_lists_tariffs(admin_client, own_parties):
    response = admin_client.get(reverse("admin:index"))

    assert f'href="{CHANGELIST}"' in response.content.decode()


# --- staff edit own tariffs: validated, stored exactly, pushed -------------------------------------------------------


def test_admin_add_creates_the_tariff_and_queues_a_put_for_the_receiving_partner(admin_client, receiver):
    response = admin_client.post(ADD, form_data())

    assert response.status_code == 302, response.content.decode()[:3000]
    tariff = Tariff.objects.get()
    assert (tariff.partner_id, tariff.ocpi_id, tariff.type) == (None, "ADM1", "REGULAR")
    assert tariff.elements[0]["price_components"][0]["price"] == Decimal("0.1234")
    assert tariff.max_price == {"excl_vat": Decimal("10.00"), "incl_vat": Decimal("12.10")}
    assert json.loads(tariff.doc)["elements"] == json.loads(form_data()["elements"])
    assert deliveries() == [("emsp", "PUT", "ADM1")]


def test_admin_edit_replaces_the_tariff_and_queues_a_put(admin_client, receiver):
    tariff = own_tariff("T1")
    before = Tariff.objects.get().last_updated
    Delivery.objects.all().delete()

    response = admin_client.post(change_url(tariff), form_data(ocpi_id="IGNORED", currency="CHF", max_price=""))

    assert response.status_code == 302, response.content.decode()[:3000]
    tariff.refresh_from_db()
    assert (tariff.ocpi_id, tariff.currency, tariff.max_price) == ("T1", "CHF", None)  # the key never changes
    assert tariff.last_updated > before
    assert json.loads(tariff.doc)["currency"] == "CHF"
    assert deliveries() == [("emsp", "PUT", "T1")]


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        (
            {
                "elements": '[{"price_components": [{"type": "ENERGY", "price": 1, "step_size": 1}], '
                '"restrictions": {"reservation": "RESERVATION"}}]'
            },
            "elements",
            "elements[0].price_components[0].type: a RESERVATION element may only contain FLAT and TIME",
        ),
        ({"elements": "[]"}, "elements", "elements: must contain at least one element"),
        ({"elements": "[{"}, "elements", "Not valid JSON"),
        (
            {
                "elements": '[{"price_components": [{"type": "ENERGY", "price": 1, "step_size": 1}], '
                '"restrictions": {"start_time": "8:00"}}]'
            },
            "elements",
            "elements[0].restrictions.start_time: does not match the pattern",
        ),
        ({"max_price": '{"excl_vat": -1}'}, "max_price", "max_price.excl_vat: must not be negative"),
        ({"currency": "eur"}, "currency", "currency: must be an ISO 4217 code"),
    ],
)
def test_admin_edit_with_invalid_elements_shows_the_error_and_changes_nothing(
    admin_client, receiver, changes, field, message
):
    tariff = own_tariff("T1")
    before = list(Tariff.objects.values_list("doc", "last_updated", "currency"))
    Delivery.objects.all().delete()

    response = admin_client.post(change_url(tariff), form_data(**changes))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert any(message in text for text in errors[field]), errors
    assert list(Tariff.objects.values_list("doc", "last_updated", "currency")) == before
    assert deliveries() == []


def test_admin_add_only_under_our_own_cpo_parties_and_new_keys(admin_client, receiver, partner_tariff):
    own_tariff("T1")
    Delivery.objects.all().delete()

    not_ours = admin_client.post(ADD, form_data(country_code="DE", party_id="CPO", ocpi_id="NEW"))
    taken = admin_client.post(ADD, form_data(ocpi_id="t1"))  # ids are case-insensitive

    assert not_ours.status_code == 200
    assert "DE*CPO is not one of our CPO parties" in str(not_ours.context["adminform"].form.non_field_errors())
    assert taken.status_code == 200
    assert "tariff_key" in str(taken.context["adminform"].form.non_field_errors())
    assert sorted(Tariff.objects.values_list("ocpi_id", flat=True)) == ["P1", "T1"]
    assert deliveries() == []


# --- deleting --------------------------------------------------------------------------------------------------------


def test_admin_delete_of_an_own_tariff_queues_a_delete(admin_client, receiver):
    tariff = own_tariff("T1")
    Delivery.objects.all().delete()

    response = admin_client.post(delete_url(tariff), {"post": "yes"})

    assert response.status_code == 302
    assert not Tariff.objects.exists()
    assert deliveries() == [("emsp", "DELETE", "T1")]


def test_admin_delete_is_refused_while_a_connector_lists_the_tariff(admin_client, receiver):
    tariff = own_tariff("T1")
    own_connector("T1")
    Delivery.objects.all().delete()

    page = admin_client.get(delete_url(tariff))
    confirmed = admin_client.post(delete_url(tariff), {"post": "yes"})

    assert "Connector LOC0/EVSE0/1 lists tariff T1 in its tariff_ids" in page.content.decode()
    assert confirmed.status_code == 200  # the confirmation page again, nothing deleted
    assert Tariff.objects.filter(pk=tariff.pk).exists()
    assert deliveries() == []


def test_bulk_delete_deletes_unused_own_tariffs_only(admin_client, receiver, partner_tariff):
    unused, used = own_tariff("T1"), own_tariff("T2")
    own_connector("T2")
    Delivery.objects.all().delete()
    action = {"action": "delete_selected", "_selected_action": [unused.pk, used.pk], "post": "yes"}

    refused = admin_client.post(CHANGELIST, action)
    unused_only = admin_client.post(CHANGELIST, {**action, "_selected_action": [unused.pk]})

    assert refused.status_code == 200
    assert "Connector LOC0/EVSE0/1 lists tariff T2" in refused.content.decode()
    assert unused_only.status_code == 302
    assert sorted(Tariff.objects.values_list("ocpi_id", flat=True)) == ["P1", "T2"]
    assert deliveries() == [("emsp", "DELETE", "T1")]


def test_partner_tariffs_cannot_be_changed_or_deleted(admin_client, receiver, partner_tariff):
    before = list(Tariff.objects.values_list("doc", "last_updated"))

    changed = admin_client.post(change_url(partner_tariff), form_data(ocpi_id="P1", currency="EUR"))
    deleted = admin_client.post(delete_url(partner_tariff), {"post": "yes"})

    assert changed.status_code == 403
    assert deleted.status_code == 403
    assert list(Tariff.objects.values_list("doc", "last_updated")) == before
    assert deliveries() == []


# --- the price summary -----------------------------------------------------------------------------------------------


def _summary(data: dict[str, Any]) -> str:
    tariff = Tariff(currency=data["currency"], elements=data["elements"])
    tariff.min_price, tariff.max_price = data.get("min_price"), data.get("max_price")
    return price_summary(tariff)


def test_money_keeps_every_significant_digit():
    assert money("EUR", Decimal("0.5")) == "€0.50"
    assert money("EUR", 0.1234) == "€0.1234"
    assert money("GBP", 2) == "£2.00"
    assert money("SEK", Decimal("3.10")) == "SEK 3.10"


def test_money_of_a_number_too_long_for_cents_is_shown_as_it_is():
    assert money("EUR", Decimal("1E+999")) == "€1E+999"


def test_a_tariff_with_a_huge_price_keeps_its_list_and_page_rendering(admin_client, receiver):
    """A price with more digits than the decimal context (1e999, valid JSON and a valid OCPI number) once made the
    price summary raise InvalidOperation: a 500 on the tariffs list for everyone, and on the failed form's page."""
    response = admin_client.post(ADD, form_data(max_price='{"excl_vat": 1e999, "incl_vat": 1e999}'))
    assert response.status_code == 302, response.context["adminform"].form.errors
    tariff = Tariff.objects.get(ocpi_id="ADM1")

    assert "max €1E+999 per session" in admin_client.get(CHANGELIST).content.decode()
    assert admin_client.get(change_url(tariff)).status_code == 200
    response = admin_client.post(change_url(tariff), form_data(elements="[]"))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors


def test_summary_of_the_spec_examples():
    assert _summary(example("tariff_10_025kwh_parking_start.json")) == (
        "€0.50 start · €0.25/kWh · €2.00/h parking (per 15 min)"
    )
    assert _summary(example("tariff_4_complex.json")) == (
        "€2.50 start; €1.00/h (per 15 min), below 32 A; €2.00/h (per 10 min), weekdays, from 32 A; "
        "€1.25/h (per 10 min), weekends, from 32 A; €5.00/h parking (per 5 min), weekdays 09:00\u201318:00; "
        "€6.00/h parking (per 5 min), Sat 10:00\u201317:00"
    )
    assert _summary(example("tariff_6_025kwh_start_max_price.json")) == (
        "€0.50 start · €0.25/kWh; max €10.00 per session"
    )
    assert _summary(example("tariff_17_reservation_with_expire_fee.json")).count("reserv") >= 1


def test_summary_of_durations_dates_and_energy_bands():
    data = tariff_data(
        elements=[
            {
                "price_components": [{"type": "ENERGY", "price": 0.4, "step_size": 1000}],
                "restrictions": {
                    "min_duration": 1800,
                    "max_duration": 5400,
                    "min_kwh": 5,
                    "start_date": "2024-01-01",
                    "end_date": "2024-02-01",
                },
            },
            {"price_components": [{"type": "TIME", "price": 1, "step_size": 1}]},
        ]
    )

    assert _summary(data) == (
        "€0.40/kWh (per 1 kWh), 2024-01-01 to 2024-02-01, from 5 kWh, after 30 min, first 1 h 30 min; €1.00/h"
    )
