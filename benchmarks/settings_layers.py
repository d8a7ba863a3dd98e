"""Settings for benchmark runs of channels-redis's layers beside the product's own.

The product offers one Redis layer, `chat.layers` (the README says why). For comparison the
benchmark can still run daphne on channels-redis's `pubsub` or `core` layer: it starts those
processes with `DJANGO_SETTINGS_MODULE=benchmarks.settings_layers` and `BENCH_CHAT_LAYER`,
a variable only the benchmark sets. Neither layer keeps the product's promises after a Redis
restart (pubsub sockets went deaf here; core forgets group members), so never deploy these.
"""

import os
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from chatproject.settings import *  # noqa: F403
from chatproject.settings import CHANNEL_LAYERS, CHAT_REDIS_PREFIX

# "broadcast" (the product's layer), "pubsub" or "core".
BENCH_CHAT_LAYER = os.environ.get("BENCH_CHAT_LAYER", "broadcast")

_CONFIG: Any = CHANNEL_LAYERS["default"].get("CONFIG", {})
if BENCH_CHAT_LAYER != "broadcast" and "hosts" not in _CONFIG:
    raise ImproperlyConfigured("BENCH_CHAT_LAYER needs REDIS_URL")
if BENCH_CHAT_LAYER == "core":
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": _CONFIG["hosts"],
                "prefix": f"{CHAT_REDIS_PREFIX}:asgi",
                # Messages waiting for one socket; past this, group_send drops them.
                "capacity": _CONFIG["capacity"],
                # Members are forgotten after this (a day: longer than any benchmark run).
                "group_expiry": 86400,
            },
        }
    }
elif BENCH_CHAT_LAYER == "pubsub":
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": _CONFIG["hosts"], "prefix": f"{CHAT_REDIS_PREFIX}:asgi"},
        }
    }
elif BENCH_CHAT_LAYER != "broadcast":
    raise ImproperlyConfigured(
        f"BENCH_CHAT_LAYER must be 'broadcast', 'pubsub' or 'core', not {BENCH_CHAT_LAYER!r}"
    )
