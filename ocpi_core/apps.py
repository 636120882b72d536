from django.apps import AppConfig


class OcpiCoreConfig(AppConfig):
    """Protocol core: envelope, auth, pagination, versions, credentials, partners, client, traffic log."""

    name = "ocpi_core"
    verbose_name = "OCPI connections"
    default_auto_field = "django.db.models.BigAutoField"

    # Interfaces this app serves, listed in version details (see ocpi_core.registry).
    ocpi_interfaces = (("credentials", "SENDER", "ocpi:credentials"),)
