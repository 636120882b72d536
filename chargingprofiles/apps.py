from django.apps import AppConfig


class ChargingProfilesConfig(AppConfig):
    """ChargingProfiles module (REFERENCE §12): CPO Receiver (profiles on our own sessions, through the charge point
    gateway) and the eMSP/SCSP Sender side (results and unsolicited ActiveChargingProfile updates of the requests our
    operators send to CPO partners)."""

    name = "chargingprofiles"
    verbose_name = "Charging profiles"
    default_auto_field = "django.db.models.BigAutoField"

    ocpi_interfaces = (
        ("chargingprofiles", "RECEIVER", "ocpi:cpo-chargingprofiles"),
        ("chargingprofiles", "SENDER", "ocpi:emsp-chargingprofiles"),
    )
