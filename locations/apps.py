from django.apps import AppConfig


class LocationsConfig(AppConfig):
    """Locations module (REFERENCE §6): CPO Sender for our own locations, eMSP Receiver for partners'."""

    name = "locations"
    verbose_name = "Locations"
    default_auto_field = "django.db.models.BigAutoField"

    ocpi_interfaces = (
        ("locations", "SENDER", "ocpi:cpo-locations"),
        ("locations", "RECEIVER", "ocpi:emsp-locations"),
    )

    def ready(self) -> None:
        from locations import fast, services  # noqa: F401  (fast: registers the hot paths, ocpi_core.fastpath)

        services.register_push_and_pull()
