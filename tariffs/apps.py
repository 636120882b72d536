from django.apps import AppConfig


class TariffsConfig(AppConfig):
    """Tariffs module (REFERENCE §9): CPO Sender for our own tariffs, eMSP Receiver for partners'."""

    name = "tariffs"
    verbose_name = "Tariffs"
    default_auto_field = "django.db.models.BigAutoField"

    ocpi_interfaces = (
        ("tariffs", "SENDER", "ocpi:cpo-tariffs"),
        ("tariffs", "RECEIVER", "ocpi:emsp-tariffs"),
    )

    def ready(self) -> None:
        from tariffs import services

        services.register_push_and_pull()
