"""Settings for the test process: the real settings with test-only environment defaults."""

import os

os.environ.setdefault("DJANGO_SECRET_KEY", "test-only-not-a-secret")
os.environ.setdefault("DJANGO_DEBUG", "false")
# The test process itself uses the in-memory layer; cross-process tests hand REDIS_URL to
# the daphne processes they start.
os.environ.pop("REDIS_URL", None)

from chatproject.settings import *  # noqa: E402, F403
