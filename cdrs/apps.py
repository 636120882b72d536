from django.apps import AppConfig


class CdrsConfig(AppConfig):
    """CDRs module (REFERENCE §8): CPO Sender for our own charge detail records, eMSP Receiver for partners'."""

    name = "cdrs"
    verbose_name = "CDRs"
    default_auto_field = "django.db.models.BigAutoField"
