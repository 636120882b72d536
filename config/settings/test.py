"""Test settings: PostgreSQL and Redis when the environment names them (CI does), SQLite otherwise."""

from config.settings.base import *  # noqa: F403
from config.settings.base import POSTGRES_ENGINE, SQLITE_ENGINE, VAR_DIR, env, postgres_options, sqlite_options

DEBUG = False
# SQLite unless TEST_DATABASE_URL names another server: run as the embedded default runs it (config.settings.base),
# on a file in write-ahead-log mode whose writers queue for the lock (in memory, a second connection, e.g. an
# in-process Celery worker's, failed at once with "database table is locked"). The tests' database is that file, with
# the pytest-xdist worker's suffix (pytest-django adds it), removed by Django at the end. Not ":memory:" as the
# connection's own name with a file only for the tests: pytest-django's live server, started before the test database
# exists, would take the database for an in-memory one and share one connection among all its threads.
DATABASES = {"default": env.db("TEST_DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'test-db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["ENGINE"] = POSTGRES_ENGINE  # as in production
    DATABASES["default"]["TEST"] = {"NAME": env("TEST_DATABASE_NAME", default="test_ocpi_platform")}
    # as in production (config.settings.base): parameters bound by the server, repeated statements prepared
    DATABASES["default"]["OPTIONS"] = postgres_options()
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["ENGINE"] = SQLITE_ENGINE
    DATABASES["default"]["OPTIONS"] = sqlite_options()
    DATABASES["default"]["TEST"] = {"NAME": DATABASES["default"]["NAME"]}
    if DATABASES["default"]["NAME"].startswith(str(VAR_DIR)):
        VAR_DIR.mkdir(exist_ok=True)
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
OCPI_ALLOW_PRIVATE_URLS = True
OCPI_COUNT_CACHE_SECONDS = 0  # tests add objects between requests and expect exact counts
OCPI_STATUS_HISTORY_DAYS = 36500  # tests record status changes at fixed dates (2024, 2025); one test the horizon
OCPI_HOT_CACHE_SECONDS = 0  # tests change tokens and partners with queryset updates between requests
OCPI_TRAFFIC_LOG_FLUSH_SECONDS = 0.0  # tests read the traffic log right after a request
OCPI_BASE_URL = "http://testserver"
OCPI_TOKEN_ENCRYPTION_KEY = ""
OCPI_CLIENT_TIMEOUT = 5.0
OCPI_CLIENT_CONNECT_TIMEOUT = 2.0
ALLOWED_HOSTS = ["*"]
CELERY_BROKER_URL = env("TEST_CELERY_BROKER_URL", default="memory://")
CELERY_BROKER_TRANSPORT_OPTIONS = {}
LOGGING["root"] = {"handlers": ["console"], "level": "WARNING"}  # noqa: F405
