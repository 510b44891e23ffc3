"""factpair settings: one file, configured by environment variables.

Development defaults need no server: SQLite and a filesystem Celery broker, both under var/.
"""

from __future__ import annotations

import os
import tomllib
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.getenv("FACTPAIR_VAR_DIR", BASE_DIR / "var"))
# Recorded with every score factpair computes itself, and in the methods paragraph.
FACTPAIR_VERSION = tomllib.loads((BASE_DIR / "pyproject.toml").read_text())["project"]["version"]


def envbool(name: str, default: str) -> bool:
    value = os.getenv(name, default).strip().lower()
    if value not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
        raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {value!r}")
    return value in ("1", "true", "yes", "on")


def envint(name: str, default: int) -> int:
    try:
        return int(os.getenv(name, str(default)))
    except ValueError as e:
        raise ImproperlyConfigured(f"{name} must be an integer") from e


def envlist(name: str, default: str) -> list[str]:
    return [item.strip() for item in os.getenv(name, default).split(",") if item.strip()]


# Off unless asked for: `make run`, scripts/run-dev.sh and the test run (tests/devmode.py) set
# DEBUG=true; anything else is production, with a SECRET_KEY required.
DEBUG = envbool("DEBUG", "false")
SECRET_KEY = os.getenv("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production-0123456789abcdef"

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", "127.0.0.1,localhost" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", "")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "axes",
    "evaluation",
    "scoring",
    "research",
    "crowd",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "annotation_site.middleware.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "annotation_site.middleware.DatabaseUnavailableMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into its lockout response.
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# Login rate limiting: 5 failures for one username from one address locks it for 15 minutes.
AXES_FAILURE_LIMIT = envint("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=envint("AXES_COOLOFF_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_RESET_ON_SUCCESS = True
# Behind N reverse proxies that each append to X-Forwarded-For, the client is the N-th address
# from its right (annotation_site/client_ip.py); 0 (no proxy) reads REMOTE_ADDR only, so that
# nobody escapes the rate limit with a forged header. (django-axes' AXES_IPWARE_* settings need
# django-ipware, which factpair does not install; AXES_CLIENT_IP_CALLABLE is axes' own hook.)
TRUSTED_PROXY_COUNT = envint("TRUSTED_PROXY_COUNT", 0)
AXES_CLIENT_IP_CALLABLE = "annotation_site.client_ip.client_ip"

ROOT_URLCONF = "annotation_site.urls"
WSGI_APPLICATION = "annotation_site.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            # Built in like Django 6's {% partialdef %}, which came from this package.
            "builtins": ["template_partials.templatetags.partials"],
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "crowd.context_processors.participation",
            ],
        },
    },
]

DATABASE_URL = os.getenv("DATABASE_URL", f"sqlite:///{VAR_DIR / 'factpair.sqlite3'}")
# Health checks: after a database restart a thread's kept connection is tested and replaced
# instead of failing its next request.
DATABASES = {
    "default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not memory, for the test database too: the Celery worker started by the
    # tests is another process and must see what the tests wrote.
    # One file per test run, so that two runs side by side do not share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-factpair-{os.getpid()}.sqlite3")}
    # Wait for a writer instead of failing at once with "database is locked".
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
    DATABASES["default"]["CONN_MAX_AGE"] = 0
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.getenv("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(os.getenv("STATIC_ROOT", VAR_DIR / "static"))
# WhiteNoise serves the static files from gunicorn too; finders make collectstatic optional.
WHITENOISE_USE_FINDERS = True

# Security: strict in production, relaxed only for local development over plain HTTP.
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", "false" if DEBUG else "true")
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = not DEBUG
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
X_FRAME_OPTIONS = "DENY"

# Celery. The default broker is kombu's filesystem transport under var/, so a real
# worker process runs with no broker server; set CELERY_BROKER_URL for Redis or RabbitMQ.
BROKER_DIR = VAR_DIR / "broker"
CELERY_BROKER_URL = os.getenv("CELERY_BROKER_URL", "filesystem://localhost/")
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
# The folders are made by the processes that use them (annotation_site/localdirs.py).
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
        "polling_interval": 0.1,
    }
else:
    # Redis hands an unacknowledged task (its worker died) to another worker after this long.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": envint("CELERY_VISIBILITY_TIMEOUT", 3600)
    }
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
# Each metric family's tasks go to its queue (scoring/metrics.py), e.g. QUALS to "quals".
CELERY_TASK_ROUTES = ("scoring.metrics.route_task",)
CELERY_TASK_SOFT_TIME_LIMIT = envint("CELERY_TASK_SOFT_TIME_LIMIT", 600)
CELERY_TASK_TIME_LIMIT = envint("CELERY_TASK_TIME_LIMIT", 660)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_BEAT_SCHEDULE = {
    "resume-stalled-scoring": {"task": "scoring.tasks.resume_stalled_jobs", "schedule": 300.0},
}
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")

# QUALS: a local checkpoint directory of a question-and-answer generation model. Unset means
# QUALS is not configured, and it shows as such; nothing is downloaded.
QUALS_MODEL = os.getenv("QUALS_MODEL", "")
QUALS_SEPARATOR = os.getenv("QUALS_SEPARATOR", "<sep>")
QUALS_INPUT_PREFIX = os.getenv("QUALS_INPUT_PREFIX", "")
QUALS_MAX_SOURCE_TOKENS = envint("QUALS_MAX_SOURCE_TOKENS", 1024)
QUALS_DEVICE = os.getenv("QUALS_DEVICE", "cpu")
# "reference" (the published algorithm, the default) or "clean" (teacher-forced lp_S); every
# stored score records it (scoring/quals.py, the metric version).
QUALS_MODE = os.getenv("QUALS_MODE", "reference")
QUALS_DTYPE = os.getenv("QUALS_DTYPE", "float32")

# Import limits: the whole file is validated before anything is written.
IMPORT_MAX_BYTES = envint("IMPORT_MAX_BYTES", 50 * 1024 * 1024)
IMPORT_MAX_DOCUMENTS = envint("IMPORT_MAX_DOCUMENTS", 20000)
IMPORT_MAX_FIELD_CHARS = envint("IMPORT_MAX_FIELD_CHARS", 100_000)

# Crowd studies' pay calculator: the hourly floor and recommendation participants are paid
# against (Prolific's researcher guidance: about 6 and 9 pounds an hour), in CROWD_PAY_CURRENCY.
CROWD_PAY_CURRENCY = os.getenv("CROWD_PAY_CURRENCY", "GBP")
CROWD_PAY_FLOOR_PER_HOUR = float(os.getenv("CROWD_PAY_FLOOR_PER_HOUR", "6.00"))
CROWD_PAY_RECOMMENDED_PER_HOUR = float(os.getenv("CROWD_PAY_RECOMMENDED_PER_HOUR", "9.00"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.getenv("LOG_LEVEL", "INFO")},
}
