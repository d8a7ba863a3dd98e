"""chat.presence: the online list, with a real Redis and without."""

from __future__ import annotations

import asyncio

import pytest
from channels.layers import channel_layers

from chat.presence import PresenceTracker, sort_online
from tests.conftest import REDIS_PREFIX


@pytest.fixture(autouse=True)
def isolated(settings):
    settings.CHAT_REDIS_PREFIX = REDIS_PREFIX
    channel_layers.backends = {}
    yield
    channel_layers.backends = {}


@pytest.fixture
async def trackers():
    """Make trackers; all are closed at the end."""
    made: list[PresenceTracker] = []

    def make(redis_url: str, ttl: int = 30) -> PresenceTracker:
        made.append(PresenceTracker(redis_url=redis_url, ttl=ttl))
        return made[-1]

    yield make
    for tracker in made:
        await tracker.aclose()


def test_sort_online_orders_by_nick_case_insensitively_then_session():
    online = sort_online({"s2": "bia", "s1": "Ana", "s3": "ana"})
    assert online == [
        {"session": "s1", "nick": "Ana"},
        {"session": "s3", "nick": "ana"},
        {"session": "s2", "nick": "bia"},
    ]


async def test_local_tracker_lists_its_own_sessions(trackers):
    tracker = trackers("")
    await tracker.join("s1", "Ana")
    online = await tracker.join("s2", "Bia")
    assert [e["nick"] for e in online] == ["Ana", "Bia"]
    await tracker.leave("s1")
    assert await tracker.online() == [{"session": "s2", "nick": "Bia"}]


@pytest.mark.redis
async def test_two_workers_see_the_same_list(redis_url, trackers):
    one = trackers(redis_url, 30)
    two = trackers(redis_url, 30)
    await one.join("s1", "Ana")
    await two.join("s2", "Bia")
    assert await one.online() == await two.online()
    assert len(await one.online()) == 2


@pytest.mark.redis
async def test_rename_is_seen_by_the_other_worker(redis_url, trackers):
    one = trackers(redis_url, 30)
    two = trackers(redis_url, 30)
    await one.join("s1", "Ana")
    await one.rename("s1", "Ana Maria")
    assert await two.online() == [{"session": "s1", "nick": "Ana Maria"}]


@pytest.mark.redis
async def test_leave_is_seen_by_the_other_worker(redis_url, trackers):
    one = trackers(redis_url, 30)
    two = trackers(redis_url, 30)
    await one.join("s1", "Ana")
    await one.leave("s1")
    assert await two.online() == []


@pytest.mark.redis
async def test_a_dead_workers_sessions_expire_after_the_ttl(redis_url, trackers):
    dead = trackers(redis_url, 3)
    alive = trackers(redis_url, 30)
    await dead.join("s1", "Ghost")
    dead._heartbeat.cancel()  # the worker dies without cleaning up
    assert len(await alive.online()) == 1
    await asyncio.sleep(3.2)
    assert await alive.online() == []


@pytest.mark.redis
async def test_heartbeat_restores_entries_lost_from_redis(redis_url, trackers):
    """After a Redis restart (keys gone), the next heartbeat writes the sessions back."""
    import redis.asyncio as aioredis

    tracker = trackers(redis_url, 3)
    other = trackers(redis_url, 30)
    await tracker.join("s1", "Ana")
    client = aioredis.Redis.from_url(redis_url)
    async for key in client.scan_iter(f"{REDIS_PREFIX}:presence:*"):
        await client.delete(key)
    await client.aclose()
    assert await other.online() == []
    await asyncio.sleep(1.3)  # one heartbeat (ttl / 3)
    assert await other.online() == [{"session": "s1", "nick": "Ana"}]


async def test_snapshot_includes_the_joining_session_even_when_cached(trackers):
    tracker = trackers("")
    await tracker.join("s1", "Bia")
    online = await tracker.join("s2", "Ana")  # within the snapshot's age
    assert online == [{"session": "s2", "nick": "Ana"}, {"session": "s1", "nick": "Bia"}]


async def test_rename_replaces_the_entry_in_a_cached_snapshot(trackers):
    tracker = trackers("")
    await tracker.join("s1", "Ana")
    online = await tracker.join("s1", "Zoe")
    assert online == [{"session": "s1", "nick": "Zoe"}]
