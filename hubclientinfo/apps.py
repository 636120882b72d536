from django.apps import AppConfig


class HubClientInfoConfig(AppConfig):
    """HubClientInfo module (REFERENCE §13): ClientInfo of the parties behind a hub."""

    name = "hubclientinfo"
    verbose_name = "Hub client info"
    default_auto_field = "django.db.models.BigAutoField"
