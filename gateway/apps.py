from django.apps import AppConfig


class GatewayConfig(AppConfig):
    """The charge point gateway: one interface between the CPO role and the chargers (simulator, webhook backend)."""

    name = "gateway"
    verbose_name = "Charge point gateway"
    default_auto_field = "django.db.models.BigAutoField"
