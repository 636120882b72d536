"""Production: secrets must be set, no DEBUG, partner URLs on private networks refused unless allowed."""

from config.settings.base import *  # noqa: F403
from config.settings.base import env

DEBUG = False
SECRET_KEY = env("DJANGO_SECRET_KEY")  # no default: a missing secret fails at start-up, not at the first request
OCPI_TOKEN_ENCRYPTION_KEY = env("OCPI_TOKEN_ENCRYPTION_KEY")
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_SECURE = env.bool("DJANGO_SECURE_COOKIES", default=True)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
WHITENOISE_USE_FINDERS = False  # production runs collectstatic (see the Dockerfile)
