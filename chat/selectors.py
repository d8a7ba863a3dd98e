"""Reads."""

from __future__ import annotations

from chat.models import Message


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
