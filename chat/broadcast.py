"""The broadcast hot path: one layer publish per message, one frame for every socket.

The JSON text is encoded once by the sender's worker. Each receiving worker builds the
WebSocket frame bytes once (`wire_frame`) and, under daphne, writes those bytes to every
local socket (chat.daphne_server); elsewhere each consumer forwards the text.

On the broadcast layer, each worker also keeps a `Lobby`: its window of recent messages
(chat.recent), filled from the database whenever its subscription starts and extended by the
stream, which answers joins and recent resumes without the database, drops duplicates, and
after a resubscription pushes to local sockets what they missed meanwhile.

A stored message whose publish failed (Redis unreachable) is kept in this worker's memory
and published again when the layer reconnects, so that the others still get it once.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections import OrderedDict
from typing import Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings

from chat.recent import RecentWindow

logger = logging.getLogger(__name__)

GROUP = "lobby"
EVENT_TYPE = "chat.frame"
MAX_DEFERRED = 1000

# Extension a layer declares when it offers the direct delivery hooks (chat.layers).
DIRECT = "chat.direct"
# Longest wait between two tries to fill the window while the database fails.
FILL_RETRY_MAX = 5.0

# message id -> encoded frame, per event loop: messages stored but not yet published.
_deferred: dict[asyncio.AbstractEventLoop, OrderedDict[int, str]] = {}
_lobbies: dict[asyncio.AbstractEventLoop, Lobby] = {}


def text_frame(payload: bytes) -> bytes:
    """An unmasked, unfragmented WebSocket text frame (RFC 6455 5.2), as a server sends it."""
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x81, length)
    elif length < 65536:
        header = struct.pack("!BBH", 0x81, 126, length)
    else:
        header = struct.pack("!BBQ", 0x81, 127, length)
    return header + payload


def wire_frame(event: dict[str, Any]) -> bytes:
    """The frame bytes of a broadcast event, built by the first socket that needs them and
    reused by every other socket of this worker (the layer hands them one shared dict)."""
    frame = event.get("wire")
    if frame is None:
        frame = event["wire"] = text_frame(event["text"].encode())
    return frame


def frame_event(
    text: str, *, message_id: int | None = None, exclude: str | None = None
) -> dict[str, Any]:
    """The layer event that carries one pre-encoded frame."""
    return {"type": EVENT_TYPE, "text": text, "id": message_id, "exclude": exclude}


async def publish(
    text: str, *, message_id: int | None = None, exclude: str | None = None, group: str = GROUP
) -> None:
    """Send one encoded frame to every socket of `group` on every worker."""
    layer = get_channel_layer()
    await layer.group_send(group, frame_event(text, message_id=message_id, exclude=exclude))


def defer(text: str, *, message_id: int) -> None:
    """Remember a stored message whose publish failed, to publish it on reconnect."""
    loop = asyncio.get_running_loop()
    pending = _deferred.setdefault(loop, OrderedDict())
    pending[message_id] = text
    while len(pending) > MAX_DEFERRED:
        dropped, _ = pending.popitem(last=False)
        logger.warning("broadcast: deferred message %s dropped (backlog full)", dropped)
    _watch_reconnect()


async def publish_deferred() -> None:
    """Publish what failed earlier, oldest first; stop at the first failure.

    Waits first until the other workers have had time to subscribe again: a message
    published before a worker is subscribed would never reach its sockets.
    """
    from chat.layers import MAX_RETRY_DELAY

    await asyncio.sleep(MAX_RETRY_DELAY + 1)
    pending = _deferred.get(asyncio.get_running_loop())
    while pending:
        message_id, text = next(iter(pending.items()))
        await publish(text, message_id=message_id)
        del pending[message_id]
    if pending is not None and not pending:
        logger.info("broadcast: deferred messages published")


def _watch_reconnect() -> None:
    layer = get_channel_layer()
    if hasattr(layer, "on_reconnect"):
        layer.on_reconnect(publish_deferred)


def has_direct_delivery(layer: Any) -> bool:
    """Whether a channel layer declares the direct delivery hooks (chat.layers)."""
    return DIRECT in getattr(layer, "extensions", ())


def _window_rows(capacity: int) -> tuple[list[tuple[int, str]], int]:
    """The newest `capacity` stored messages as (id, frame text), and the window's floor."""
    from chat import protocol, selectors
    from chat.serializers import message_to_frame

    rows, truncated = selectors.message_list_latest(limit=capacity)
    floor = rows[0].id - 1 if rows and truncated else 0
    return [(m.id, protocol.encode(message_to_frame(m))) for m in rows], floor


class Lobby:
    """One worker's view of the lobby on the broadcast layer: its recent-message window."""

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        capacity = max(settings.CHAT_HISTORY, settings.CHAT_RESUME_CAP or settings.CHAT_HISTORY)
        self.window = RecentWindow(capacity=capacity)
        self.filling: asyncio.Lock = asyncio.Lock()
        layer.set_group_filter(GROUP, self.admit)
        layer.on_subscribe(self.subscribed)

    def admit(self, event: dict[str, Any]) -> bool:
        """Keep each message in the window; False for one this worker already has."""
        message_id = event.get("id")
        if message_id is None:
            return True
        return self.window.add(message_id, event["text"])

    async def subscribed(self, first: bool) -> None:
        """Fill the window from the database; after a resubscription, push what was missed."""
        delay = 0.2
        async with self.filling:
            while True:
                try:
                    rows, floor = await database_sync_to_async(_window_rows)(self.window.capacity)
                    break
                except Exception as exc:
                    logger.warning("broadcast: recent messages unavailable (%r); retrying", exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, FILL_RETRY_MAX)
            missed = self.window.fill(rows, floor=floor)
        if missed:
            logger.info("broadcast: %d messages missed while unsubscribed; pushing", len(missed))
        for message_id, text in missed:
            self.layer.deliver_local(GROUP, frame_event(text, message_id=message_id))


def get_lobby() -> Lobby | None:
    """This worker's lobby, or None when the layer has no direct delivery (then the
    database answers every join)."""
    loop = asyncio.get_running_loop()
    lobby = _lobbies.get(loop)
    if lobby is None:
        layer = get_channel_layer()
        if not has_direct_delivery(layer):
            return None
        for old in [key for key in _lobbies if key.is_closed()]:
            del _lobbies[old]
        lobby = _lobbies[loop] = Lobby(layer)
    return lobby
