"""Who is online, across two real daphne processes and Redis."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from chat.presence import FLUSH_DELAY, REFRESH_INTERVAL
from tests.support.client import ChatClient, nicks, wait_presence

TTL = 6

pytestmark = [
    pytest.mark.live,
    pytest.mark.redis,
    pytest.mark.parametrize("two_workers", [{"CHAT_PRESENCE_TTL": str(TTL)}], indirect=True),
]


async def test_join_on_either_worker_reaches_both(two_workers):
    a, b = two_workers
    ana = await ChatClient.connect(a.ws_url, nick="Ana")
    bia = await ChatClient.connect(b.ws_url, nick="Bia")
    try:
        # `hello` has the other worker's part as of its last refresh (chat.presence);
        # the broadcast after the joins brings every list together.
        assert "Bia" in nicks(bia.hello)
        for client in (ana, bia):
            frame = await wait_presence(client, ["Ana", "Bia"])
            assert frame["count"] == 2
    finally:
        await ana.close()
        await bia.close()


async def test_hello_lists_the_other_workers_people_after_the_flush_delay(two_workers):
    a, b = two_workers
    ana = await ChatClient.connect(a.ws_url, nick="Ana")
    try:
        await asyncio.sleep(FLUSH_DELAY + REFRESH_INTERVAL + 0.5)
        bia = await ChatClient.connect(b.ws_url, nick="Bia")
        assert nicks(bia.hello) == ["Ana", "Bia"]
        assert bia.hello["count"] == 2
        await bia.close()
    finally:
        await ana.close()


async def test_rename_reaches_both_workers(two_workers):
    a, b = two_workers
    ana = await ChatClient.connect(a.ws_url, nick="Ana")
    bia = await ChatClient.connect(b.ws_url, nick="Bia")
    try:
        await bia.send({"type": "nick", "nick": "Beatriz"})
        await wait_presence(ana, ["Ana", "Beatriz"])
        await wait_presence(bia, ["Ana", "Beatriz"])
    finally:
        await ana.close()
        await bia.close()


async def test_leave_reaches_the_other_worker(two_workers):
    a, b = two_workers
    ana = await ChatClient.connect(a.ws_url, nick="Ana")
    bia = await ChatClient.connect(b.ws_url, nick="Bia")
    try:
        await wait_presence(ana, ["Ana", "Bia"])
        await bia.close()
        frame = await wait_presence(ana, ["Ana"])
        assert frame["count"] == 1
    finally:
        await ana.close()


async def test_two_tabs_of_one_person_are_two_sessions(two_workers):
    a, b = two_workers
    tab1 = await ChatClient.connect(a.ws_url, nick="Ana")
    tab2 = await ChatClient.connect(b.ws_url, nick="Ana")
    try:
        frame = await wait_presence(tab1, ["Ana", "Ana"])
        assert {e["session"] for e in frame["online"]} == {tab1.session, tab2.session}
    finally:
        await tab1.close()
        await tab2.close()


async def test_sessions_of_a_killed_worker_drop_out_within_the_ttl(two_workers):
    a, b = two_workers
    await ChatClient.connect(a.ws_url, nick="Ghost")  # dies with its worker
    ana = await ChatClient.connect(b.ws_url, nick="Ana")
    try:
        await wait_presence(ana, ["Ana", "Ghost"])
        killed_at = time.monotonic()
        a.kill(signal.SIGKILL)
        # The TTL, plus one heartbeat of the survivor to notice.
        await wait_presence(ana, ["Ana"], timeout=TTL + TTL / 3 + 3)
        assert time.monotonic() - killed_at <= TTL + TTL / 3 + 3
        late = await ChatClient.connect(b.ws_url, nick="Late")
        assert nicks(late.hello) == ["Ana", "Late"]
        await late.close()
    finally:
        await ana.close()
