from django.apps import AppConfig


class ChargingProfilesConfig(AppConfig):
    """ChargingProfiles module (REFERENCE §12): CPO Receiver and SCSP/eMSP Sender."""

    name = "chargingprofiles"
    verbose_name = "Charging profiles"
    default_auto_field = "django.db.models.BigAutoField"
