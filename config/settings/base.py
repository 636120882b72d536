"""Every setting of the platform. Only this package reads the environment (see .env.example)."""

from datetime import timedelta
from pathlib import Path
from typing import Any

import environ
from celery.schedules import crontab

BASE_DIR = Path(__file__).resolve().parents[2]
VAR_DIR = BASE_DIR / "var"  # runtime files of the embedded default: SQLite, embedded broker, static files

env = environ.Env()
if (BASE_DIR / ".env").exists():
    env.read_env(str(BASE_DIR / ".env"))  # real environment variables still win

# --- Django ---
DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env("DJANGO_SECRET_KEY", default="insecure-local-development-key-change-me-0123456789abcdef")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "ocpi_core",
    "locations",
    "tariffs",
    "tokens",
    "sessions_app",
    "cdrs",
    "commands",
    "chargingprofiles",
    "hubclientinfo",
    "gateway",
    "selftest",
    "dashboard",
]

MIDDLEWARE = [
    # First: request/correlation ids, body-size guard, traffic log and the envelope fallback for /ocpi/.
    "ocpi_core.middleware.OcpiMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Session, auth and messages serve the back-office only; under /ocpi/ they are skipped (token-authenticated).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "ocpi_core.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "ocpi_core.middleware.CsrfViewMiddleware",
    "ocpi_core.middleware.AuthenticationMiddleware",
    "ocpi_core.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
# The Sender's page index INCLUDEs the document key columns for PostgreSQL's index-only scans; SQLite (the embedded
# default) ignores INCLUDE and Django warns about it at every start: the index still works there without them.
SILENCED_SYSTEM_CHECKS = ["models.W040"]
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def postgres_options() -> dict[str, Any]:
    """psycopg options of a PostgreSQL connection. Parameters bound by PostgreSQL, not pasted into the SQL text
    (DJANGO_DB_SERVER_SIDE_BINDING); and prepared statements (OCPI_DB_PREPARE): a statement run 5 times on a kept
    connection is then parsed and planned once, and the hot paths' statements (ocpi_core.db.pg_fetch) at their first
    run. Django turns psycopg's preparing off unless `prepare_threshold` is given. Both false behind a pooler in
    transaction mode (PgBouncer before 1.21) that cannot keep prepared statements."""
    prepare = env.bool("OCPI_DB_PREPARE", default=True)
    return {
        "server_side_binding": env.bool("DJANGO_DB_SERVER_SIDE_BINDING", default=True),
        "prepare_threshold": 5 if prepare else None,
    }


def sqlite_options() -> dict[str, Any]:
    """sqlite3 options of the embedded default (and of the tests on SQLite). Wait for the writer lock instead of
    failing at once when web and worker write together. Transactions take the lock when they begin (IMMEDIATE): one
    that read first and then wrote could not wait for it ("database is locked" at once, whatever the timeout), e.g. a
    charging profile applied while the simulator's beat ticks. Write-ahead log: readers never wait for the writer (a
    partner's GET for a commit of the traffic log or the worker), and a commit appends to the log instead of
    rewriting and syncing the database file; with it, synchronous=NORMAL syncs at checkpoints, not at every commit (a
    crash of the process loses nothing; of the machine, at most the last commits). Measured in bench/README.md ("The
    embedded default")."""
    return {
        "timeout": 20,
        "transaction_mode": "IMMEDIATE",
        "init_command": env("OCPI_SQLITE_PRAGMAS", default="PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL"),
    }


# Django's PostgreSQL backend with a per-request health check that needs no round trip while the connection is
# quiet (ocpi_core.db_backends.postgresql).
POSTGRES_ENGINE = "ocpi_core.db_backends.postgresql"
# Django's SQLite backend whose write transactions queue for the writer lock on a file lock instead of polling for it
# (ocpi_core.db_backends.sqlite3).
SQLITE_ENGINE = "ocpi_core.db_backends.sqlite3"

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["ENGINE"] = POSTGRES_ENGINE
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DJANGO_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("OPTIONS", {}).update(postgres_options())
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["ENGINE"] = SQLITE_ENGINE
    DATABASES["default"].setdefault("OPTIONS", {}).update(sqlite_options())
    # The connection is kept across requests (no open, no function registry per request).
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DJANGO_CONN_MAX_AGE", default=60)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
if DATABASES["default"]["NAME"].startswith(str(VAR_DIR)):
    VAR_DIR.mkdir(exist_ok=True)  # the embedded default needs no set-up step

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = env("DJANGO_STATIC_ROOT", default=str(VAR_DIR / "static"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
if STATIC_ROOT.startswith(str(VAR_DIR)):
    Path(STATIC_ROOT).mkdir(parents=True, exist_ok=True)  # whitenoise expects it; collectstatic fills it
WHITENOISE_USE_FINDERS = True  # the embedded default serves admin assets without a collectstatic step

# Bodies larger than this are refused with an envelope under /ocpi/ (HTTP 413) and by Django elsewhere.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("OCPI_MAX_BODY_SIZE", default=1024 * 1024)

# --- Django REST framework, OpenAPI ---
REST_FRAMEWORK = {
    # The platform API (/api/); OCPI views set their own authentication, renderer and exception handler.
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework_simplejwt.authentication.JWTAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAdminUser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "ocpi_core.exceptions.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("PLATFORM_API_TOKEN_MINUTES", default=30)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=1),
    "AUTH_HEADER_TYPES": ("Bearer",),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "OCPI 2.2.1 roaming platform",
    "DESCRIPTION": (
        "The OCPI 2.2.1 interfaces this platform offers to its partners (under /ocpi/) and the platform API for "
        "the operator's own systems (under /api/). OCPI endpoints authenticate with `Authorization: Token "
        "<base64(token)>` and answer with the OCPI response envelope.\n\n"
        '**Platform API** (staff users): `POST /api/token/` with `{"username": ..., "password": ...}` (the '
        "admin login `scripts/run` prints), then **Authorize** with the `access` token under *jwtAuth* (sent as "
        "`Authorization: Bearer <access>`; it lasts PLATFORM_API_TOKEN_MINUTES, renew it at `/api/token/refresh/`). "
        'Errors are JSON: `{"detail": ...}` or, for a body field, `{"<field>": [...]}`. The examples name the '
        "demo parties `ocpi_demo` loads (CPO `NL*DMC`, eMSP `NL*DME`), so *Try it out* works on a fresh start."
    ),
    # Path parameters in the order of the URL (country_code, party_id, location_id, evse_uid ...), not sorted.
    "SORT_OPERATION_PARAMETERS": False,
    # The platform API's sign-in first in Swagger UI; the other tags follow in the order of their paths.
    "TAGS": [
        {"name": "Platform API: authentication", "description": "JWT for the platform API (/api/): obtain, renew"},
        {"name": "Platform API", "description": "What this deployment is and where its resources are"},
    ],
    "VERSION": "2.2.1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI assets from the installed sidecar package: the docs work on networks without a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "SessionStatusEnum": "sessions_app.models.SessionStatus",
        "ChargingProfileResultEnum": "chargingprofiles.models.ResultType",
        "CommandResultEnum": "commands.choices.CommandResultType",
    },
    # What every /ocpi/ operation shares (auth, ids, routing headers, error envelopes) is added once, here.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "ocpi_core.api.schema.postprocess_ocpi_operations",
    ],
}

# --- Celery ---
# Empty = the embedded default: a file-system broker under var/ that the run command's worker reads, so nothing
# but this checkout is needed. Production sets a Redis URL.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="") or "filesystem://"
if CELERY_BROKER_URL == "filesystem://":
    _broker_dir = Path(env("CELERY_EMBEDDED_BROKER_DIR", default=str(VAR_DIR / "broker")))
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
    for _folder in ("queue", "processed", "control"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
else:
    # socket_connect_timeout: a Redis host that does not answer fails a publish in seconds, not minutes (a web request
    # enqueueing a push after its commit must not hang; the outbox sweep sends what could not be enqueued).
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600, "socket_connect_timeout": 5}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULE = {
    "traffic-log-purge": {"task": "ocpi_core.tasks.traffic_log_purge_task", "schedule": crontab(minute=17)},
    "outbox-sweep": {"task": "ocpi_core.tasks.outbox_sweep_task", "schedule": 60.0},
    # Pull: incremental often, full (which retires what partners no longer list) once a night.
    "sync-incremental": {
        "task": "ocpi_core.tasks.sync_all_task",
        "schedule": crontab(minute=f"*/{env.int('OCPI_SYNC_INTERVAL_MINUTES', default=15)}"),
    },
    "sync-full": {
        "task": "ocpi_core.tasks.sync_all_task",
        "schedule": crontab(hour=3, minute=30),
        "kwargs": {"full": True},
    },
}

# --- OCPI ---
# Public base URL partners reach us at: versions, version details and credentials URLs are built from it.
OCPI_BASE_URL = env("OCPI_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")
# Largest page a Sender list returns (X-Limit); a request without `limit` gets this many.
OCPI_MAX_PAGE_LIMIT = env.int("OCPI_MAX_PAGE_LIMIT", default=100)
# Seconds a Sender list's X-Total-Count and offset anchors are reused for the same query when pages are fetched by
# offset (pages reached through our Link carry the count along and never count again; a page holding the end of the
# list knows its total exactly). One scan gives both: 31 ms at 100,000 locations, run by a background thread of the
# process once they expire, while requests get the last value for up to as long again (ocpi_core.pagination.kept).
# 0 = count every request.
OCPI_COUNT_CACHE_SECONDS = env.int("OCPI_COUNT_CACHE_SECONDS", default=5)
# Seconds the partner behind a token, partners' parties and our own parties are kept at most in each process
# (0 = off). On PostgreSQL every committed change to them reaches every process at once (LISTEN/NOTIFY, ocpi_core.hot).
OCPI_HOT_CACHE_SECONDS = env.float("OCPI_HOT_CACHE_SECONDS", default=5.0)
# Keep the partner behind a token too (PostgreSQL, only while the process listens for changes). Turn off behind a
# pooler in transaction mode, which does not deliver notifications.
OCPI_TOKEN_CACHE = env.bool("OCPI_TOKEN_CACHE", default=True)
# Days back from now an EVSE status change may be recorded in the dashboard's history: an older stamp (a charger's
# unset clock sends 0001-01-01) is recorded at the horizon, a future one at now (dashboard.rollup.status_change_add).
OCPI_STATUS_HISTORY_DAYS = env.int("OCPI_STATUS_HISTORY_DAYS", default=400)
# Serve the hottest OCPI requests (the CPO locations list and one location) without DRF, as prepared statements on
# PostgreSQL (ocpi_core.fastpath): same rules and answers; false sends them through DRF like every other request.
OCPI_FAST_PATH = env.bool("OCPI_FAST_PATH", default=True)
# Prepare the hot paths' statements on PostgreSQL (false behind a pooler in transaction mode that cannot keep them).
OCPI_DB_PREPARE = env.bool("OCPI_DB_PREPARE", default=True)
# Fernet key for the tokens we present to partners.
# Empty = derived from DJANGO_SECRET_KEY (development only; production requires it).
OCPI_TOKEN_ENCRYPTION_KEY = env("OCPI_TOKEN_ENCRYPTION_KEY", default="")
# May partner-supplied URLs point at private, loopback or link-local addresses? Off in production.
OCPI_ALLOW_PRIVATE_URLS = env.bool("OCPI_ALLOW_PRIVATE_URLS", default=False)
OCPI_MAX_BODY_SIZE = DATA_UPLOAD_MAX_MEMORY_SIZE
# Outbound calls to partners: connect and total timeouts in seconds.
OCPI_CLIENT_CONNECT_TIMEOUT = env.float("OCPI_CLIENT_CONNECT_TIMEOUT", default=5.0)
OCPI_CLIENT_TIMEOUT = env.float("OCPI_CLIENT_TIMEOUT", default=30.0)
# Real-time token authorization (the driver waits at the charger): total timeout of the call to the eMSP, seconds.
OCPI_AUTHORIZE_TIMEOUT = env.float("OCPI_AUTHORIZE_TIMEOUT", default=5.0)
# Modules a partner must offer (besides credentials) for a registration to be accepted (3003 otherwise).
OCPI_REQUIRED_PARTNER_MODULES = env.list("OCPI_REQUIRED_PARTNER_MODULES", default=[])
# Traffic log: on/off, how much of each body is kept, and for how many days.
OCPI_TRAFFIC_LOG_ENABLED = env.bool("OCPI_TRAFFIC_LOG_ENABLED", default=True)
OCPI_TRAFFIC_LOG_BODY_LIMIT = env.int("OCPI_TRAFFIC_LOG_BODY_LIMIT", default=4096)
OCPI_TRAFFIC_LOG_RETENTION_DAYS = env.int("OCPI_TRAFFIC_LOG_RETENTION_DAYS", default=30)
# Traffic log rows are written in batches by a background thread of each process, at the latest this many seconds
# after the request (0 = one INSERT inside each request). Unset: batched on PostgreSQL, inline on SQLite.
OCPI_TRAFFIC_LOG_FLUSH_SECONDS = env.float("OCPI_TRAFFIC_LOG_FLUSH_SECONDS", default=None)
# Tariff engine (tariffs.pricing): decimals kept in money outputs and the decimal rounding mode applied to them
# (a name of Python's decimal module, e.g. ROUND_HALF_UP, ROUND_HALF_EVEN); quantities and lines stay exact till then.
OCPI_PRICE_DECIMALS = env.int("OCPI_PRICE_DECIMALS", default=4)
OCPI_PRICE_ROUNDING = env.str("OCPI_PRICE_ROUNDING", default="ROUND_HALF_UP")
# CDR reconciliation (cdrs.reconciliation): largest difference, in currency units, between a partner CDR's totals
# and ours (recomputed from its tariff) still counted as a match. A decimal string: money is never a float.
OCPI_RECONCILE_TOLERANCE = env.str("OCPI_RECONCILE_TOLERANCE", default="0.01")

# Push (the outbox): retry backoff base and cap, how long a change is retried before it becomes a dead letter, how
# long a worker holds a delivery before another may take it over, and how overdue a row must be for the sweep.
OCPI_PUSH_RETRY_BASE_SECONDS = env.float("OCPI_PUSH_RETRY_BASE_SECONDS", default=15.0)
OCPI_PUSH_RETRY_MAX_SECONDS = env.float("OCPI_PUSH_RETRY_MAX_SECONDS", default=600.0)
OCPI_PUSH_RETRY_WINDOW_SECONDS = env.float("OCPI_PUSH_RETRY_WINDOW_SECONDS", default=6 * 3600.0)
OCPI_PUSH_LEASE_SECONDS = env.float("OCPI_PUSH_LEASE_SECONDS", default=60.0)
OCPI_PUSH_SWEEP_GRACE_SECONDS = env.float("OCPI_PUSH_SWEEP_GRACE_SECONDS", default=30.0)
# Push: seconds after which a delivery held back (its addressee OFFLINE/SUSPENDED per HubClientInfo) is checked again.
OCPI_PUSH_HOLD_RECHECK_SECONDS = env.float("OCPI_PUSH_HOLD_RECHECK_SECONDS", default=900.0)
# Push batches (issue #3): one task per partner claims up to BATCH_SIZE due deliveries at a time and sends them in
# order over the kept-alive client; after BATCH_SECONDS it re-enqueues itself (other partners get their turn).
OCPI_PUSH_BATCH_SIZE = env.int("OCPI_PUSH_BATCH_SIZE", default=50)
OCPI_PUSH_BATCH_SECONDS = env.float("OCPI_PUSH_BATCH_SECONDS", default=20.0)
# ChargingProfiles (REFERENCE §12): seconds a sender is told to wait for the async result (ChargingProfileResponse
# timeout), and the least time between two requests for the same session (quicker ones are answered TOO_OFTEN).
OCPI_CHARGINGPROFILES_TIMEOUT = env.int("OCPI_CHARGINGPROFILES_TIMEOUT", default=30)
# 0: no throttling. A CPO whose charge points refuse profiles sent too often sets the least interval per session; any
# GET, PUT or DELETE for the session within it after an accepted one gets TOO_OFTEN.
OCPI_CHARGINGPROFILES_MIN_INTERVAL_SECONDS = env.float("OCPI_CHARGINGPROFILES_MIN_INTERVAL_SECONDS", default=0.0)
OCPI_PUSH_ORDER_DELAY_SECONDS = 0.5  # wait for an older change of the same object (or its parent) to go first
# Sessions (REFERENCE §7): currency of an own session whose connector has no tariff (ISO 4217).
OCPI_DEFAULT_CURRENCY = env("OCPI_DEFAULT_CURRENCY", default="EUR")
# Partner self-test (selftest app): page size and pages walked per Sender list, and the largest response body read.
OCPI_SELFTEST_PAGE_LIMIT = env.int("OCPI_SELFTEST_PAGE_LIMIT", default=2)
OCPI_SELFTEST_MAX_PAGES = env.int("OCPI_SELFTEST_MAX_PAGES", default=5)
OCPI_SELFTEST_MAX_RESPONSE_BYTES = env.int("OCPI_SELFTEST_MAX_RESPONSE_BYTES", default=1024 * 1024)

# Commands (REFERENCE §11): seconds an eMSP is told to wait for a CommandResult (CommandResponse.timeout); the
# watchdog answers TIMEOUT after it.
OCPI_COMMAND_TIMEOUT = env.int("OCPI_COMMAND_TIMEOUT", default=30)
# Charge point gateway used where no per-location setting exists: "simulator" or "webhook".
GATEWAY_DEFAULT_BACKEND = env("GATEWAY_DEFAULT_BACKEND", default="simulator")
# Webhook backend: where commands are POSTed, and the HMAC-SHA256 key of their X-Signature header.
GATEWAY_WEBHOOK_URL = env("GATEWAY_WEBHOOK_URL", default="")
GATEWAY_WEBHOOK_SECRET = env("GATEWAY_WEBHOOK_SECRET", default="")
# Simulator: seconds between two charging periods of a simulated session.
GATEWAY_SIMULATOR_TICK_SECONDS = env.int("GATEWAY_SIMULATOR_TICK_SECONDS", default=60)
# --- Metrics (ocpi_core/metrics.py): GET /metrics answers 404 unless a token is set, then 401 without it ---
OCPI_METRICS_TOKEN = env("OCPI_METRICS_TOKEN", default="")
# prometheus_client's multiprocess mode: a folder all web and worker processes write to (empty = one process only).
PROMETHEUS_MULTIPROC_DIR = env("PROMETHEUS_MULTIPROC_DIR", default="")

CELERY_BEAT_SCHEDULE["commands-watchdog"] = {"task": "commands.tasks.command_watchdog_task", "schedule": 15.0}
CELERY_BEAT_SCHEDULE["simulator-tick"] = {
    "task": "gateway.tasks.simulator_tick_task",
    "schedule": float(GATEWAY_SIMULATOR_TICK_SECONDS),
}

# --- Logging: JSON lines on stderr carrying request and correlation ids (stdout stays for command output) ---
LOG_LEVEL = env("DJANGO_LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_ids": {"()": "ocpi_core.logging.RequestIdFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["request_ids"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.server": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}
