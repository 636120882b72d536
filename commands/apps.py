from django.apps import AppConfig


class CommandsConfig(AppConfig):
    """Commands module (REFERENCE §11): CPO Receiver carried out through the charge point gateway, eMSP Sender."""

    name = "commands"
    verbose_name = "Commands"
    default_auto_field = "django.db.models.BigAutoField"

    # In OCPI the CPO's commands interface is the RECEIVER, the eMSP's (CommandResult callbacks) the SENDER.
    ocpi_interfaces = (
        ("commands", "RECEIVER", "ocpi:cpo-commands"),
        ("commands", "SENDER", "ocpi:emsp-commands"),
    )
