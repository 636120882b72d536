"""Which own party a request is for, and which parties a partner owns (routing headers, REFERENCE §2.10)."""

import pytest

from ocpi_core.constants import Role
from ocpi_core.exceptions import NotFound
from ocpi_core.models import Party
from ocpi_core.routing import Routing
from ocpi_core.selectors import own_parties_for_request, partner_owns_party


@pytest.fixture
def second_cpo(own_parties: list[Party]) -> Party:
    return Party.objects.create(country_code="BE", party_id="TWO", role=Role.CPO, name="Second CPO")


def test_without_to_headers_every_own_party_of_the_role(second_cpo):
    parties = own_parties_for_request(routing=Routing(), role=Role.CPO)
    assert sorted(p.party_id for p in parties) == ["OWN", "TWO"]


def test_to_headers_select_one_party_case_insensitively(second_cpo):
    routing = Routing(to_country_code="be", to_party_id="two")
    assert [p.pk for p in own_parties_for_request(routing=routing, role=Role.CPO)] == [second_cpo.pk]


def test_to_headers_naming_another_platforms_party_are_404(own_parties):
    with pytest.raises(NotFound):
        own_parties_for_request(routing=Routing(to_country_code="DE", to_party_id="XYZ"), role=Role.CPO)
    with pytest.raises(NotFound):  # ours, but not a CPO
        own_parties_for_request(routing=Routing(to_country_code="NL", to_party_id="OWE"), role=Role.CPO)


def test_partner_owns_only_the_parties_it_announced(registered_partner):
    partner, _ = registered_partner
    assert partner_owns_party(partner=partner, country_code="de", party_id="prt")
    assert partner_owns_party(partner=partner, country_code="DE", party_id="PRT", role=Role.EMSP)
    assert not partner_owns_party(partner=partner, country_code="DE", party_id="PRT", role=Role.CPO)
    assert not partner_owns_party(partner=partner, country_code="NL", party_id="OWN")
