"""Limits per client address (chat.address_limits): in Redis, in memory, and during an
outage."""

from __future__ import annotations

import logging

import pytest
from redis import asyncio as aioredis

from chat.address_limits import AddressLimit, get_limit
from chat.limits import WindowCounter
from tests.support.clock import FakeClock
from tests.support.environment import REDIS_PREFIX
from tests.support.servers import free_port


def limit(
    redis: aioredis.Redis | None, clock: FakeClock, *, rate: int = 3, period: float = 10.0
) -> AddressLimit:
    return AddressLimit(
        name="test", rate=rate, period=period, redis=redis, prefix=REDIS_PREFIX, clock=clock
    )


@pytest.fixture
async def redis(redis_url):
    client = aioredis.Redis.from_url(redis_url)
    yield client
    async for key in client.scan_iter(f"{REDIS_PREFIX}:rate:*"):
        await client.delete(key)
    await client.aclose()


async def test_without_redis_counts_in_memory():
    address_limit = limit(None, FakeClock(1000.0), rate=2)
    results = [await address_limit.check("10.0.0.1") for _ in range(3)]
    assert results[:2] == [None, None]
    assert results[2] is not None and results[2] > 0


async def test_rate_zero_is_no_limit():
    address_limit = limit(None, FakeClock(1000.0), rate=0)
    assert [await address_limit.check("10.0.0.1") for _ in range(50)] == [None] * 50


@pytest.mark.redis
async def test_in_redis_two_workers_share_one_count(redis):
    clock = FakeClock(1000.0)
    worker_a, worker_b = limit(redis, clock, rate=4), limit(redis, clock, rate=4)
    results = [await w.check("10.0.0.2") for w in (worker_a, worker_b) * 3]
    assert sum(r is None for r in results) == 4
    assert results[4:] != [None, None]


@pytest.mark.redis
async def test_in_redis_addresses_are_independent(redis):
    clock = FakeClock(1000.0)
    address_limit = limit(redis, clock, rate=1)
    assert await address_limit.check("10.0.0.3") is None
    assert await address_limit.check("10.0.0.4") is None
    assert await address_limit.check("10.0.0.3") is not None


@pytest.mark.redis
@pytest.mark.parametrize("start", [1000.0, 1007.3, 1009.99])
async def test_redis_script_decides_as_the_plain_rule(redis, start):
    """The Lua script and chat.limits agree, event for event and on the wait, across a
    window boundary."""
    clock = FakeClock(start)
    in_redis = limit(redis, clock, rate=5, period=10.0)
    in_memory = WindowCounter(rate=5, period=10.0, clock=clock)
    for _ in range(12):
        assert await in_redis.check("10.0.0.5") == in_memory.check("10.0.0.5")
        clock.advance(0.7)


@pytest.mark.redis
async def test_redis_keys_expire(redis):
    await limit(redis, FakeClock(1000.0), period=10.0).check("10.0.0.6")
    keys = [key async for key in redis.scan_iter(f"{REDIS_PREFIX}:rate:test:10.0.0.6:*")]
    assert len(keys) == 1
    assert 0 < await redis.pttl(keys[0]) <= 20_000


async def test_redis_down_falls_back_to_memory_and_logs_once(caplog):
    dead = aioredis.Redis(port=free_port(), socket_connect_timeout=0.5)
    address_limit = limit(dead, FakeClock(1000.0), rate=2)
    with caplog.at_level(logging.WARNING, logger="chat.address_limits"):
        results = [await address_limit.check("10.0.0.7") for _ in range(3)]
    assert results[:2] == [None, None]
    assert results[2] is not None
    assert len([r for r in caplog.records if "Redis unavailable" in r.message]) == 1
    await dead.aclose()


async def test_get_limit_follows_the_settings(settings):
    settings.REDIS_URL = ""
    first = get_limit("messages", rate=3, period=10)
    assert get_limit("messages", rate=3, period=10) is first
    changed = get_limit("messages", rate=4, period=10)
    assert changed is not first and changed.rate == 4
