"""The broadcast hot path: one layer publish per message, one encoded frame for every socket.

The frame is encoded once by the sender's worker; each consumer's `chat_frame` handler only
forwards the text, with no JSON work, no database and no thread hop.
"""

from __future__ import annotations

from typing import Any

from channels.layers import get_channel_layer

GROUP = "lobby"
EVENT_TYPE = "chat.frame"


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
