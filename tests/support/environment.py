"""What a test run shares with the machine: Redis key prefix, required services."""

from __future__ import annotations

import os
from typing import Any, NoReturn

import pytest

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

# Every Redis key and channel of this test process starts with this, so that test runs
# sharing one Redis do not hear each other; the session deletes them at its end.
REDIS_PREFIX = f"test{os.getpid()}"


def missing(reason: str) -> NoReturn:
    """Locally a missing service skips with a reason; in CI it is a failure."""
    if IN_CI:
        pytest.fail(f"{reason} (required in CI)")
    pytest.skip(reason)


def delete_prefixed_keys(client, prefix: str = REDIS_PREFIX) -> int:
    """Delete every key under `prefix:` (SCAN, never KEYS: Redis stays responsive)."""
    deleted = 0
    batch: list[bytes] = []
    for key in client.scan_iter(f"{prefix}:*", count=500):
        batch.append(key)
        if len(batch) == 500:
            deleted += client.delete(*batch)
            batch.clear()
    if batch:
        deleted += client.delete(*batch)
    return deleted


def use_the_broadcast_layer(settings: Any, redis_url: str) -> None:
    """The chat's Redis broadcast layer for this test (fresh: its state is per event loop)."""
    from channels.layers import channel_layers

    settings.CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "chat.layers.RedisBroadcastChannelLayer",
            "CONFIG": {"hosts": [redis_url], "prefix": f"{REDIS_PREFIX}:layer"},
        }
    }
    channel_layers.backends = {}
