"""The Locations back-office (STYLE §8): every page loads with every filter and search; editing an own location,
EVSE or connector saves through the services (last_updated bumped on the object and its parents, cached JSON
refreshed, a PUT queued for each partner receiving Locations); invalid values are errors on their fields and change
nothing; partners' objects are read-only; the Set EVSE status action queues a PATCH."""

from datetime import timedelta
from typing import Any

import orjson
import pytest
from django.contrib.auth.models import Permission, User
from django.forms import CheckboxInput
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from kombu import Connection

from config.celery_app import app
from conftest import make_partner
from locations.models import Connector, Evse, Location
from locations.services import Key, location_put
from ocpi_core.constants import Role
from ocpi_core.envelope import format_datetime
from ocpi_core.models import Delivery, Partner, PartnerEndpoint, Party

LOCATIONS = reverse("admin:locations_location_changelist")
EVSES = reverse("admin:locations_evse_changelist")
LOCATION_ADD = reverse("admin:locations_location_add")
EVSE_ADD = reverse("admin:locations_evse_add")


def url(name: str, *args: Any) -> str:
    return reverse(f"admin:locations_{name}", args=args)


def location_data(
    location_id: str,
    *,
    country_code: str = "NL",
    party_id: str = "OWN",
    city: str = "Amsterdam",
    evses: tuple[tuple[str, str], ...] = (("E1", "AVAILABLE"),),
    age: timedelta = timedelta(days=1),
) -> dict[str, Any]:
    """A valid OCPI Location with the given EVSEs (uid, status), each with one connector."""
    stamp = format_datetime(timezone.now() - age)
    return {
        "country_code": country_code,
        "party_id": party_id,
        "id": location_id,
        "publish": True,
        "name": f"Station {location_id}",
        "address": "Stationsplein 1",
        "city": city,
        "postal_code": "1012AB",
        "country": "NLD",
        "coordinates": {"latitude": "52.37800", "longitude": "4.90000"},
        "parking_type": "ON_STREET",
        "evses": [
            {
                "uid": uid,
                "evse_id": f"{country_code}*{party_id}*E{location_id}{uid}",
                "status": status,
                "connectors": [
                    {
                        "id": "1",
                        "standard": "IEC_62196_T2",
                        "format": "SOCKET",
                        "power_type": "AC_3_PHASE",
                        "max_voltage": 230,
                        "max_amperage": 32,
                        "last_updated": stamp,
                    }
                ],
                "last_updated": stamp,
            }
            for uid, status in evses
        ],
        "time_zone": "Europe/Amsterdam",
        "last_updated": stamp,
    }


def own_location(location_id: str = "LOC1", **kwargs: Any) -> Location:
    data = location_data(location_id, **kwargs)
    location_put(partner=None, key=Key(data["country_code"], data["party_id"], location_id), data=data)
    Delivery.objects.all().delete()  # the fixture's own outbox rows: tests look at what the admin writes
    return Location.objects.get(ocpi_id=location_id)


def partner_location(partner: Partner, location_id: str = "PLOC1", **kwargs: Any) -> Location:
    data = location_data(location_id, country_code="DE", party_id="PCP", city="Berlin", **kwargs)
    location_put(partner=partner, key=Key("DE", "PCP", location_id), data=data)
    return Location.objects.get(ocpi_id=location_id)


@pytest.fixture
def cpo_partner(own_parties: list[Party]) -> Partner:
    """A partner CPO (DE*PCP) whose locations we received."""
    partner, _ = make_partner(name="partner-cpo", roles=(("DE", "PCP", Role.CPO),))
    return partner


@pytest.fixture
def receiver(own_parties: list[Party]) -> Partner:
    """A registered eMSP partner with a locations RECEIVER endpoint: our changes are pushed to it."""
    partner, _ = make_partner(name="receiver", roles=(("DE", "RCV", Role.EMSP),))
    PartnerEndpoint.objects.create(
        partner=partner, identifier="locations", role="RECEIVER", url="http://127.0.0.1:9/ocpi/emsp/2.2.1/locations"
    )
    return partner


@pytest.fixture
def bystander(own_parties: list[Party]) -> Partner:
    """A registered partner without a locations RECEIVER endpoint: gets nothing."""
    partner, _ = make_partner(name="bystander", roles=(("FR", "BYS", Role.EMSP),))
    return partner


def results(response: Any) -> list[Any]:
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


def form_data(response: Any) -> dict[str, Any]:
    """The POST a browser would send for the change form as rendered (main form and every inline)."""
    assert response.status_code == 200, response.content[:500]
    data: dict[str, Any] = {}

    def add(form: Any) -> None:
        for bound in form:
            value = bound.value()
            if isinstance(bound.field.widget, CheckboxInput):
                if value:
                    data[bound.html_name] = "on"
                continue
            data[bound.html_name] = "" if value is None else value

    add(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        add(formset.management_form)
        for form in formset.forms:
            add(form)
    return data


def state(location: Location) -> tuple[Any, ...]:
    """Everything an admin save could change about a location, its EVSEs and connectors."""
    location = Location.objects.get(pk=location.pk)
    return (
        location.last_updated,
        location.doc,
        location.name,
        location.coordinates,
        sorted(location.evses.values_list("uid", "evse_id", "status", "physical_reference", "last_updated")),
        sorted(
            Connector.objects.filter(evse__location=location).values_list(
                "evse__uid", "ocpi_id", "max_voltage", "standard", "last_updated"
            )
        ),
    )


def errors_of(response: Any) -> dict[str, list[str]]:
    assert response.status_code == 200, "the form is shown again"
    errors = dict(response.context["adminform"].form.errors)
    for inline in response.context["inline_admin_formsets"]:
        for index, form_errors in enumerate(inline.formset.errors):
            for field, messages in form_errors.items():
                errors[f"{inline.formset.prefix}-{index}-{field}"] = messages
        if inline.formset.non_form_errors():
            errors[f"{inline.formset.prefix}-"] = list(inline.formset.non_form_errors())
    return errors


# --- every page ------------------------------------------------------------------------------------------------------


def test_location_list_columns_badges_and_counts(admin_client, cpo_partner):
    own_location("LOC1", evses=(("E1", "AVAILABLE"), ("E2", "AVAILABLE"), ("E3", "CHARGING"), ("E4", "REMOVED")))
    partner_location(cpo_partner, "PLOC1", evses=(("P1", "OUTOFORDER"),))

    response = admin_client.get(LOCATIONS)

    content = response.content.decode()
    assert [loc.ocpi_id for loc in results(response)] == ["PLOC1", "LOC1"]  # newest first
    assert ">2 AVAILABLE</span> · <span" in content  # status summary, in status order
    assert ">1 CHARGING</span>" in content
    assert ">1 REMOVED</span>" in content
    assert ">1 OUTOFORDER</span>" in content
    assert "background:#2e7d32" in content  # AVAILABLE green
    assert '<td class="field-evse_count">3</td>' in content  # REMOVED EVSEs are not counted
    assert "NL*OWN" in content
    assert "DE*PCP" in content
    assert ">own</span>" in content
    assert ">partner-cpo</span>" in content
    assert 'value="delete_selected"' not in content  # locations are never deleted


def test_location_list_query_count_does_not_grow_with_rows(admin_client, own_parties, django_assert_max_num_queries):
    for index in range(30):
        own_location(f"LOC{index:02d}", evses=(("E1", "AVAILABLE"), ("E2", "CHARGING")))

    with django_assert_max_num_queries(15):  # session, user, count, page, EVSE prefetch, filters...
        response = admin_client.get(LOCATIONS)

    assert len(results(response)) == 30


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"own": "yes"}, {"LOC1", "LOC2"}),
        ({"own": "no"}, {"PLOC1"}),
        ({"party": "NL*OWN"}, {"LOC1", "LOC2"}),
        ({"party": "de*pcp"}, {"PLOC1"}),
        ({"evse_status": "CHARGING"}, {"LOC2"}),
        ({"evse_status": "AVAILABLE"}, {"LOC1", "PLOC1"}),
        ({"city": "rotterdam"}, {"LOC2"}),
        ({"country": "NLD"}, {"LOC1", "LOC2", "PLOC1"}),
        ({"publish__exact": "0"}, {"LOC2"}),
        ({"parking_type": "ON_STREET"}, {"LOC1", "PLOC1"}),
        ({"q": "LOC2"}, {"LOC2"}),
        ({"q": "Rotterdam"}, {"LOC2"}),
        ({"q": "1012AB"}, {"LOC1", "PLOC1"}),
        ({"q": "EV-42"}, {"LOC2"}),  # an EVSE uid
        ({"q": "DE*PCP*EPLOC1P1"}, {"PLOC1"}),  # an evse_id
        ({"own": "yes", "evse_status": "AVAILABLE", "q": "Station"}, {"LOC1"}),
    ],
    ids=lambda value: str(value),
)
def test_location_list_filters_and_search(admin_client, cpo_partner, query, expected):
    own_location("LOC1")
    second = own_location("LOC2", city="Rotterdam", evses=(("EV-42", "CHARGING"),))
    Location.objects.filter(pk=second.pk).update(publish=False, parking_type=None, postal_code="3011AA")
    partner_location(cpo_partner, "PLOC1", evses=(("P1", "AVAILABLE"),))

    response = admin_client.get(LOCATIONS, query)

    assert {loc.ocpi_id for loc in results(response)} == expected


def test_location_list_date_hierarchy_and_partner_filter(admin_client, cpo_partner):
    own = own_location("LOC1")
    partner_location(cpo_partner)
    today = timezone.localdate(own.last_updated)  # both were last updated a day ago

    by_day = admin_client.get(
        LOCATIONS,
        {"last_updated__year": today.year, "last_updated__month": today.month, "last_updated__day": today.day},
    )
    by_partner = admin_client.get(LOCATIONS, {"partner__id__exact": cpo_partner.pk})

    assert {loc.ocpi_id for loc in results(by_day)} == {"LOC1", "PLOC1"}
    assert {loc.ocpi_id for loc in results(by_partner)} == {"PLOC1"}


def test_city_filter_is_a_text_box_keeping_the_other_parameters(admin_client, own_parties):
    own_location("LOC1")

    content = admin_client.get(LOCATIONS, {"own": "yes", "q": "Station"}).content.decode()

    assert '<input type="text" name="city" value=""' in content
    assert '<input type="hidden" name="own" value="yes">' in content
    assert '<input type="hidden" name="q" value="Station">' in content


def test_location_change_add_and_evse_pages_load(admin_client, cpo_partner):
    own = own_location("LOC1")
    theirs = partner_location(cpo_partner)
    own_evse = own.evses.get()
    their_evse = theirs.evses.get()

    pages = {
        "own location": admin_client.get(url("location_change", own.pk)),
        "partner location": admin_client.get(url("location_change", theirs.pk)),
        "add location": admin_client.get(LOCATION_ADD),
        "own EVSE": admin_client.get(url("evse_change", own_evse.pk)),
        "partner EVSE": admin_client.get(url("evse_change", their_evse.pk)),
        "add EVSE": admin_client.get(EVSE_ADD, {"location": own.pk}),
        "EVSE list": admin_client.get(EVSES),
        "location history": admin_client.get(url("location_history", own.pk)),
    }

    assert {name: r.status_code for name, r in pages.items()} == dict.fromkeys(pages, 200)
    own_page = pages["own location"].content.decode()
    assert 'name="name"' in own_page  # editable
    assert 'name="evses-0-evse_id"' in own_page  # EVSEs on the location page
    assert url("evse_change", own_evse.pk) in own_page  # each links to its page (connectors)
    assert f"{EVSE_ADD}?location={own.pk}" in own_page
    assert "&quot;evse_id&quot;: &quot;NL*OWN*ELOC1E1&quot;" in own_page  # the cached OCPI JSON, indented
    assert "/admin/ocpi_core/delivery/?q=LOC1" in own_page
    partner_page = pages["partner location"].content.decode()
    assert 'name="name"' not in partner_page  # read-only
    assert 'name="evses-0-evse_id"' not in partner_page
    assert "Berlin" in partner_page
    assert ">partner-cpo</span>" in partner_page
    assert 'name="connectors-0-max_voltage"' in pages["own EVSE"].content.decode()
    assert 'name="connectors-0-max_voltage"' not in pages["partner EVSE"].content.decode()
    assert pages["add EVSE"].context["adminform"].form.initial["location"] == str(own.pk)
    add_page = pages["add location"].content.decode()
    assert '<option value="NL*OWN">NL*OWN Own CPO</option>' in add_page  # owners: our CPO parties only
    assert "NL*OWE" not in add_page
    for name in ("location_delete", "evse_delete"):
        target = own.pk if name == "location_delete" else own_evse.pk
        assert admin_client.get(url(name, target)).status_code == 403  # never deleted


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, {"E1", "E2", "P1"}),
        ({"status": "CHARGING"}, {"E2"}),
        ({"own": "yes"}, {"E1", "E2"}),
        ({"own": "no"}, {"P1"}),
        ({"party": "DE*PCP"}, {"P1"}),
        ({"location__country": "NLD"}, {"E1", "E2", "P1"}),
        ({"q": "NL*OWN*ELOC1E2"}, {"E2"}),
        ({"q": "PLOC1"}, {"P1"}),
        ({"q": "Berlin"}, {"P1"}),
    ],
    ids=lambda value: str(value),
)
def test_evse_list_filters_and_search(admin_client, cpo_partner, query, expected):
    own_location("LOC1", evses=(("E1", "AVAILABLE"), ("E2", "CHARGING")))
    partner_location(cpo_partner, evses=(("P1", "AVAILABLE"),))

    response = admin_client.get(EVSES, query)

    assert {evse.uid for evse in results(response)} == expected
    if not query:
        content = response.content.decode()
        assert ">CHARGING</span>" in content
        assert '<td class="field-connector_count">1</td>' in content


# --- editing our own objects -----------------------------------------------------------------------------------------


def test_location_edit_bumps_refreshes_and_queues_a_put_for_receivers(admin_client, receiver, bystander):
    location = own_location("LOC1")
    before = location.last_updated
    page = admin_client.get(url("location_change", location.pk))
    data = form_data(page)
    data.update({"name": "Harbour P+R", "opening_times": '{"twentyfourseven": true}', "facilities": ["CAFE", "WIFI"]})

    response = admin_client.post(url("location_change", location.pk), data)

    assert response.status_code == 302, errors_of(response)
    location.refresh_from_db()
    assert location.last_updated > before
    doc = orjson.loads(location.doc)
    assert doc["name"] == "Harbour P+R"
    assert doc["opening_times"] == {"twentyfourseven": True}
    assert doc["facilities"] == ["CAFE", "WIFI"]
    assert doc["last_updated"] == format_datetime(location.last_updated)
    assert list(Delivery.objects.values_list("partner__name", "method", "module", "country_code", "object_path")) == [
        ("receiver", "PUT", "locations", "NL", "LOC1")
    ]


def test_location_edit_enqueues_the_delivery_after_commit(admin_client, receiver, django_capture_on_commit_callbacks):
    location = own_location("LOC1")
    data = form_data(admin_client.get(url("location_change", location.pk)))
    data["name"] = "Harbour P+R"
    with Connection(app.conf.broker_url) as connection:
        queue = connection.SimpleQueue("push")
        queue.clear()

        with django_capture_on_commit_callbacks(execute=True):
            response = admin_client.post(url("location_change", location.pk), data)

        assert response.status_code == 302
        message = queue.get(timeout=5)
        message.ack()
        queue.close()
    delivery = Delivery.objects.get()
    assert message.headers["task"] == "ocpi_core.tasks.outbox_deliver_partner_task"  # the partner's batch task
    assert message.payload[0][0] == delivery.partner_id


def test_saving_an_unchanged_location_changes_nothing(admin_client, receiver):
    location = own_location("LOC1")
    before = state(location)

    response = admin_client.post(
        url("location_change", location.pk), form_data(admin_client.get(url("location_change", location.pk)))
    )

    assert response.status_code == 302
    assert state(location) == before
    assert not Delivery.objects.exists()


def test_evse_edited_on_the_location_page_bumps_evse_and_location(admin_client, receiver):
    location = own_location("LOC1", evses=(("E1", "AVAILABLE"), ("E2", "CHARGING")))
    evses_before = dict(location.evses.values_list("uid", "last_updated"))
    data = form_data(admin_client.get(url("location_change", location.pk)))
    index = next(i for i in range(2) if data[f"evses-{i}-id"] == location.evses.get(uid="E2").pk)
    data[f"evses-{index}-physical_reference"] = "Bay 7"
    Evse.objects.filter(uid="E2").update(status="OUTOFORDER")  # the charge point, while staff was typing

    response = admin_client.post(url("location_change", location.pk), data)

    assert response.status_code == 302, errors_of(response)
    location.refresh_from_db()
    e1, e2 = location.evses.order_by("uid")
    assert e1.last_updated == evses_before["E1"]  # untouched
    assert e2.last_updated > evses_before["E2"]
    assert e2.physical_reference == "Bay 7"
    assert e2.status == "OUTOFORDER"  # not overwritten by the form's stale copy
    assert location.last_updated == e2.last_updated
    doc = orjson.loads(location.doc)
    assert (doc["evses"][1]["physical_reference"], doc["evses"][1]["status"]) == ("Bay 7", "OUTOFORDER")
    assert list(Delivery.objects.values_list("method", "object_path")) == [("PUT", "LOC1")]


def test_evse_and_connector_edit_on_the_evse_page(admin_client, receiver):
    location = own_location("LOC1")
    evse = location.evses.get()
    connector = evse.connectors.get()
    before = (location.last_updated, evse.last_updated, connector.last_updated)
    data = form_data(admin_client.get(url("evse_change", evse.pk)))
    data.update(
        {
            "evse_id": "NL*OWN*E12345",
            "capabilities": ["RFID_READER", "REMOTE_START_STOP_CAPABLE"],
            "connectors-0-max_voltage": "400",
            "connectors-0-tariff_ids": '["T1"]',
        }
    )

    response = admin_client.post(url("evse_change", evse.pk), data)

    assert response.status_code == 302, errors_of(response)
    location.refresh_from_db()
    evse.refresh_from_db()
    connector.refresh_from_db()
    assert (connector.max_voltage, connector.tariff_ids, evse.evse_id) == (400, ["T1"], "NL*OWN*E12345")
    assert evse.capabilities == ["RFID_READER", "REMOTE_START_STOP_CAPABLE"]  # as ticked
    assert connector.last_updated > before[2]
    assert evse.last_updated > before[1]
    assert location.last_updated > before[0]
    doc = orjson.loads(location.doc)
    assert doc["last_updated"] == format_datetime(location.last_updated)
    assert doc["evses"][0]["evse_id"] == "NL*OWN*E12345"
    assert doc["evses"][0]["connectors"][0]["max_voltage"] == 400
    assert doc["evses"][0]["connectors"][0]["tariff_ids"] == ["T1"]
    assert list(Delivery.objects.values_list("partner__name", "method", "object_path")) == [
        ("receiver", "PUT", "LOC1/E1")
    ]


def test_connector_added_and_deleted_on_the_evse_page(admin_client, receiver):
    location = own_location("LOC1")
    evse = location.evses.get()
    data = form_data(admin_client.get(url("evse_change", evse.pk)))
    data.update(
        {
            "connectors-TOTAL_FORMS": "2",
            "connectors-0-DELETE": "on",
            "connectors-1-ocpi_id": "2",
            "connectors-1-standard": "CHADEMO",
            "connectors-1-format": "CABLE",
            "connectors-1-power_type": "DC",
            "connectors-1-max_voltage": "500",
            "connectors-1-max_amperage": "125",
            "connectors-1-max_electric_power": "50000",
            "connectors-1-tariff_ids": "",
            "connectors-1-terms_and_conditions": "",
            "connectors-1-evse": str(evse.pk),
        }
    )

    response = admin_client.post(url("evse_change", evse.pk), data)

    assert response.status_code == 302, errors_of(response)
    location.refresh_from_db()
    assert list(evse.connectors.values_list("ocpi_id", "standard", "max_electric_power")) == [("2", "CHADEMO", 50000)]
    connectors = orjson.loads(location.doc)["evses"][0]["connectors"]
    assert [(c["id"], c["power_type"]) for c in connectors] == [("2", "DC")]
    assert "tariff_ids" not in connectors[0]  # left empty: absent, as the receiver stores it
    assert Delivery.objects.get().object_path == "LOC1/E1"


def test_the_last_connector_cannot_be_deleted(admin_client, receiver):
    location = own_location("LOC1")
    evse = location.evses.get()
    before = state(location)
    data = form_data(admin_client.get(url("evse_change", evse.pk)))
    data["connectors-0-DELETE"] = "on"

    response = admin_client.post(url("evse_change", evse.pk), data)

    assert "connectors-" in errors_of(response)
    assert state(location) == before
    assert not Delivery.objects.exists()


def test_evse_added_with_its_connector(admin_client, receiver):
    location = own_location("LOC1")
    page = admin_client.get(EVSE_ADD, {"location": location.pk})
    data = form_data(page)
    data.update(
        {
            "uid": "E2",
            "evse_id": "NL*OWN*E2",
            "status": "AVAILABLE",
            "connectors-0-ocpi_id": "1",
            "connectors-0-standard": "IEC_62196_T2_COMBO",
            "connectors-0-format": "CABLE",
            "connectors-0-power_type": "DC",
            "connectors-0-max_voltage": "920",
            "connectors-0-max_amperage": "400",
        }
    )

    response = admin_client.post(EVSE_ADD, data)

    assert response.status_code == 302, errors_of(response)
    location.refresh_from_db()
    evse = location.evses.get(uid="E2")
    assert (evse.position, evse.status) == (1, "AVAILABLE")
    assert evse.connectors.get().last_updated == evse.last_updated == location.last_updated
    assert [e["uid"] for e in orjson.loads(location.doc)["evses"]] == ["E1", "E2"]
    assert list(Delivery.objects.values_list("method", "object_path")) == [("PUT", "LOC1/E2")]


def test_evse_add_refuses_a_partners_location_and_a_taken_uid(admin_client, cpo_partner, receiver):
    own = own_location("LOC1")
    theirs = partner_location(cpo_partner)
    count = Evse.objects.count()

    def add(location: Location, uid: str) -> dict[str, list[str]]:
        data = form_data(admin_client.get(EVSE_ADD, {"location": location.pk}))
        data.update(
            {
                "uid": uid,
                "status": "AVAILABLE",
                "connectors-0-ocpi_id": "1",
                "connectors-0-standard": "IEC_62196_T2",
                "connectors-0-format": "SOCKET",
                "connectors-0-power_type": "AC_1_PHASE",
                "connectors-0-max_voltage": "230",
                "connectors-0-max_amperage": "16",
            }
        )
        return errors_of(admin_client.post(EVSE_ADD, data))

    assert "location" in add(theirs, "NEW")
    assert "uid" in add(own, "e1")  # CiString: E1 exists
    assert Evse.objects.count() == count
    assert not Delivery.objects.exists()


def test_location_added_through_the_admin(admin_client, receiver):
    data = form_data(admin_client.get(LOCATION_ADD))
    data.update(
        {
            "party": "NL*OWN",
            "ocpi_id": "NEW1",
            "publish": "on",
            "name": "New station",
            "address": "Dam 1",
            "city": "Amsterdam",
            "country": "NLD",
            "coordinates": '{"latitude": "52.37310", "longitude": "4.89260"}',
            "time_zone": "Europe/Amsterdam",
            "parking_type": "PARKING_LOT",
        }
    )

    response = admin_client.post(LOCATION_ADD, data)

    assert response.status_code == 302, errors_of(response)
    location = Location.objects.get(ocpi_id="NEW1")
    assert (location.country_code, location.party_id, location.partner) == ("NL", "OWN", None)
    doc = orjson.loads(location.doc)
    assert doc["id"] == "NEW1"
    assert doc["coordinates"] == {"latitude": "52.37310", "longitude": "4.89260"}
    assert "facilities" not in doc  # nothing ticked: absent
    assert list(Delivery.objects.values_list("method", "object_path")) == [("PUT", "NEW1")]
    # the same id again: an error on the id, nothing added
    again = admin_client.post(LOCATION_ADD, {**data, "ocpi_id": "new1"})
    assert "ocpi_id" in errors_of(again)
    assert Location.objects.filter(ocpi_id__iexact="new1").count() == 1


# --- invalid input: an error on the field, nothing changed, nothing pushed -------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("coordinates", '{"latitude": "52.3", ', "Enter a valid JSON."),
        ("coordinates", '{"latitude": "north", "longitude": "4.90000"}', "coordinates.latitude: does not match"),
        ("coordinates", "", "This field is required."),
        ("opening_times", '{"twentyfourseven": false}', "regular_hours: required when twentyfourseven is false"),
        ("energy_mix", '{"is_green_energy": "yes"}', "energy_mix.is_green_energy: must be true or false"),
        ("directions", '[{"language": "english", "text": "Left"}]', "directions[0].language: must be at most 2"),
        ("publish_allowed_to", '[{"uid": "012345678"}]', "only allowed when publish is false"),
        ("country", "Netherlands", "Ensure this value has at most 3 characters"),
        ("images", '{"url": "x"}', "must be a list"),
    ],
)
def test_invalid_location_value_is_a_field_error_and_changes_nothing(admin_client, receiver, field, value, message):
    location = own_location("LOC1")
    before = state(location)
    data = form_data(admin_client.get(url("location_change", location.pk)))
    data[field] = value

    response = admin_client.post(url("location_change", location.pk), data)

    errors = errors_of(response)
    assert field in errors, errors
    assert message in " ".join(errors[field])
    shown = response.context["adminform"].form[field].value()  # what was typed is shown again
    try:
        assert orjson.loads(shown) == orjson.loads(value)
    except orjson.JSONDecodeError:
        assert shown == value
    assert state(location) == before
    assert not Delivery.objects.exists()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("connectors-0-tariff_ids", '["' + "T" * 37 + '"]', "tariff_ids[0]: must be at most 36 characters"),
        ("connectors-0-tariff_ids", '"T1"', "must be a list"),
        ("connectors-0-terms_and_conditions", "not a url", "Enter a valid URL."),
        ("connectors-0-standard", "PLUG", "Select a valid choice."),
        ("connectors-0-max_voltage", "", "This field is required."),
        ("status_schedule", '[{"period_begin": "tomorrow", "status": "AVAILABLE"}]', "status_schedule[0].period_"),
        ("coordinates", '{"latitude": "52.37800"}', "coordinates.longitude: is required"),
        ("floor_level", "-12345", "Ensure this value has at most 4 characters"),
    ],
)
def test_invalid_evse_or_connector_value_changes_nothing(admin_client, receiver, field, value, message):
    location = own_location("LOC1")
    evse = location.evses.get()
    before = state(location)
    data = form_data(admin_client.get(url("evse_change", evse.pk)))
    data[field] = value

    response = admin_client.post(url("evse_change", evse.pk), data)

    errors = errors_of(response)
    assert field in errors, errors
    assert message in " ".join(errors[field])
    assert state(location) == before
    assert not Delivery.objects.exists()


def test_duplicate_connector_ids_on_one_evse_are_refused(admin_client, receiver):
    location = own_location("LOC1")
    evse = location.evses.get()
    before = state(location)
    data = form_data(admin_client.get(url("evse_change", evse.pk)))
    data.update(
        {
            "connectors-TOTAL_FORMS": "2",
            "connectors-1-ocpi_id": "1",
            "connectors-1-standard": "CHADEMO",
            "connectors-1-format": "CABLE",
            "connectors-1-power_type": "DC",
            "connectors-1-max_voltage": "500",
            "connectors-1-max_amperage": "125",
            "connectors-1-evse": str(evse.pk),
        }
    )

    response = admin_client.post(url("evse_change", evse.pk), data)

    assert "Another connector of this EVSE has this id." in errors_of(response)["connectors-1-ocpi_id"]
    assert state(location) == before


# --- partners' objects are read-only ---------------------------------------------------------------------------------


def test_partner_objects_cannot_be_changed_by_post(admin_client, cpo_partner, receiver):
    location = partner_location(cpo_partner)
    evse = location.evses.get()
    before = state(location)
    location_post = {"name": "Hijacked", "address": "x", "city": "x", "country": "NLD", "time_zone": "UTC"}
    evse_post = {
        "evse_id": "X",
        "connectors-TOTAL_FORMS": "1",
        "connectors-INITIAL_FORMS": "1",
        "connectors-0-id": str(evse.connectors.get().pk),
        "connectors-0-max_voltage": "1",
    }

    responses = [
        admin_client.post(url("location_change", location.pk), location_post),
        admin_client.post(url("evse_change", evse.pk), evse_post),
        admin_client.post(url("location_delete", location.pk), {"post": "yes"}),
    ]

    assert [r.status_code for r in responses] == [403, 403, 403]
    assert state(location) == before
    assert not Delivery.objects.exists()


def test_staff_with_view_permission_only_sees_own_objects_read_only(own_parties, receiver):
    location = own_location("LOC1")
    user = User.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=["view_location", "view_evse"]))
    client = Client()
    client.force_login(user)
    before = state(location)

    page = client.get(url("location_change", location.pk))
    post = client.post(url("location_change", location.pk), {"name": "x"})
    evses = client.get(EVSES)

    assert page.status_code == 200
    assert 'name="name"' not in page.content.decode()
    assert post.status_code == 403
    assert 'value="set_status"' not in evses.content.decode()
    assert client.get(LOCATION_ADD).status_code == 403
    assert state(location) == before


# --- the status, from staff ------------------------------------------------------------------------------------------


def test_set_status_action_asks_then_patches_own_evses_only(admin_client, cpo_partner, receiver):
    location = own_location("LOC1", evses=(("E1", "AVAILABLE"), ("E2", "CHARGING")))
    theirs = partner_location(cpo_partner).evses.get()
    e1 = location.evses.get(uid="E1")
    selected = {"action": "set_status", "_selected_action": [e1.pk, theirs.pk]}
    before = e1.last_updated

    ask = admin_client.post(EVSES, selected)
    bad = admin_client.post(EVSES, {**selected, "apply": "1", "status": "BROKEN"})
    done = admin_client.post(EVSES, {**selected, "apply": "1", "status": "INOPERATIVE"}, follow=True)

    assert ask.status_code == 200
    assert ask.templates[0].name == "admin/locations/evse/set_status.html"
    assert '<option value="OUTOFORDER">' in ask.content.decode()
    assert "partner's, unchanged" in ask.content.decode()
    assert bad.status_code == 200
    assert bad.context["form"].errors
    assert done.status_code == 200
    shown = [m.message for m in done.context["messages"]]
    assert "Status INOPERATIVE set on 1 EVSE." in shown
    assert "1 partners' EVSE left unchanged: read-only here." in shown
    e1.refresh_from_db()
    location.refresh_from_db()
    assert e1.status == "INOPERATIVE"
    assert e1.last_updated > before
    assert location.last_updated == e1.last_updated
    assert orjson.loads(location.doc)["evses"][0]["status"] == "INOPERATIVE"
    assert location.evses.get(uid="E2").status == "CHARGING"
    assert Evse.objects.get(pk=theirs.pk).status == "AVAILABLE"
    assert list(Delivery.objects.values_list("partner__name", "method", "object_path", "fields")) == [
        ("receiver", "PATCH", "LOC1/E1", ["status"])
    ]


def test_connector_rows_show_tariff_ids_on_one_line_in_narrow_inputs(admin_client, own_parties):
    """The EVSE page's connector table: tariff_ids in a one-row textarea showed only "[" of indented JSON, and the
    admin's 20em inputs made the table 1900 px wide."""
    location = own_location("L1")
    evse = location.evses.order_by("pk").first()
    assert evse is not None
    Connector.objects.filter(evse=evse).update(tariff_ids=["T1", "T2"])

    content = admin_client.get(reverse("admin:locations_evse_change", args=[evse.pk])).content.decode()

    assert "\n[&quot;T1&quot;,&quot;T2&quot;]</textarea>" in content
    assert 'name="connectors-0-ocpi_id" value="1" size="6"' in content
