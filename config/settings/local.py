"""The embedded default for one machine: SQLite, file-system broker, DEBUG on, loopback partners allowed."""

from config.settings.base import *  # noqa: F403
from config.settings.base import env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
OCPI_ALLOW_PRIVATE_URLS = env.bool("OCPI_ALLOW_PRIVATE_URLS", default=True)
