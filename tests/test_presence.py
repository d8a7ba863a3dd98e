"""chat.presence: the online list, with a real Redis and without."""

from __future__ import annotations

import asyncio
import json
import random

import pytest
import redis.asyncio as aioredis
from channels.layers import channel_layers

from chat import presence, protocol
from chat.presence import PresenceTracker, sort_online
from tests.support.environment import REDIS_PREFIX


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


async def settle(*trackers: PresenceTracker) -> None:
    """Every tracker's changes written, then every tracker's view of the others read."""
    for tracker in trackers:
        await tracker.sync()
    for tracker in trackers:
        await tracker.refresh()


def crash(tracker: PresenceTracker) -> None:
    """The worker dies without cleaning up: its background tasks stop, its keys stay."""
    for task in (tracker._heartbeat, tracker._refresher, tracker._flush_task, tracker._write_task):
        if task is not None:
            task.cancel()


class RoundTrips:
    """Counts a client's round trips to Redis: single commands and pipelines."""

    def __init__(self, client: aioredis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        execute_command = client.execute_command
        pipeline = client.pipeline

        async def counted_command(*args, **kwargs):
            self.count += 1
            return await execute_command(*args, **kwargs)

        def counted_pipeline(*args, **kwargs):
            self.count += 1
            return pipeline(*args, **kwargs)

        monkeypatch.setattr(client, "execute_command", counted_command)
        monkeypatch.setattr(client, "pipeline", counted_pipeline)


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
    page = await tracker.join("s2", "Bia")
    assert [e["nick"] for e in page.entries] == ["Ana", "Bia"]
    await tracker.leave("s1")
    assert tracker.online() == [{"session": "s2", "nick": "Bia"}]


@pytest.mark.redis
async def test_two_workers_see_the_same_list(redis_url, trackers):
    one = trackers(redis_url, 30)
    two = trackers(redis_url, 30)
    await one.join("s1", "Ana")
    await two.join("s2", "Bia")
    await settle(one, two)
    assert one.online() == two.online()
    assert len(one.online()) == 2


@pytest.mark.redis
async def test_rename_is_seen_by_the_other_worker(redis_url, trackers):
    one = trackers(redis_url, 30)
    two = trackers(redis_url, 30)
    await one.join("s1", "Ana")
    await settle(one, two)
    await one.rename("s1", "Ana Maria")
    await settle(one, two)
    assert two.online() == [{"session": "s1", "nick": "Ana Maria"}]


@pytest.mark.redis
async def test_leave_is_seen_by_the_other_worker(redis_url, trackers):
    one = trackers(redis_url, 30)
    two = trackers(redis_url, 30)
    await one.join("s1", "Ana")
    await settle(one, two)
    await one.leave("s1")
    await settle(one, two)
    assert two.online() == []


@pytest.mark.redis
async def test_a_dead_workers_sessions_expire_after_the_ttl(redis_url, trackers):
    dead = trackers(redis_url, 3)
    alive = trackers(redis_url, 30)
    await dead.join("s1", "Ghost")
    await dead.sync()
    crash(dead)
    await alive.refresh()
    assert len(alive.online()) == 1
    await asyncio.sleep(3.2)
    await alive.refresh()
    assert alive.online() == []


@pytest.mark.redis
async def test_heartbeat_restores_entries_lost_from_redis(redis_url, trackers):
    """After a Redis restart (keys gone), the next heartbeat writes the sessions back."""
    tracker = trackers(redis_url, 3)
    other = trackers(redis_url, 30)
    await tracker.join("s1", "Ana")
    await tracker.sync()
    client = aioredis.Redis.from_url(redis_url)
    async for key in client.scan_iter(f"{REDIS_PREFIX}:presence:*"):
        await client.delete(key)
    await client.aclose()
    await other.refresh()
    assert other.online() == []
    await asyncio.sleep(1.3)  # one heartbeat (ttl / 3)
    await other.refresh()
    assert other.online() == [{"session": "s1", "nick": "Ana"}]


async def test_a_join_that_sorts_first_is_first_in_the_page(trackers):
    tracker = trackers("")
    await tracker.join("s1", "Bia")
    page = await tracker.join("s2", "Ana")
    assert page.entries == ({"session": "s2", "nick": "Ana"}, {"session": "s1", "nick": "Bia"})


async def test_rename_replaces_the_entry_in_the_page(trackers):
    tracker = trackers("")
    await tracker.join("s1", "Ana")
    page = await tracker.join("s1", "Zoe")
    assert page.entries == ({"session": "s1", "nick": "Zoe"},)


def test_a_changed_page_shares_the_entries_of_the_people_still_in_it():
    view = presence.OnlineView()
    for session, nick in [("s1", "bo"), ("s2", "cy"), ("s3", "dee")]:
        view.put(session, nick)
    before = view.page(2).entries
    view.put("s0", "al")
    view.put("s2", "Cy")
    after = view.page(2).entries
    assert [entry["nick"] for entry in after] == ["al", "bo"]
    assert after[1] is before[0]
    assert view.page(0).entries[2] == {"session": "s2", "nick": "Cy"}
    assert view.page(0).entries[2] is not before[1]


async def test_a_join_returns_the_first_page_and_the_exact_count(settings, trackers):
    settings.CHAT_PRESENCE_LIST = 2
    tracker = trackers("")
    for session, nick in [("s1", "Cy"), ("s2", "Ana"), ("s3", "Bia")]:
        page = await tracker.join(session, nick)
    assert [e["nick"] for e in page.entries] == ["Ana", "Bia"]
    assert page.count == 3


async def test_a_leave_from_the_first_page_moves_the_next_entry_up(settings, trackers):
    settings.CHAT_PRESENCE_LIST = 2
    tracker = trackers("")
    for session, nick in [("s1", "Ana"), ("s2", "Bia"), ("s3", "Cy")]:
        await tracker.join(session, nick)
    await tracker.leave("s1")
    assert [e["nick"] for e in tracker.page().entries] == ["Bia", "Cy"]
    assert tracker.page().count == 2


async def test_joining_5000_sessions_does_not_copy_the_list_per_join(trackers):
    tracker = trackers("")
    limit = tracker.list_limit
    # Ascending nicknames: once the first page is full, every join sorts after it.
    pages = [await tracker.join(f"s{i:05d}", f"user{i:05d}") for i in range(5000)]
    assert max(len(page.entries) for page in pages) == limit
    assert all(page.entries is pages[limit - 1].entries for page in pages[limit:])
    assert [page.count for page in pages] == list(range(1, 5001))


async def test_a_join_into_a_full_first_page_shows_in_it(trackers):
    tracker = trackers("")
    for i in range(tracker.list_limit + 10):
        await tracker.join(f"s{i:05d}", f"user{i:05d}")
    page = await tracker.join("early", "aaron")
    assert page.entries[0] == {"session": "early", "nick": "aaron"}
    assert len(page.entries) == tracker.list_limit


@pytest.mark.redis
async def test_address_count_spans_two_trackers_without_a_redis_call_per_handshake(
    redis_url, trackers, monkeypatch
):
    one = trackers(redis_url, 30)
    two = trackers(redis_url, 30)
    await one.join("s1", "Ana", address="10.0.0.1")
    await one.join("s2", "Bia", address="10.0.0.1")
    await settle(one, two)
    round_trips = RoundTrips(two._redis, monkeypatch)
    counts = []
    for i in range(100):
        counts.append(await two.address_count("10.0.0.1"))
        await two.join(f"t{i}", "Cy", address="10.0.0.1")
    assert counts == list(range(2, 102))
    assert round_trips.count == 0


@pytest.mark.redis
async def test_joins_reach_redis_in_one_pipeline_per_flush(redis_url, trackers, monkeypatch):
    one = trackers(redis_url, 30)
    two = trackers(redis_url, 30)
    await settle(one, two)
    round_trips = RoundTrips(one._redis, monkeypatch)
    for i in range(500):
        await one.join(f"s{i}", f"n{i}", address="10.0.0.1")
    await one._write_task
    assert round_trips.count == 1
    await two.refresh()
    assert len(two.online()) == 500
    assert await two.address_count("10.0.0.1") == 500


@pytest.mark.redis
async def test_a_join_reaches_the_other_worker_within_the_flush_and_refresh(redis_url, trackers):
    one = trackers(redis_url, 30)
    two = trackers(redis_url, 30)
    await two.join("s2", "Bia")  # two has a socket: its view is refreshed in the background
    await one.join("s1", "Ana")
    await asyncio.sleep(presence.FLUSH_DELAY + presence.REFRESH_INTERVAL + 0.5)
    assert [e["nick"] for e in two.online()] == ["Ana", "Bia"]


@pytest.mark.redis
async def test_a_clean_aclose_removes_the_workers_keys(redis_url, trackers):
    tracker = trackers(redis_url, 30)
    await tracker.join("s1", "Ana", address="10.0.0.1")
    await tracker.sync()
    await tracker.aclose()
    client = aioredis.Redis.from_url(redis_url, decode_responses=True)
    try:
        assert not await client.exists(tracker._key, tracker._addr_key)
        assert await client.zscore(tracker._workers_key, tracker.worker_id) is None
    finally:
        await client.aclose()


@pytest.mark.redis
async def test_the_workers_key_has_a_ttl(redis_url, trackers):
    tracker = trackers(redis_url, 30)
    await tracker.join("s1", "Ana")
    await tracker.sync()
    client = aioredis.Redis.from_url(redis_url)
    try:
        assert 0 < await client.ttl(tracker._workers_key) <= 30
    finally:
        await client.aclose()


@pytest.mark.redis
async def test_the_workers_key_lives_as_long_as_the_longest_lease(redis_url, trackers):
    long = trackers(redis_url, 30)
    short = trackers(redis_url, 3)
    await long.join("s1", "Ana")
    await long.sync()
    await short.join("s2", "Bia")
    await short.sync()
    client = aioredis.Redis.from_url(redis_url)
    try:
        assert await client.ttl(long._workers_key) > 3
    finally:
        await client.aclose()


async def test_without_reachable_redis_a_tracker_lists_its_own_sessions(trackers):
    tracker = trackers("redis://127.0.0.1:1/0")  # nothing listens there
    await tracker.join("s1", "Ana", address="10.0.0.1")
    await tracker.sync()
    assert tracker.online() == [{"session": "s1", "nick": "Ana"}]
    assert await tracker.address_count("10.0.0.1") == 1


@pytest.fixture
def broadcasts(monkeypatch, settings):
    """Presence broadcasts, decoded, with whether each was marked a full frame; a first page
    of 3 and a short flush delay."""
    settings.CHAT_PRESENCE_LIST = 3
    monkeypatch.setattr(presence, "FLUSH_DELAY", 0.01)
    sent: list[tuple[dict, bool]] = []

    async def publish(text: str, *, presence: bool = False, **kwargs: object) -> None:
        sent.append((json.loads(text), presence))

    monkeypatch.setattr(presence.broadcast, "publish", publish)
    return sent


async def crowd(tracker: PresenceTracker, size: int) -> None:
    """`size` people named b00, b01, ... and their broadcast sent."""
    for i in range(size):
        await tracker.join(f"s{i:02d}", f"b{i:02d}")
    await flushed(tracker)


async def flushed(tracker: PresenceTracker) -> None:
    assert tracker._flush_task is not None
    await tracker._flush_task


async def test_a_join_beyond_a_full_first_page_broadcasts_the_count_only(trackers, broadcasts):
    tracker = trackers("")
    await crowd(tracker, 5)
    await tracker.join("late", "zed")
    await flushed(tracker)
    assert broadcasts[-1] == ({"type": "presence", "count": 6}, False)


async def test_a_join_inside_the_first_page_broadcasts_the_page(trackers, broadcasts):
    tracker = trackers("")
    await crowd(tracker, 5)
    await tracker.join("early", "aaron")
    await flushed(tracker)
    frame, full = broadcasts[-1]
    assert full
    assert [entry["nick"] for entry in frame["online"]] == ["aaron", "b00", "b01"]
    assert frame["count"] == 6


async def test_a_leave_beyond_the_first_page_broadcasts_the_count_only(trackers, broadcasts):
    tracker = trackers("")
    await crowd(tracker, 5)
    await tracker.leave("s04")
    await flushed(tracker)
    assert broadcasts[-1] == ({"type": "presence", "count": 4}, False)


async def test_a_leave_from_the_first_page_broadcasts_the_page(trackers, broadcasts):
    tracker = trackers("")
    await crowd(tracker, 5)
    await tracker.leave("s00")
    await flushed(tracker)
    frame, full = broadcasts[-1]
    assert full
    assert [entry["nick"] for entry in frame["online"]] == ["b01", "b02", "b03"]


async def test_a_rename_beyond_the_first_page_broadcasts_the_count_only(trackers, broadcasts):
    tracker = trackers("")
    await crowd(tracker, 5)
    await tracker.rename("s04", "b99")
    await flushed(tracker)
    assert broadcasts[-1] == ({"type": "presence", "count": 5}, False)


async def test_a_crowd_beyond_the_first_page_keeps_sending_the_count_only(trackers, broadcasts):
    tracker = trackers("")
    await crowd(tracker, 5)
    for i in range(3):
        await tracker.join(f"late{i}", f"z{i}")
        await flushed(tracker)
    assert broadcasts[-3:] == [
        ({"type": "presence", "count": 6}, False),
        ({"type": "presence", "count": 7}, False),
        ({"type": "presence", "count": 8}, False),
    ]


async def test_after_another_page_was_seen_the_next_broadcast_carries_the_page(
    trackers, broadcasts
):
    tracker = trackers("")
    await crowd(tracker, 5)
    # Another worker's full frame, with a list this worker's view does not have.
    other = [{"session": "x", "nick": "a-stale"}, {"session": "s00", "nick": "b00"}]
    tracker.saw_page(json.dumps({"type": "presence", "online": other, "count": 6}))
    await tracker.join("late", "zed")
    await flushed(tracker)
    frame, full = broadcasts[-1]
    assert full
    assert [entry["nick"] for entry in frame["online"]] == ["b00", "b01", "b02"]


async def test_seeing_the_page_it_holds_keeps_the_broadcasts_count_only(trackers, broadcasts):
    tracker = trackers("")
    await crowd(tracker, 5)
    tracker.saw_page(protocol.presence_frame(tracker.page()))
    await tracker.join("late", "zed")
    await flushed(tracker)
    assert broadcasts[-1] == ({"type": "presence", "count": 6}, False)


async def test_a_tracker_that_cannot_see_the_other_workers_frames_always_sends_the_page(
    trackers, broadcasts
):
    tracker = trackers("")
    tracker.knows_pages = False
    await crowd(tracker, 5)
    await tracker.join("late", "zed")
    await flushed(tracker)
    frame, full = broadcasts[-1]
    assert full
    assert frame["count"] == 6
    assert len(frame["online"]) == 3


@pytest.mark.parametrize("with_redis", [False, True], ids=["alone", "redis"])
async def test_a_rename_made_while_a_broadcast_is_on_its_way_is_broadcast_too(
    request, monkeypatch, trackers, broadcasts, with_redis
):
    # The race a browser test met: Bia's join was being published (the layer's group_send
    # yields to the loop) when Ana's rename came in; the flush ended without it.
    tracker = trackers(request.getfixturevalue("redis_url") if with_redis else "")
    await tracker.join("ana", "Ana")
    await flushed(tracker)
    publish = presence.broadcast.publish

    async def publish_while_ana_renames(text: str, **kwargs: object) -> None:
        monkeypatch.setattr(presence.broadcast, "publish", publish)
        await publish(text, **kwargs)
        # Another task (Ana's consumer) runs while this broadcast is on its way.
        await tracker.rename("ana", "Ana Clara")

    monkeypatch.setattr(presence.broadcast, "publish", publish_while_ana_renames)
    await tracker.join("bia", "Bia")
    await flushed(tracker)
    names = [[entry["nick"] for entry in frame["online"]] for frame, _ in broadcasts[1:]]
    assert names == [["Ana", "Bia"], ["Ana Clara", "Bia"]]
    if with_redis:
        other = trackers(request.getfixturevalue("redis_url"))
        await other.refresh()
        assert {"session": "ana", "nick": "Ana Clara"} in other.online()


@pytest.mark.parametrize("limit", [0, 1, 5, 40])
def test_joins_spliced_into_the_page_give_the_page_a_rebuild_gives(limit):
    """Joins, renames and leaves in a random order: the cached page (joins spliced in) is
    always the page built afresh from the sorted list, its entries encoded."""
    rng = random.Random(limit)
    view = presence.OnlineView()
    sessions = [f"s{n}" for n in range(60)]
    for step in range(400):
        session = rng.choice(sessions)
        if rng.random() < 0.2:
            view.remove(session)
        else:
            view.put(
                session,
                rng.choice(["Ana", "ana", "Bo", "Cy", "Dee", "émile", "Zed"]) + str(step % 7),
            )
        page = view.page(limit)
        fresh = presence.OnlineView()
        for entry in view.entries():
            fresh.put(entry["session"], entry["nick"])
        assert [dict(e) for e in page.entries] == [dict(e) for e in fresh.page(limit).entries]
        assert page.count == len(view.entries())
        assert protocol.encode_entries(page.entries) == protocol.encode(
            [dict(e) for e in page.entries]
        )


def test_an_entry_that_joins_the_page_is_encoded_once_there():
    view = presence.OnlineView()
    view.put("s1", "Bo")
    first = view.page(10)
    protocol.encode_entries(first.entries)
    view.put("s2", "Ana")  # sorts first: spliced into the cached page
    page = view.page(10)
    assert [e["nick"] for e in page.entries] == ["Ana", "Bo"]
    assert page.entries[1] is first.entries[0]
    assert all(e.text is not None for e in page.entries)  # joined as texts, no call each
