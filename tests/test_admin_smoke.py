"""Every back-office page an operator can reach from the admin index opens: each registered model's list (also
searched and with its first filter applied), its add page where adding is allowed, and the change page of a row, on
the demo data plus a partner."""

import io
from typing import Any

import pytest
from django.contrib import admin
from django.core.management import call_command
from django.urls import NoReverseMatch, reverse

from conftest import make_partner
from ocpi_core.constants import Role

MODELS = sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)
IDS = [model._meta.label for model, _ in MODELS]


@pytest.fixture
def demo_data(db: None) -> None:
    call_command("ocpi_demo", stdout=io.StringIO())
    make_partner(name="smoke", roles=(("DE", "SMK", Role.CPO), ("DE", "SME", Role.EMSP)))


def _url(model: Any, view: str, *args: Any) -> str | None:
    try:
        return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)
    except NoReverseMatch:
        return None


@pytest.mark.parametrize(("model", "model_admin"), MODELS, ids=IDS)
def test_admin_pages_of_every_model_open(admin_client: Any, demo_data: None, model: Any, model_admin: Any) -> None:
    changelist = _url(model, "changelist")
    assert changelist is not None
    assert admin_client.get(changelist).status_code == 200
    assert admin_client.get(changelist, {"q": "DMC"}).status_code == 200
    response = admin_client.get(changelist)
    filters = response.context["cl"].filter_specs if response.context and "cl" in response.context else []
    for spec in filters[:3]:  # each of the first filters, with its first real choice
        choices = [c for c in spec.choices(response.context["cl"]) if c.get("query_string") and not c.get("selected")]
        if choices:
            assert admin_client.get(changelist + choices[-1]["query_string"]).status_code == 200
    add = _url(model, "add")
    if add and model_admin.has_add_permission(response.wsgi_request):
        assert admin_client.get(add).status_code == 200
    row = model._default_manager.first()
    change = _url(model, "change", row.pk) if row is not None else None
    if change:
        assert admin_client.get(change).status_code == 200


def test_every_page_has_an_icon_and_starts_with_the_navigation_sidebar_closed(
    admin_client: Any, client: Any, db: None
) -> None:
    """templates/admin/base_site.html: no /favicon.ico request (a 404 in the browser's console on every first page),
    and the sidebar closed until opened (open, it left a changelist 750 of 1400 px and hid its last columns)."""
    pages = [
        admin_client.get(reverse("admin:index")),
        admin_client.get(reverse("admin:ocpi_core_trafficlog_changelist")),
        client.get(reverse("admin:login")),  # the login page, before anyone is logged in
    ]
    for response in pages:
        url, content = response.request["PATH_INFO"], response.content.decode()
        assert '<link rel="icon" href="data:,">' in content, url
        assert 'localStorage.setItem("django.admin.navSidebarIsOpen", "false")' in content, url
        assert "OCPI platform back-office" in content, url  # Django's own base_site still renders the header
