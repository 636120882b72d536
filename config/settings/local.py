"""The embedded default for one machine: SQLite (write-ahead log, base.py), file-system broker, DEBUG on (scripts/run
serves it with DEBUG off), loopback partners allowed."""

from config.settings.base import *  # noqa: F403
from config.settings.base import env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
OCPI_ALLOW_PRIVATE_URLS = env.bool("OCPI_ALLOW_PRIVATE_URLS", default=True)
