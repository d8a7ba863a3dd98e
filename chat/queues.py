"""A FIFO for one reader, lighter than `asyncio.Queue` (four deques and an Event each).

A worker holds one or two per socket (daphne's input queue, the layer's channel queue), and
most of the time they are empty, so the deque exists only while messages wait: an empty
deque costs 760 bytes.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any


class LightQueue:
    """`put_nowait`, `get_nowait` and `get` for one reader; `capacity` 0 is unbounded."""

    __slots__ = ("capacity", "items", "waiter")

    def __init__(self, capacity: int = 0) -> None:
        self.capacity = capacity
        self.items: deque[dict[str, Any]] | None = None
        self.waiter: asyncio.Future[None] | None = None

    def empty(self) -> bool:
        """Whether nothing is queued."""
        return not self.items

    def put_nowait(self, message: dict[str, Any]) -> None:
        """Queue a message and wake the reader; raises asyncio.QueueFull past `capacity`."""
        if self.items is None:
            self.items = deque()
        elif self.capacity and len(self.items) >= self.capacity:
            raise asyncio.QueueFull
        self.items.append(message)
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def get_nowait(self) -> dict[str, Any]:
        """The oldest message; raises asyncio.QueueEmpty when there is none."""
        items = self.items
        if not items:
            raise asyncio.QueueEmpty
        message = items.popleft()
        if not items:
            self.items = None
        return message

    async def get(self) -> dict[str, Any]:
        """The oldest message, waiting for one."""
        while not self.items:
            self.waiter = asyncio.get_running_loop().create_future()
            try:
                await self.waiter
            finally:
                self.waiter = None
        return self.get_nowait()
