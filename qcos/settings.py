"""QCOS settings, read from the environment with django-environ.

Two shapes of deployment share this file:

* the embedded default (no ``DATABASE_URL``, no ``CELERY_BROKER_URL``): SQLite under ``var/``,
  Celery tasks executed in-process, the local qiskit-aer simulator;
* production: ``DATABASE_URL`` on PostgreSQL and ``CELERY_BROKER_URL`` on Redis, with jobs
  executed by ``celery -A qcos worker`` processes.

Every secret can also be given as a file: ``SECRET_KEY_FILE=/run/secrets/key`` (Docker/K8s style).
"""

from __future__ import annotations

import os
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("QCOS_VAR_DIR", BASE_DIR / "var"))

env = environ.Env()
if (BASE_DIR / ".env").exists():
    environ.Env.read_env(BASE_DIR / ".env")


def _secret(name: str, default: str | None = None) -> str | None:
    """A secret from ``NAME`` or from the file named by ``NAME_FILE``."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text().strip()
    return env.str(name, default=default)


DEBUG = env.bool("DEBUG", default=False)
# The embedded default gets a stable development key; production must set its own, and the
# system check qcos.E001 refuses the development key when DEBUG is off.
DEV_SECRET_KEY = "qcos-insecure-development-key-do-not-use-in-production"
SECRET_KEY = _secret("SECRET_KEY", DEV_SECRET_KEY)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "qcos.apps.QcosConfig",
    "qcos.tenancy",
    "qcos.jobs",
    "ledger",
    "finops",
    "bench.apps.BenchConfig",
]

MIDDLEWARE = [
    # Outermost: request limits before anything reads the request, and the one JSON error shape
    # for every error answer (docs/errors.md).
    "qcos.api.middleware.RequestBoundaryMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "qcos.urls"
# The largest request body accepted (413 PAYLOAD_TOO_LARGE past it, before it is read): a
# circuit is at most 256 KiB, an evidence bundle posted for verification a few MiB.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("QCOS_MAX_BODY_BYTES", default=8 * 1024 * 1024)
CSRF_FAILURE_VIEW = "qcos.api.errors.csrf_failure_view"
WSGI_APPLICATION = "qcos.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'qcos.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Jobs are written by the request thread and the lease heartbeat thread: wait, don't fail.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Django's backend, with a health check that needs no round trip (qcos/db/postgresql).
        DATABASES["default"]["ENGINE"] = "qcos.db.postgresql"
    if env.bool("QCOS_DB_PREPARED_STATEMENTS", default=True):
        # psycopg 3 binds parameters on the server and prepares a statement the second time a
        # connection runs it: PostgreSQL then stops planning the job path's statements on every
        # request (planning the claim or the API-key join took longer than running them; see
        # perf/pipeline.py). Turn off behind a transaction-pooling PgBouncer older than 1.21.
        DATABASES["default"].setdefault("OPTIONS", {}).update(server_side_binding=True, prepare_threshold=2)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# Budget warnings are e-mailed (finops): smtp://user:pw@host:587 (or submission://, +tls) in
# production; the default prints them to the worker's console.
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="qcos@localhost")

# The chargeback report index INCLUDEs non-key columns for index-only scans on PostgreSQL; SQLite
# (the embedded default) builds it as a plain index, which is all it needs.
SILENCED_SYSTEM_CHECKS = ["models.W040"]

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
STATIC_ROOT = env.path("STATIC_ROOT", default=str(VAR_DIR / "static"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"qiskit": {"level": "WARNING"}, "stevedore": {"level": "WARNING"}},
}

# --- Security (production values when DEBUG is off; `check --deploy` is clean with them) ----------
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# Health checks and the local test server speak plain HTTP behind the proxy.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

# --- REST API ------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["qcos.api.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["qcos.api.parsers.BoundedJSONParser"],  # depth and size bounded
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "qcos.api.pagination.JobPagination",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "qcos.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
    # `?format=` is ours (e.g. evidence as a zip), not DRF's renderer override.
    "URL_FORMAT_OVERRIDE": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "QCOS API",
    "DESCRIPTION": "Governance layer for quantum computing jobs: costed, budgeted, approved, audited.",
    "VERSION": "2.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "COMPONENT_SPLIT_REQUEST": True,
    # Every error answer in the one error shape, and the answers every operation shares.
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums",
                             "qcos.api.schema.add_common_responses"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Celery (REFERENCE.md §4: at-least-once, nothing lost) ----------------------------------------
_broker = env.str("CELERY_BROKER_URL", default="")
# No broker configured → the embedded default: tasks run in-process, right after commit (Celery
# still takes a producer from its pool in eager mode, hence the in-memory transport; it names a host
# because kombu warns "No hostname was supplied" for a URL without one).
CELERY_BROKER_URL = _broker or "memory://localhost/"
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not _broker)
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True  # results live in the database, not the broker
CELERY_TASK_SOFT_TIME_LIMIT = env.int("QCOS_TASK_SOFT_TIME_LIMIT", default=1800)
CELERY_TASK_TIME_LIMIT = env.int("QCOS_TASK_TIME_LIMIT", default=1860)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Above the hard time limit, so a running job is never redelivered while it still runs.
    "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=2 * 1860),
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
    # Publishing gives up after one quick retry (a submit must not hang on a dead broker; the
    # reconciler re-enqueues). The worker's own reconnect loop is governed separately.
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
# Submissions must not hang when the broker is down: fail fast, the reconciler re-enqueues.
CELERY_TASK_PUBLISH_RETRY = False
CELERY_TASK_DEFAULT_QUEUE = "qcos"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Celery's Django fixup closes the database connection around every task unless told to reuse
# it: a new PostgreSQL connection per job cost more than the job (perf/pipeline.py).
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
CELERY_WORKER_SEND_TASK_EVENTS = False
CELERY_BEAT_SCHEDULE = {
    "reconcile-jobs": {
        "task": "workers.tasks.reconcile_jobs",
        "schedule": env.float("QCOS_RECONCILE_INTERVAL", default=30.0),
        "options": {"queue": "maintenance", "expires": 60},
    },
    "sequence-registry": {
        "task": "workers.tasks.sequence_registry",
        "schedule": env.float("QCOS_REGISTRY_SEQUENCE_INTERVAL", default=10.0),
        "options": {"queue": "maintenance", "expires": 30},
    },
    "sequence-audit": {
        "task": "workers.tasks.sequence_audit",
        "schedule": env.float("QCOS_AUDIT_SEQUENCE_INTERVAL", default=5.0),
        "options": {"queue": "maintenance", "expires": 30},
    },
    "reconcile-reports": {
        "task": "workers.tasks.reconcile_reports",
        "schedule": env.float("QCOS_REPORT_RECONCILE_INTERVAL", default=60.0),
        "options": {"queue": "maintenance", "expires": 120},
    },
    "reconcile-benchmarks": {
        "task": "workers.tasks.reconcile_benchmarks",
        "schedule": env.float("QCOS_BENCH_RECONCILE_INTERVAL", default=60.0),
        "options": {"queue": "maintenance", "expires": 120},
    },
}

# --- QCOS -----------------------------------------------------------------------------------------
QCOS = {
    # A RUNNING job whose lease is not renewed for this long is taken to be lost and re-queued.
    "JOB_LEASE_SECONDS": env.float("QCOS_JOB_LEASE_SECONDS", default=60.0),
    # A QUEUED job not started after this long is enqueued again (the broker may have lost it).
    "REQUEUE_AFTER_SECONDS": env.float("QCOS_REQUEUE_AFTER_SECONDS", default=120.0),
    "JOB_MAX_ATTEMPTS": env.int("QCOS_JOB_MAX_ATTEMPTS", default=3),
    "MAX_SHOTS": 100_000,
    "MAX_CIRCUIT_BYTES": env.int("QCOS_MAX_CIRCUIT_BYTES", default=256 * 1024),
    "MAX_CIRCUIT_OPERATIONS": env.int("QCOS_MAX_CIRCUIT_OPERATIONS", default=50_000),
    # Without beat (the embedded mode), sequence the registry and the audit log right after each
    # job completes, so bundles get their inclusion proof and checkpoint there too.
    "SEQUENCE_INLINE": env.bool("QCOS_SEQUENCE_INLINE", default=CELERY_TASK_ALWAYS_EAGER),
    # Aer threads per simulation. Parallelism comes from worker processes; OpenMP fan-out on a
    # millisecond circuit only contends with them. Raise it for workers dedicated to large circuits.
    "AER_MAX_PARALLEL_THREADS": env.int("QCOS_AER_MAX_PARALLEL_THREADS", default=1),
    # Per-job limits of a simulation, enforced on its sandbox process (docs/workers.md): past one,
    # the job fails once with TIME_LIMIT_EXCEEDED or MEMORY_LIMIT_EXCEEDED and its charge is released.
    "JOB_WALL_SECONDS": env.float("QCOS_JOB_WALL_SECONDS", default=600.0),
    "JOB_CPU_SECONDS": env.int("QCOS_JOB_CPU_SECONDS", default=600 * env.int("QCOS_AER_MAX_PARALLEL_THREADS",
                                                                                default=1)),
    "JOB_MEMORY_MB": env.int("QCOS_JOB_MEMORY_MB", default=6144),
    # How long a worker retries recording a job's outcome while the database is away before it
    # hands the job back to the reconciler.
    "JOB_RECORD_RETRY_SECONDS": env.float("QCOS_JOB_RECORD_RETRY_SECONDS", default=30.0),
    # Private signing keys (files); see ledger/keys.py for the environment and KMS alternatives.
    "KEY_DIR": env.str("QCOS_KEY_DIR", default=str(VAR_DIR / "keys")),
    "GENERATE_KEYS": env.bool("QCOS_GENERATE_KEYS", default=True),
    "REGISTRY_ORIGIN": env.str("QCOS_REGISTRY_ORIGIN", default="qcos.local/registry"),
    "AUDIT_ORIGIN": env.str("QCOS_AUDIT_ORIGIN", default="qcos.local/audit"),
    # A signed audit checkpoint at most this often (each costs one signature to verify later).
    "AUDIT_CHECKPOINT_SECONDS": env.float("QCOS_AUDIT_CHECKPOINT_SECONDS", default=300.0),
    # Where signed audit checkpoints are published, one file each, outside the database they
    # protect (docs/audit.md); and the ledger public keys audit verification trusts besides the
    # configured key (empty: <KEY_DIR>/trusted).
    "AUDIT_CHECKPOINT_DIR": env.str("QCOS_AUDIT_CHECKPOINT_DIR", default=str(VAR_DIR / "audit-checkpoints")),
    "LEDGER_TRUSTED_KEYS_DIR": env.str("QCOS_LEDGER_TRUSTED_KEYS_DIR", default=""),
    # Key `last_used_at` is written at most this often, so authentication is not a write per request.
    "API_KEY_TOUCH_SECONDS": env.float("QCOS_API_KEY_TOUCH_SECONDS", default=60.0),
}


def _check_job_limits() -> None:
    """Refuse to start with per-job limits that cannot work: the task time limits are the last line
    behind them, so the job's wall clock, its sandbox's start and the recording retries must fit."""
    from django.core.exceptions import ImproperlyConfigured

    wall, cpu, memory = QCOS["JOB_WALL_SECONDS"], QCOS["JOB_CPU_SECONDS"], QCOS["JOB_MEMORY_MB"]
    if not (wall > 0 and cpu >= 1 and memory >= 64 and QCOS["JOB_RECORD_RETRY_SECONDS"] >= 0):
        raise ImproperlyConfigured("QCOS_JOB_WALL_SECONDS must be > 0, QCOS_JOB_CPU_SECONDS >= 1, "
                                   "QCOS_JOB_MEMORY_MB >= 64 and QCOS_JOB_RECORD_RETRY_SECONDS >= 0")
    needed = wall + QCOS["JOB_RECORD_RETRY_SECONDS"] + 60
    if CELERY_TASK_SOFT_TIME_LIMIT < needed or CELERY_TASK_TIME_LIMIT <= CELERY_TASK_SOFT_TIME_LIMIT:
        raise ImproperlyConfigured(
            f"QCOS_TASK_SOFT_TIME_LIMIT ({CELERY_TASK_SOFT_TIME_LIMIT} s) must be at least QCOS_JOB_WALL_SECONDS + "
            f"QCOS_JOB_RECORD_RETRY_SECONDS + 60 s ({needed:g} s), and QCOS_TASK_TIME_LIMIT above it")


_check_job_limits()
