"""Reads: history, the sanctions in force, account names and who may moderate."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib.auth import get_user_model

from chat import protocol
from chat.models import Message, Sanction

MODERATE_PERMISSION = "chat.moderate_message"


def message_list_after(*, after: int, limit: int) -> list[Message]:
    """Messages with an id above `after`, oldest first, at most `limit` (the oldest ones)."""
    return list(Message.objects.filter(id__gt=after).order_by("id")[:limit])


def message_list_latest(*, limit: int, after: int = 0) -> tuple[list[Message], bool]:
    """The newest `limit` messages above `after`, oldest first, and whether more were cut."""
    if limit <= 0:
        return [], Message.objects.filter(id__gt=after).exists()
    rows = list(Message.objects.filter(id__gt=after).order_by("-id")[: limit + 1])
    truncated = len(rows) > limit
    rows = rows[:limit]
    rows.reverse()
    return rows, truncated


def message_newest_id() -> int:
    """The id of the newest stored message (0 when there is none)."""
    return Message.objects.order_by("-id").values_list("id", flat=True).first() or 0


def message_oldest_id() -> int | None:
    """The id of the oldest stored message (None when there is none): where history starts
    after a retention prune."""
    return Message.objects.order_by("id").values_list("id", flat=True).first()


def sanctions_active(*, now: datetime) -> list[Sanction]:
    """Mutes and bans in force at `now` (not lifted, not expired), oldest first."""
    return list(Sanction.objects.filter(lifted_at__isnull=True, expires_at__gt=now).order_by("id"))


def account_names() -> set[str]:
    """Every account's username in `protocol.nick_key` form: nicknames a guest may not take.

    One query over all accounts; a worker caches the answer.
    """
    user_model = get_user_model()
    names = user_model.objects.values_list(user_model.USERNAME_FIELD, flat=True)
    return {protocol.nick_key(name) for name in names}


def can_moderate(user: Any) -> bool:
    """Whether `user` may delete messages and mute or ban: an active staff account, or one
    with the `chat.moderate_message` permission (superusers have it); anonymous: False."""
    if user is None or not user.is_authenticated or not user.is_active:
        return False
    return bool(user.is_staff or user.has_perm(MODERATE_PERMISSION))
