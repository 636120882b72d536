"""Production: secrets must be set, no DEBUG, partner URLs on private networks refused unless allowed."""

from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from config.settings.base import *  # noqa: F403
from config.settings.base import env

DEBUG = False
SECRET_KEY = env("DJANGO_SECRET_KEY")  # no default: a missing secret fails at start-up, not at the first request
OCPI_TOKEN_ENCRYPTION_KEY = env("OCPI_TOKEN_ENCRYPTION_KEY")
for _name, _value in (("DJANGO_SECRET_KEY", SECRET_KEY), ("OCPI_TOKEN_ENCRYPTION_KEY", OCPI_TOKEN_ENCRYPTION_KEY)):
    if not _value.strip():  # set but empty (e.g. a .env copied unfilled) would silently fall back or fail later
        raise ImproperlyConfigured(f"Set the {_name} environment variable: it is empty")
try:
    Fernet(OCPI_TOKEN_ENCRYPTION_KEY.encode())
except ValueError as _exc:
    raise ImproperlyConfigured("OCPI_TOKEN_ENCRYPTION_KEY is not a Fernet key (see .env.example)") from _exc
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
WHITENOISE_USE_FINDERS = False  # production runs collectstatic (see the Dockerfile)
