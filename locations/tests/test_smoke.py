"""Round trip of the official Location example through the eMSP receiver, and our own location on the sender."""

import json

from conftest import examples_dir, make_partner
from ocpi_core.constants import Role


def test_receiver_put_then_get_round_trips_the_official_example(ocpi, own_parties):
    _, token = make_partner(roles=(("BE", "BEC", Role.CPO),))
    example = json.loads((examples_dir() / "location_example.json").read_text())

    put = ocpi(token).put("/ocpi/2.2.1/emsp/locations/BE/BEC/LOC1", json=example)
    assert (put.status_code, put.json()["status_code"]) == (201, 1000), put.text
    got = ocpi(token).get("/ocpi/2.2.1/emsp/locations/BE/BEC/LOC1")

    assert got.json()["data"] == example
