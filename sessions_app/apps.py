from django.apps import AppConfig


class SessionsConfig(AppConfig):
    """Sessions module (REFERENCE §7): CPO Sender for our own sessions, eMSP Receiver for partners'."""

    name = "sessions_app"
    verbose_name = "Sessions"
    default_auto_field = "django.db.models.BigAutoField"

    ocpi_interfaces = (
        ("sessions", "SENDER", "ocpi:cpo-sessions"),
        ("sessions", "RECEIVER", "ocpi:emsp-sessions"),
    )

    def ready(self) -> None:
        from sessions_app import services

        services.register_push_and_pull()
