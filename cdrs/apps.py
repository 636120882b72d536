from django.apps import AppConfig


class CdrsConfig(AppConfig):
    """CDRs module (REFERENCE §8): CPO Sender for our own charge detail records, eMSP Receiver for partners'."""

    name = "cdrs"
    verbose_name = "CDRs"
    default_auto_field = "django.db.models.BigAutoField"

    ocpi_interfaces = (
        ("cdrs", "SENDER", "ocpi:cpo-cdrs"),
        ("cdrs", "RECEIVER", "ocpi:emsp-cdrs"),
    )

    def ready(self) -> None:
        from cdrs import services
        from sessions_app.signals import session_completed

        services.register_push_and_pull()
        session_completed.connect(services.cdr_on_session_completed, dispatch_uid="cdrs.cdr_on_session_completed")
