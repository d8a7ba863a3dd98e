"""Settings for the lobby chat, all read from the environment.

Every value has a safe default; see `.env.example` and the README's configuration table.
"""

import logging
import os
from pathlib import Path

import dj_database_url
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured

from chatproject.env import env_bool, env_int, env_list, env_str

# Lets type hints such as `admin.ModelAdmin[Message]` be subscripted at run time.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DJANGO_DEBUG", default=False)

# One obvious development placeholder; never used with debug off.
_DEV_SECRET_KEY = "django-insecure-development-only-do-not-deploy"  # noqa: S105
SECRET_KEY = env_str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off "
            "(set DJANGO_DEBUG=true for local development)."
        )
    SECRET_KEY = _DEV_SECRET_KEY

# Never '*': the WebSocket origin check is built from this list.
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    # daphne first: it makes runserver speak ASGI and WebSockets.
    "daphne",
    # django.contrib.admin with a rate-limited login (chat.admin_site).
    "chat.admin_apps.ChatAdminConfig",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "servestatic.runserver_nostatic",
    "django.contrib.staticfiles",
    "channels",
    "chat",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "servestatic.middleware.ServeStaticMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "chatproject.urls"
# Where the Django admin lives (e.g. a less guessable path); always ends with one "/".
ADMIN_URL = env_str("DJANGO_ADMIN_URL", default="admin/").strip().strip("/") + "/"
if ADMIN_URL == "/":
    raise ImproperlyConfigured("DJANGO_ADMIN_URL must not be empty (the chat page is at /).")
# Moderators sign in at /accounts/login/ (Django's auth views) and come back to the chat.
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "chat:index"
LOGOUT_REDIRECT_URL = "chat:index"
ASGI_APPLICATION = "chatproject.asgi.application"

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
                "django.template.context_processors.i18n",
                "django.template.context_processors.csp",
            ],
        },
    },
]

# --- Database ----------------------------------------------------------------------------
DATABASES = {
    "default": dj_database_url.config(
        env="DATABASE_URL",
        default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}",
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", default=0),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several daphne processes may write at once: WAL lets readers run beside the writer,
    # IMMEDIATE takes the write lock up front (no deadlock on upgrade), and the timeout
    # makes a writer wait for the lock instead of failing at once.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": env_int("SQLITE_TIMEOUT", default=10),
    }
    # Live-server tests run daphne in a child process: the test database must be a file.
    # (one file per test process, so that concurrent test runs do not share it).
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / f"test_db_{os.getpid()}.sqlite3")}
elif (
    DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
    and env_bool("DATABASE_POOL", default=True)
    # Django's pool and persistent connections exclude each other: CONN_MAX_AGE wins.
    and not DATABASES["default"]["CONN_MAX_AGE"]
):
    # Django's connection pool (psycopg_pool) instead of a new connection per message: the
    # way Django advises to reuse connections under ASGI (docs/performance.md has the gain).
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {"min_size": 1, "max_size": 4}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Channel layer -------------------------------------------------------------------------
# chat.layers: one publish per message, worker-local groups, survives Redis restarts; the
# README says why not channels-redis's layers (benchmarks/settings_layers.py runs those).
REDIS_URL = env_str("REDIS_URL", default="")
# Prefix of every Redis key and channel the chat uses, so that several deployments (or test
# runs) can share one Redis.
CHAT_REDIS_PREFIX = env_str("CHAT_REDIS_PREFIX", default="chat")

if REDIS_URL:
    _redis_host = {
        "address": REDIS_URL,
        # redis-py 8 defaults to a 5 s socket timeout, equal to a 5 s blocking read: idle
        # connections would be torn down about every 5 s (channels_redis #422).
        "socket_timeout": env_int("REDIS_SOCKET_TIMEOUT", default=10),
        "socket_connect_timeout": env_int("REDIS_CONNECT_TIMEOUT", default=2),
        "health_check_interval": 15,
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "chat.layers.RedisBroadcastChannelLayer",
            "CONFIG": {
                "hosts": [_redis_host],
                "prefix": f"{CHAT_REDIS_PREFIX}:layer",
                # Messages waiting for one socket; past this they are dropped (logged) and
                # the page repairs the gap from history.
                "capacity": env_int("CHAT_LAYER_CAPACITY", default=1000),
            },
        }
    }
else:
    # chatproject/asgi.py says so when it builds the application: once per serving process
    # (settings are imported by every manage.py command and by runserver's reloader too).
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# --- Cache ---------------------------------------------------------------------------------
# Holds the sign-in failure counts (chat.accounts): in Redis when there is one, so that every
# worker counts the same failures; otherwise in this process's memory.
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": f"{CHAT_REDIS_PREFIX}:cache",
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }

# --- Chat limits (0 switches a limit off) --------------------------------------------------
CHAT_MAX_BODY = env_int("CHAT_MAX_BODY", default=2000)
CHAT_MAX_FRAME = env_int("CHAT_MAX_FRAME", default=65536)
CHAT_RATE = env_int("CHAT_RATE", default=10)
CHAT_RATE_PERIOD = env_int("CHAT_RATE_PERIOD", default=10)
# Messages per CHAT_RATE_PERIOD from one client address, all its sockets on all workers
# together (counted in Redis; chat.address_limits): without it, 20 sockets send 20 times
# CHAT_RATE.
CHAT_RATE_PER_ADDRESS = env_int("CHAT_RATE_PER_ADDRESS", default=3 * CHAT_RATE)
# Requests to /api/messages per CHAT_API_PERIOD seconds from one client address; then 429.
CHAT_API_RATE = env_int("CHAT_API_RATE", default=60)
CHAT_API_PERIOD = env_int("CHAT_API_PERIOD", default=60)
CHAT_MAX_SOCKETS_PER_IP = env_int("CHAT_MAX_SOCKETS_PER_IP", default=20)
CHAT_HISTORY = env_int("CHAT_HISTORY", default=50)
CHAT_RESUME_CAP = env_int("CHAT_RESUME_CAP", default=500)
CHAT_PRESENCE_TTL = env_int("CHAT_PRESENCE_TTL", default=45)
# Most entries in an online list sent to pages (`count` is always everyone; 0: no cap).
CHAT_PRESENCE_LIST = env_int("CHAT_PRESENCE_LIST", default=200)
CHAT_TYPING_INTERVAL = env_int("CHAT_TYPING_INTERVAL", default=2)
# On PostgreSQL, each worker stores message batches on a psycopg async connection of its own
# from the event loop (chat.pg_store) instead of through Django on the database thread.
CHAT_ASYNC_WRITER = env_bool("CHAT_ASYNC_WRITER", default=True)
# Bytes daphne may hold unsent for one slow client before disconnecting it.
CHAT_MAX_BACKLOG = env_int("CHAT_MAX_BACKLOG", default=1048576)
# Under daphne, write frames to the socket at once when nothing is buffered (chat.daphne_server).
CHAT_FAST_WRITE = env_bool("CHAT_FAST_WRITE", default=True)
# Under daphne, a WebSocket upgrade goes from the first read straight to the WebSocket
# protocol instead of through a twisted.web request (chat.daphne_server.HandshakeSniffer).
CHAT_FAST_HANDSHAKE = env_bool("CHAT_FAST_HANDSHAKE", default=True)
# Seconds a stopping worker waits for its sockets' closing handshakes (SIGTERM).
CHAT_SHUTDOWN_GRACE = env_int("CHAT_SHUTDOWN_GRACE", default=3)
# Under daphne, the listen queue of each TCP or Unix endpoint (Twisted's default is 50): a
# connection that finds it full loses its SYN and retries a second later, so a worker
# restart that sends thousands of pages back at once needs room for them. The kernel caps
# it at net.core.somaxconn (4096 on Linux 5.4+). 0 leaves Twisted's default.
CHAT_LISTEN_BACKLOG = env_int("CHAT_LISTEN_BACKLOG", default=2048)
# Failed sign-ins allowed from one client address per CHAT_LOGIN_PERIOD seconds; past
# that, the login form answers 429 until the period ends.
CHAT_LOGIN_ATTEMPTS = env_int("CHAT_LOGIN_ATTEMPTS", default=10)
CHAT_LOGIN_PERIOD = env_int("CHAT_LOGIN_PERIOD", default=300)

# --- Metrics (chat.metrics, served per worker at /metrics) ---------------------------------
# Off: every counter is a no-op and /metrics answers 404 (to measure what counting costs).
CHAT_METRICS = env_bool("CHAT_METRICS", default=True)
# Client addresses (CIDRs) that may read /metrics; behind a proxy, daphne --proxy-headers
# makes this the forwarded address, as for every other per-address rule.
CHAT_METRICS_ALLOW = env_list("CHAT_METRICS_ALLOW", default=["127.0.0.0/8", "::1/128"])
# A request with `Authorization: Bearer <token>` may read /metrics from anywhere; empty: none.
CHAT_METRICS_TOKEN = env_str("CHAT_METRICS_TOKEN", default="")
# --- Retention (manage.py prune_messages; chat.retention) ----------------------------------
# Age after which messages are deleted, e.g. "30d", "12h" (units s m h d w); "" or "0" keeps
# every message. Checked by the command, which refuses a malformed value.
CHAT_RETENTION = env_str("CHAT_RETENTION", default="")
# Newest messages kept whatever their age (0: no such floor); alone, it keeps only these.
CHAT_RETENTION_KEEP = env_int("CHAT_RETENTION_KEEP", default=0)
# Rows deleted per transaction, so that a large prune never locks the table for long.
CHAT_PRUNE_BATCH = env_int("CHAT_PRUNE_BATCH", default=1000)

# --- Internationalisation ------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", "English"), ("pt-br", "Português (Brasil)")]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = "UTC"

# --- Static files --------------------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Empty: staticfiles/ beside manage.py.
STATIC_ROOT = Path(env_str("DJANGO_STATIC_ROOT", default="") or BASE_DIR / "staticfiles")
# Debug (`make run`): files straight from static/, under their own names, re-read on change.
# Otherwise `manage.py collectstatic` must have run (the Dockerfile does it at build): hashed
# names, gzip and brotli copies, cached for a year by browsers (chat.staticfiles).
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "chat.staticfiles.ChatStaticFilesStorage"
        )
    },
}
SERVESTATIC_USE_FINDERS = DEBUG
SERVESTATIC_AUTOREFRESH = DEBUG

# --- Security headers ----------------------------------------------------------------------
SECURE_CSP = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "connect-src": ["'self'"],
    "frame-ancestors": ["'none'"],
    "base-uri": ["'none'"],
    "form-action": ["'self'"],
}
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# Behind TLS (the README's deployment), turn these on.
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", default=False)
SESSION_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", default=False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_HSTS_PRELOAD", default=False)
if env_bool("DJANGO_BEHIND_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Logging -------------------------------------------------------------------------------
# DJANGO_LOG_FORMAT: "text" (default, for people) or "json" (one JSON object per line, for
# log collectors: python-json-logger). Values logged as `extra=` (session, client, code,
# worker...) become keys in JSON; the text lines carry the same values in the message.
LOG_FORMAT = env_str("DJANGO_LOG_FORMAT", default="text").strip().lower()
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured(f"DJANGO_LOG_FORMAT must be 'text' or 'json', not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            "json_ensure_ascii": False,
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "plain",
        }
    },
    "root": {"handlers": ["console"], "level": env_str("DJANGO_LOG_LEVEL", default="INFO")},
    # Django gives its "django" logger a console handler of its own (with DEBUG on) and lets
    # it propagate: every request of runserver (django.channels.server) was printed twice.
    # Here it only propagates to the root's handler.
    "loggers": {"django": {"handlers": [], "level": "INFO", "propagate": True}},
}
# What a log record gathers that neither format prints, left out as Python's logging HOWTO
# ("Optimization") says: the caller's file, function and line (`_srcfile`, the switch the
# HOWTO names), the thread, the process's name and the asyncio task; the process id only
# where the JSON format prints it (a system call per record). Every socket's connect and
# disconnect lines paid for all of them: about a third of a line's cost. A format that
# prints one of these fields shows it empty.
logging.logThreads = False
logging.logMultiprocessing = False
logging.logAsyncioTasks = False  # type: ignore[attr-defined]  # (3.12; not in the stubs)
logging.logProcesses = LOG_FORMAT == "json"
logging._srcfile = None  # noqa: SLF001 (the HOWTO's own switch)
