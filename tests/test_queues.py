"""The one-reader queue behind daphne's input and the layer's channels (chat.queues)."""

from __future__ import annotations

import asyncio

import pytest

from chat.queues import LightQueue


def test_a_new_queue_holds_no_deque_until_something_is_put() -> None:
    queue = LightQueue(3)
    assert queue.empty()
    assert queue.items is None


async def test_messages_come_out_in_the_order_they_went_in() -> None:
    queue = LightQueue()
    queue.put_nowait({"type": "websocket.connect"})
    queue.put_nowait({"type": "websocket.receive", "text": "a"})
    queue.put_nowait({"type": "websocket.receive", "text": "b"})
    assert queue.get_nowait() == {"type": "websocket.connect"}
    assert await queue.get() == {"type": "websocket.receive", "text": "a"}
    assert await queue.get() == {"type": "websocket.receive", "text": "b"}


async def test_an_emptied_queue_drops_its_deque() -> None:
    queue = LightQueue()
    queue.put_nowait({"n": 1})
    await queue.get()
    assert queue.items is None
    queue.put_nowait({"n": 2})
    assert queue.get_nowait() == {"n": 2}
    assert queue.items is None


def test_a_put_past_capacity_is_refused_and_unbounded_takes_any() -> None:
    queue = LightQueue(2)
    queue.put_nowait({"n": 0})
    queue.put_nowait({"n": 1})
    with pytest.raises(asyncio.QueueFull):
        queue.put_nowait({"n": 2})
    unbounded = LightQueue()
    for n in range(1000):
        unbounded.put_nowait({"n": n})
    assert len(unbounded.items or ()) == 1000


def test_get_nowait_on_an_empty_queue_raises() -> None:
    with pytest.raises(asyncio.QueueEmpty):
        LightQueue(1).get_nowait()


async def test_a_waiting_reader_gets_the_next_put() -> None:
    queue = LightQueue(2)
    reader = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    assert not reader.done()
    queue.put_nowait({"type": "websocket.disconnect", "code": 1000})
    assert await asyncio.wait_for(reader, 1) == {"type": "websocket.disconnect", "code": 1000}


async def test_a_cancelled_reader_leaves_the_queue_usable() -> None:
    queue = LightQueue(2)
    reader = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    queue.put_nowait({"n": 1})
    assert (await queue.get())["n"] == 1
