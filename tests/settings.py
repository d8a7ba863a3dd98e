"""Settings for the test process: the real settings with test-only environment defaults."""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-not-a-secret")
os.environ.setdefault("DJANGO_DEBUG", "false")
# The test process itself uses the in-memory layer; cross-process tests hand REDIS_URL to
# the daphne processes they start.
os.environ.pop("REDIS_URL", None)

from chatproject.settings import *  # noqa: E402, F403

# One test database per test process, so that concurrent runs (a developer's and CI's, or
# two checkouts) never share or drop each other's.
if DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":  # noqa: F405
    _name = DATABASES["default"]["NAME"]  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": f"test_{_name}_{os.getpid()}"}  # noqa: F405

# The test process's tests run inside Django's test transactions, which another connection
# cannot see: its writer stores through Django. The daphne processes of live tests store from
# the loop (chat.pg_store) on PostgreSQL, and tests/test_pg_store.py tests it directly.
CHAT_ASYNC_WRITER = False

# Tests sign in often: a fast hasher (never in production).
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# The test process renders pages with the plain names from static/ (no `collectstatic`
# needed for unit tests); the daphne processes of live tests run the production storage on
# a STATIC_ROOT collected once per session (tests/conftest.py, `collected_static`).
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
SERVESTATIC_USE_FINDERS = True
