from django.apps import AppConfig


class SelftestConfig(AppConfig):
    """Conformance self-test against a registered partner: read-only checks, stored reports."""

    name = "selftest"
    verbose_name = "Partner self-test"
    default_auto_field = "django.db.models.BigAutoField"
