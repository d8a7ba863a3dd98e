"""The broadcast layer's per-channel queue (chat.layers.ChannelQueue), without Redis."""

from __future__ import annotations

import asyncio

import pytest

from chat.layers import ChannelQueue


def test_a_new_queue_holds_no_deque_until_something_is_put() -> None:
    queue = ChannelQueue(3)
    assert queue.empty()
    assert queue.items is None


async def test_messages_come_out_in_the_order_they_went_in() -> None:
    queue = ChannelQueue(3)
    for n in range(3):
        queue.put_nowait({"n": n})
    assert [(await queue.get())["n"] for _ in range(3)] == [0, 1, 2]


def test_a_put_past_capacity_is_refused() -> None:
    queue = ChannelQueue(2)
    queue.put_nowait({"n": 0})
    queue.put_nowait({"n": 1})
    with pytest.raises(asyncio.QueueFull):
        queue.put_nowait({"n": 2})


def test_get_nowait_on_an_empty_queue_raises() -> None:
    with pytest.raises(asyncio.QueueEmpty):
        ChannelQueue(1).get_nowait()


async def test_a_waiting_reader_gets_the_next_put() -> None:
    queue = ChannelQueue(2)
    reader = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    assert not reader.done()
    queue.put_nowait({"n": 7})
    assert (await asyncio.wait_for(reader, 1))["n"] == 7


async def test_a_cancelled_reader_leaves_the_queue_usable() -> None:
    queue = ChannelQueue(2)
    reader = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    queue.put_nowait({"n": 1})
    assert (await queue.get())["n"] == 1
