from django.apps import AppConfig


class OcpiCoreConfig(AppConfig):
    """Protocol core: envelope, auth, pagination, versions, credentials, partners, client, traffic log."""

    name = "ocpi_core"
    verbose_name = "OCPI connections"
    default_auto_field = "django.db.models.BigAutoField"

    # Interfaces this app serves, listed in version details (see ocpi_core.registry).
    ocpi_interfaces = (("credentials", "SENDER", "ocpi:credentials"),)

    def ready(self) -> None:
        from django.db.models import CharField
        from django.db.models.functions import Lower

        # `field__lower=value.lower()` compiles to LOWER(field) = value, which the case-insensitive unique indexes
        # (UniqueConstraint(Lower(...))) serve; `__iexact` compiles to UPPER(...) on PostgreSQL and cannot use them.
        CharField.register_lookup(Lower)
