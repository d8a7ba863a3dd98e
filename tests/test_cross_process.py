"""Two real daphne processes behind one real Redis act as one chat."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.client import ChatClient

pytestmark = [pytest.mark.live, pytest.mark.redis]


async def test_message_reaches_both_processes_in_both_directions(two_workers):
    a, b = two_workers
    ana = await ChatClient.connect(a.ws_url, nick="Ana")
    bia = await ChatClient.connect(b.ws_url, nick="Bia")
    try:
        await ana.say("from a")
        on_a = await ana.recv_type("message")
        on_b = await bia.recv_type("message")
        assert on_a == on_b
        assert on_b["body"] == "from a" and on_b["nick"] == "Ana"
        assert on_b["session"] == ana.session

        await bia.say("from b")
        back_a = await ana.recv_type("message")
        back_b = await bia.recv_type("message")
        assert back_a == back_b
        assert back_a["body"] == "from b" and back_a["id"] > on_a["id"]
    finally:
        await ana.close()
        await bia.close()


async def test_idle_socket_stays_open_and_receives(two_workers):
    """redis-py 8's 5 s socket timeout must not tear idle consumers down (channels_redis #422)."""
    a, b = two_workers
    idle = await ChatClient.connect(a.ws_url, nick="Idle")
    talker = await ChatClient.connect(b.ws_url, nick="Talker")
    try:
        await asyncio.sleep(30)
        await talker.say("still there?")
        got = await idle.recv_type("message", timeout=10)
        assert got["body"] == "still there?"
        assert "Exception" not in a.log()
    finally:
        await idle.close()
        await talker.close()
