"""List filters the module admins share: who owns a row (us or a partner) and which party it is under."""

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest


class OwnerListFilter(admin.SimpleListFilter):
    """Our own rows (`partner` empty) or partners' (received or pulled). Subclasses may relabel the two choices."""

    title = "owner"
    parameter_name = "owner"
    own_label = "Our own"
    partner_label = "Partners'"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("own", self.own_label), ("partner", self.partner_label)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "own":
            return queryset.filter(partner__isnull=True)
        if self.value() == "partner":
            return queryset.filter(partner__isnull=False)
        return queryset


class PartyListFilter(admin.SimpleListFilter):
    """`country_code*party_id` pairs as stored in the admin's own rows (the owner party by default; subclasses name
    other columns, e.g. a session's token party)."""

    title = "party"
    parameter_name = "party"
    country_code_field = "country_code"
    party_id_field = "party_id"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        fields = (self.country_code_field, self.party_id_field)
        pairs = model_admin.model._default_manager.order_by(*fields).values_list(*fields).distinct()
        return [(f"{cc}*{pid}", f"{cc}*{pid}") for cc, pid in pairs]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if not value or "*" not in value:
            return queryset
        country_code, party_id = value.split("*", 1)
        return queryset.filter(**{self.country_code_field: country_code, self.party_id_field: party_id})
