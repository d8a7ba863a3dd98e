"""Message objects as plain data, shared by the socket, `hello` and the API."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from chat import protocol
from chat.models import Message


def message_to_frame(message: Message) -> dict[str, Any]:
    """The wire `message` object for a stored message."""
    return row_to_frame(
        message.id,
        message.nick,
        message.body,
        message.sent_at,
        message.client_id,
        message.session,
        message.user_id,
    )


def row_to_frame(
    id: int,  # noqa: A002 (the column's name)
    nick: str,
    body: str,
    sent_at: datetime,
    client_id: str | None,
    session: str,
    user_id: int | None,
) -> dict[str, Any]:
    """The wire `message` object from a stored message's columns (`ROW_FIELDS`, in order)."""
    return protocol.message_frame(
        id=id,
        nick=nick,
        body=body,
        sent_at=protocol.isoformat(sent_at),
        client_id=client_id,
        session=session,
        account=user_id is not None,
    )


# The model fields whose columns `row_to_frame` takes, in its order.
ROW_FIELDS = ("id", "nick", "body", "sent_at", "client_id", "session", "user")
