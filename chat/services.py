"""Writes. Consumers and views call these; they never touch the ORM themselves."""

from __future__ import annotations

import logging

from django.db import IntegrityError, transaction

from chat.models import Message

logger = logging.getLogger(__name__)


def message_create(
    *, nick: str, body: str, client_id: str | None, session: str
) -> tuple[Message, bool]:
    """Store a message; return it and whether it is new.

    Idempotent by `client_id`: a second call with a stored `client_id` stores nothing and
    returns the original message, so a resend after a reconnect is safe.
    """
    if client_id is not None:
        existing = Message.objects.filter(client_id=client_id).first()
        if existing is not None:
            return existing, False
    try:
        with transaction.atomic():
            message = Message.objects.create(
                nick=nick, body=body, client_id=client_id, session=session
            )
    except IntegrityError:
        # Two resends raced; the other one won.
        if client_id is None:
            raise
        return Message.objects.get(client_id=client_id), False
    return message, True
