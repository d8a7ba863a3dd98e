"""Who is online, across two real daphne processes and Redis."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest

from chat.presence import FLUSH_DELAY, REFRESH_INTERVAL
from tests.support.client import ChatClient, nicks, wait_presence

TTL = 6

pytestmark = [pytest.mark.live, pytest.mark.redis]
# The workers of this module: a short presence TTL, so that a killed worker's people go soon.
short_ttl = pytest.mark.parametrize("two_workers", [{"CHAT_PRESENCE_TTL": str(TTL)}], indirect=True)
# The same with a first page of the online list of 3 people: a crowd is 4 or more.
small_page = pytest.mark.parametrize(
    "two_workers", [{"CHAT_PRESENCE_TTL": str(TTL), "CHAT_PRESENCE_LIST": "3"}], indirect=True
)


@short_ttl
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


@short_ttl
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


@short_ttl
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


@short_ttl
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


@short_ttl
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


@short_ttl
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


async def settled_presence(client: ChatClient, count: int) -> None:
    """Presence frames until one has `count`, then none for longer than a flush and a
    refresh."""
    frame = await client.recv_type("presence", timeout=10)
    while frame["count"] != count:
        frame = await client.recv_type("presence", timeout=10)
    while True:
        try:
            frame = await client.recv_type("presence", timeout=FLUSH_DELAY + REFRESH_INTERVAL + 1)
        except TimeoutError:
            return


@small_page
async def test_in_a_crowd_a_join_beyond_the_first_page_sends_both_workers_the_count_only(
    two_workers,
):
    a, b = two_workers
    crowd = [await ChatClient.connect((a, b)[i % 2].ws_url, nick=f"b{i}") for i in range(5)]
    late = None
    try:
        for client in crowd:
            await settled_presence(client, 5)
        late = await ChatClient.connect(b.ws_url, nick="zed")
        for client in crowd:
            # Its own worker's broadcast, or the other's heartbeat to its own sockets: both
            # count-only.
            frame = await client.recv_type("presence", timeout=10)
            assert frame == {"type": "presence", "count": 6}
        early = await ChatClient.connect(a.ws_url, nick="aaron")
        for client in crowd:
            frame = await client.recv_type("presence", timeout=10, count=7)
            assert nicks(frame) == ["aaron", "b0", "b1"]
        await early.close()
    finally:
        for client in [*crowd, *([late] if late else [])]:
            await client.close()
