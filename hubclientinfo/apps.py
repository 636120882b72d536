from django.apps import AppConfig


class HubClientInfoConfig(AppConfig):
    """HubClientInfo module (REFERENCE §13): ClientInfo of the parties behind a hub (Receiver interface only).

    A configuration module: no routing headers. One endpoint serves all our roles. Pushes addressed to a party the
    hub reports OFFLINE, PLANNED or SUSPENDED are held until it is CONNECTED again (ocpi_core.push hold checks).
    """

    name = "hubclientinfo"
    verbose_name = "Hub client info"
    default_auto_field = "django.db.models.BigAutoField"

    ocpi_interfaces = (("hubclientinfo", "RECEIVER", "ocpi:hubclientinfo"),)

    def ready(self) -> None:
        from hubclientinfo import services
        from ocpi_core.push import push_hold_check_register

        push_hold_check_register(services.clientinfo_hold_check)
