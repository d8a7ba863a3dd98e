"""Message objects as plain data, shared by the socket, `hello` and the API."""

from __future__ import annotations

from typing import Any

from chat import protocol
from chat.models import Message


def message_to_frame(message: Message) -> dict[str, Any]:
    """The wire `message` object for a stored message."""
    return protocol.message_frame(
        id=message.id,
        nick=message.nick,
        body=message.body,
        sent_at=protocol.isoformat(message.sent_at),
        client_id=message.client_id,
        session=message.session,
        account=message.user_id is not None,
    )
