"""Back-office pages of ChargingProfiles and HubClientInfo load, and the add form sends a request."""

from typing import Any

from chargingprofiles.models import ChargingProfileRequest
from conftest import envelope_body, make_partner
from hubclientinfo.services import clientinfo_put
from ocpi_core.constants import Role
from ocpi_core.models import PartnerEndpoint

BASE = "/admin/chargingprofiles"


def test_pages_load_and_the_add_form_sends(admin_client: Any, own_parties: Any, httpserver: Any) -> None:
    partner, _ = make_partner(name="cpo", roles=(("DE", "CPX", Role.CPO),))
    PartnerEndpoint.objects.create(
        partner=partner, identifier="chargingprofiles", role="RECEIVER", url=httpserver.url_for("/cp")
    )
    httpserver.expect_request("/cp/S9").respond_with_data(
        envelope_body({"result": "TOO_OFTEN", "timeout": 5}), content_type="application/json"
    )

    response = admin_client.post(
        f"{BASE}/chargingprofilerequest/add/", {"partner": partner.pk, "session_id": "S9", "kind": "CLEAR"}
    )

    assert response.status_code == 302
    sent = ChargingProfileRequest.objects.get()
    assert (sent.response, sent.timeout) == ("TOO_OFTEN", 5)
    listing = admin_client.get(f"{BASE}/chargingprofilerequest/", {"response": "TOO_OFTEN"})
    assert "TOO_OFTEN" in listing.content.decode()
    assert admin_client.get(f"{BASE}/chargingprofilerequest/{sent.pk}/change/").status_code == 200
    assert admin_client.get(f"{BASE}/activeprofileupdate/").status_code == 200


def test_hub_client_info_list_and_partner_page_show_statuses(admin_client: Any, own_parties: Any) -> None:
    hub, _ = make_partner(name="hub", roles=(("NL", "HUB", Role.HUB),))
    data = {"party_id": "ABC", "country_code": "DE", "role": "EMSP", "status": "OFFLINE"}
    clientinfo_put(
        partner=hub, country_code="DE", party_id="ABC", data={**data, "last_updated": "2024-01-01T00:00:00Z"}
    )

    listing = admin_client.get("/admin/hubclientinfo/clientinfo/", {"status": "OFFLINE"})
    partner_page = admin_client.get(f"/admin/ocpi_core/partner/{hub.pk}/change/")

    assert "DE*ABC" in listing.content.decode()
    assert "OFFLINE" in listing.content.decode()
    assert "parties behind this hub" in partner_page.content.decode().lower()
    assert "OFFLINE" in partner_page.content.decode()
