"""The tests' own helpers (tests/support) where a mistake would hide itself."""

from __future__ import annotations

import pytest

from tests.support.environment import REDIS_PREFIX, delete_prefixed_keys


@pytest.mark.redis
def test_delete_prefixed_keys_removes_every_key_of_the_prefix_and_no_other(redis_url):
    import redis

    client = redis.Redis.from_url(redis_url)
    prefix = f"{REDIS_PREFIX}:cleanup"
    neighbour = f"{REDIS_PREFIX}-neighbour:kept"
    try:
        for n in range(1200):  # more than one SCAN batch
            client.set(f"{prefix}:k{n}", n)
        client.set(neighbour, 1)
        assert delete_prefixed_keys(client, prefix) == 1200
        assert list(client.scan_iter(f"{prefix}:*")) == []
        assert client.exists(neighbour)
    finally:
        client.delete(neighbour)
        client.close()
