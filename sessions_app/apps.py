from django.apps import AppConfig


class SessionsConfig(AppConfig):
    """Sessions module (REFERENCE §7): CPO Sender for our own sessions, eMSP Receiver for partners'."""

    name = "sessions_app"
    verbose_name = "Sessions"
    default_auto_field = "django.db.models.BigAutoField"
