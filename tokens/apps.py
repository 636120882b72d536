from django.apps import AppConfig


class TokensConfig(AppConfig):
    """Tokens module (REFERENCE §10): eMSP Sender for our own tokens, CPO Receiver for partners' tokens."""

    name = "tokens"
    verbose_name = "Tokens"
    default_auto_field = "django.db.models.BigAutoField"

    ocpi_interfaces = (
        ("tokens", "SENDER", "ocpi:emsp-tokens"),
        ("tokens", "RECEIVER", "ocpi:cpo-tokens"),
    )

    def ready(self) -> None:
        from tokens import services

        services.register_push_and_pull()
