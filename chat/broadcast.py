"""The broadcast hot path: one layer publish per message, one encoded frame for every socket.

The frame is encoded once by the sender's worker; each consumer's `chat_frame` handler only
forwards the text, with no JSON work, no database and no thread hop.

A stored message whose publish failed (Redis unreachable) is kept in this worker's memory
and published again when the layer reconnects, so that the others still get it once.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Any

from channels.layers import get_channel_layer

logger = logging.getLogger(__name__)

GROUP = "lobby"
EVENT_TYPE = "chat.frame"
MAX_DEFERRED = 1000

# message id -> encoded frame, per event loop: messages stored but not yet published.
_deferred: dict[asyncio.AbstractEventLoop, OrderedDict[int, str]] = {}


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
