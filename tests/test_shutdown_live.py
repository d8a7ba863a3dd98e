"""A worker stopped with SIGTERM (a deploy) closes its sockets with 1012 and leaves no ghost."""

from __future__ import annotations

import asyncio
import signal

import pytest
import websockets

from chat.presence import REFRESH_INTERVAL
from tests.support.client import ChatClient, nicks, wait_presence
from tests.support.environment import REDIS_PREFIX

pytestmark = [
    pytest.mark.live,
    pytest.mark.redis,
    # Ghosts would linger a minute: the test sees them.
    pytest.mark.parametrize("two_workers", [{"CHAT_PRESENCE_TTL": "60"}], indirect=True),
]


async def test_sigterm_closes_sockets_with_1012(two_workers):
    a, _ = two_workers
    client = await ChatClient.connect(a.ws_url, nick="Leaving")
    a.proc.send_signal(signal.SIGTERM)
    with pytest.raises(websockets.ConnectionClosed) as closed:
        while True:
            await client.recv(timeout=10)
    assert closed.value.rcvd is not None, "no close frame was received"
    assert closed.value.rcvd.code == 1012
    assert a.proc.wait(timeout=10) == 0


async def test_sigterm_leaves_no_ghost_in_the_online_list(two_workers):
    a, b = two_workers
    leaving = await ChatClient.connect(a.ws_url, nick="Leaving")
    staying = await ChatClient.connect(b.ws_url, nick="Staying")
    try:
        await wait_presence(staying, ["Leaving", "Staying"])
        a.proc.send_signal(signal.SIGTERM)
        frame = await wait_presence(staying, ["Staying"], timeout=8)
        assert frame["count"] == 1
        # A `hello` on b lists a's people as of b's last refresh (chat.presence).
        await asyncio.sleep(REFRESH_INTERVAL + 0.5)
        late = await ChatClient.connect(b.ws_url, nick="Late")
        assert nicks(late.hello) == ["Late", "Staying"]
        await late.close()
    finally:
        await staying.close()
        await asyncio.gather(leaving.close(), return_exceptions=True)


async def test_a_worker_stopped_cleanly_removes_its_presence_keys(two_workers, redis_url):
    import redis

    a, b = two_workers
    leaving = await ChatClient.connect(a.ws_url, nick="Leaving")
    staying = await ChatClient.connect(b.ws_url, nick="Staying")
    store = redis.Redis.from_url(redis_url, decode_responses=True)
    workers_key = f"{REDIS_PREFIX}:presence:workers"
    try:
        await wait_presence(staying, ["Leaving", "Staying"])
        before = set(store.zrange(workers_key, 0, -1))
        assert len(before) == 2
        a.proc.send_signal(signal.SIGTERM)
        assert a.proc.wait(timeout=10) == 0
        after = set(store.zrange(workers_key, 0, -1))
        (gone,) = before - after
        assert len(after) == 1
        left = list(store.scan_iter(f"{REDIS_PREFIX}:presence:*{gone}*"))
        assert left == [], f"a stopped worker's keys are still there: {left}"
    finally:
        store.close()
        await staying.close()
        await asyncio.gather(leaving.close(), return_exceptions=True)


async def test_a_killed_worker_leaves_no_key_without_an_expiry(two_workers, redis_url):
    """SIGKILL runs no cleanup: whatever the worker wrote must expire by itself."""
    import redis

    a, b = two_workers
    doomed = await ChatClient.connect(a.ws_url, nick="Doomed")
    staying = await ChatClient.connect(b.ws_url, nick="Staying")
    store = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        await wait_presence(staying, ["Doomed", "Staying"])
        await doomed.say("written before the kill")
        await staying.recv_type("message")
        a.kill(signal.SIGKILL)
        keys = list(store.scan_iter(f"{REDIS_PREFIX}:*"))
        assert any(":presence:" in key for key in keys), keys
        forever = [key for key in keys if store.ttl(key) == -1]
        assert forever == [], f"keys that outlive every worker: {forever}"
    finally:
        store.close()
        await staying.close()
        await asyncio.gather(doomed.close(), return_exceptions=True)
