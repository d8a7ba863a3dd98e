"""A worker's window of recent messages: joins and recent resumes without the database, and
catch-up after a Redis restart (real daphne processes, real Redis)."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets
from django.db import connection

from tests.support.client import ChatClient
from tests.support.database import table_locked

pytestmark = [pytest.mark.live, pytest.mark.redis]

WINDOW = {"CHAT_HISTORY": "5", "CHAT_RESUME_CAP": "10", "CHAT_RATE": "0"}


async def _send_all(client: ChatClient, bodies: list[str]) -> list[int]:
    """Send each body and wait for its echo; the stored ids, in order."""
    ids = []
    for body in bodies:
        await client.say(body, client_id=body)
        echo = await client.recv_type("message", timeout=10, body=body)
        ids.append(echo["id"])
    return ids


@pytest.fixture
def worker(daphne_factory, redis_url, live_db_url):
    # A lock timeout, so that a query that does reach the locked table fails in 1 s.
    db_url = live_db_url
    if connection.vendor == "postgresql":
        db_url += "?options=-c%20lock_timeout%3D1000"
    return daphne_factory(redis_url=redis_url, name="window", DATABASE_URL=db_url, **WINDOW)


async def test_a_fresh_join_gets_the_latest_history(worker):
    ana = await ChatClient.connect(worker.ws_url, nick="Ana")
    try:
        await _send_all(ana, [f"m{i}" for i in range(8)])
        bia = await ChatClient.connect(worker.ws_url, nick="Bia")
        assert [m["body"] for m in bia.hello["history"]] == [f"m{i}" for i in range(3, 8)]
        await bia.close()
    finally:
        await ana.close()


async def test_a_resume_inside_the_window_gets_every_newer_message(worker):
    ana = await ChatClient.connect(worker.ws_url, nick="Ana")
    try:
        ids = await _send_all(ana, [f"r{i}" for i in range(12)])
        back = await ChatClient.connect(worker.ws_url, nick="Back", after=ids[4])
        assert [m["id"] for m in back.hello["history"]] == ids[5:]
        assert back.hello["truncated"] is False
        await back.close()
    finally:
        await ana.close()


async def test_a_resume_older_than_the_window_is_answered_from_the_database(worker):
    ana = await ChatClient.connect(worker.ws_url, nick="Ana")
    try:
        ids = await _send_all(ana, [f"o{i}" for i in range(14)])
        back = await ChatClient.connect(worker.ws_url, nick="Back", after=ids[0])
        assert [m["id"] for m in back.hello["history"]] == ids[-10:]
        assert back.hello["truncated"] is True
        await back.close()
    finally:
        await ana.close()


async def test_joins_and_recent_resumes_need_no_database(worker):
    """With the messages table locked against reads, a guest still joins and resumes within
    the window; a resume older than the window needs the database and is refused."""
    if connection.vendor != "postgresql":
        pytest.skip("SQLite in WAL mode cannot block readers; the PostgreSQL run proves this")
    ana = await ChatClient.connect(worker.ws_url, nick="Ana")
    try:
        ids = await _send_all(ana, [f"l{i}" for i in range(14)])
        with table_locked(reads=True):
            fresh = await ChatClient.connect(worker.ws_url, nick="Fresh", timeout=5)
            assert [m["id"] for m in fresh.hello["history"]] == ids[-5:]
            back = await ChatClient.connect(worker.ws_url, nick="Back", after=ids[6], timeout=5)
            assert [m["id"] for m in back.hello["history"]] == ids[7:]
            old = await websockets.connect(
                worker.ws_url + f"?after={ids[0]}", origin=worker.http_url, open_timeout=5
            )
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    frame = json.loads(await asyncio.wait_for(old.recv(), 10))
                    assert frame["type"] != "hello", "answered while the table was locked"
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4013
            await fresh.close()
            await back.close()
    finally:
        await ana.close()


async def test_a_join_racing_a_stream_gets_each_message_once(worker):
    ana = await ChatClient.connect(worker.ws_url, nick="Ana")
    joiners = []
    sending = asyncio.ensure_future(_send_all(ana, [f"j{i}" for i in range(60)]))
    try:
        # One join per 4 messages echoed: joins fall all along the stream however fast the
        # machine is, and stay under CHAT_MAX_SOCKETS_PER_IP (a join per 20 ms on a loaded
        # machine opened more than 20 sockets and got 403).
        while not sending.done() and len(joiners) < 15:
            echoed = sum(1 for frame in ana.frames if frame["type"] == "message")
            if echoed >= 4 * len(joiners):
                joiners.append(await ChatClient.connect(worker.ws_url, nick=f"J{len(joiners)}"))
            await asyncio.sleep(0.01)
        ids = await sending
        for joiner in joiners:
            while len([m for m in joiner.messages() if m["id"] == ids[-1]]) == 0:
                await joiner.recv(timeout=10)
            seen = [m["id"] for m in joiner.messages()]
            assert len(seen) == len(set(seen)), "a message arrived twice"
            first = seen[0]
            assert sorted(seen) == [i for i in ids if i >= first], "a message is missing"
    finally:
        sending.cancel()
        await asyncio.gather(sending, return_exceptions=True)
        for client in [ana, *joiners]:
            await client.close()


async def test_a_worker_pushes_what_its_sockets_missed_during_a_redis_outage(
    daphne_factory, private_redis
):
    """A message stored while Redis was down, by a worker that then died (so nobody
    republishes it), reaches the other worker's sockets when Redis returns: no page needs
    to repair a gap."""
    env = {"CHAT_RATE": "0"}
    a = daphne_factory(redis_url=private_redis.url, name="cu-a", **env)
    b = daphne_factory(redis_url=private_redis.url, name="cu-b", **env)
    sender = await ChatClient.connect(a.ws_url, nick="Sender")
    watcher = await ChatClient.connect(b.ws_url, nick="Watcher")
    try:
        await sender.say("before", client_id="cu-before")
        await watcher.recv_type("message", timeout=10, body="before")
        private_redis.stop()
        await sender.say("during", client_id="cu-during")
        error = await sender.recv_type("error", timeout=10, client_id="cu-during")
        assert error["code"] == "unavailable"
        a.kill()
        private_redis.start()
        got = await watcher.recv_type("message", timeout=15, body="during")
        assert got["client_id"] == "cu-during"
        await asyncio.sleep(1)
        while True:
            try:
                await watcher.recv(timeout=0.2)
            except TimeoutError:
                break
        bodies = [m["body"] for m in watcher.messages()]
        assert bodies.count("during") == 1
    finally:
        await watcher.close()
        await sender.close()
