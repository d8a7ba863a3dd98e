"""A worker's memory of the latest messages, so that joins and recent resumes need no database.

The window holds the encoded frames of the newest messages this worker knows of, and a
`floor`: every stored message with an id above the floor is in the window. It is filled from
the database when the worker's layer subscription starts (and again after every
resubscription), and extended by the broadcast stream in between. A fresh join takes its
history from here; a resume with `after` at or above the floor too; an older resume goes to
the database.

It is also the worker's filter against duplicates: a message this worker already delivered
(a message published again after a Redis outage, or pushed by a catch-up) is not delivered
twice. A message the window learned only from the database (its publish may still be on
its way) is delivered when the stream brings it.

Plain data, no I/O: `chat.broadcast` feeds it and does the database reads.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable


class RecentWindow:
    """The newest `capacity` messages a worker knows of, by id."""

    def __init__(self, *, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self.ids: list[int] = []
        self.texts: dict[int, str] = {}
        # Every stored message with an id above `floor` is held. Until the first fill,
        # nothing is known to be complete.
        self.floor: int | None = None
        # Held ids read from the database and not (yet) delivered by this worker.
        self.undelivered: set[int] = set()

    @property
    def ready(self) -> bool:
        """Whether the window has been filled from the database."""
        return self.floor is not None

    def __contains__(self, message_id: int) -> bool:
        return message_id in self.texts

    def add(self, message_id: int, text: str) -> bool:
        """Take one message from the stream; False when this worker already delivered it."""
        if message_id in self.texts:
            if message_id in self.undelivered:
                self.undelivered.discard(message_id)
                return True
            return False
        if self.floor is not None and message_id <= self.floor:
            # Older than what the window covers (e.g. published late): deliver, don't keep.
            return True
        ids = self.ids
        if not ids or message_id > ids[-1]:
            ids.append(message_id)
        else:
            bisect.insort(ids, message_id)
        self.texts[message_id] = text
        self._trim()
        return True

    def fill(self, rows: Iterable[tuple[int, str]], *, floor: int) -> list[tuple[int, str]]:
        """Merge rows read from the database, complete above `floor`.

        Returns the rows the window did not hold before, oldest first, that are newer than
        what it already covered: what this worker's sockets may have missed, which the caller
        delivers now. On the first fill there is no such thing: the rows are history (or
        messages whose publish is still on its way, delivered when it arrives).
        """
        old_floor = self.floor
        learned = []
        for message_id, text in rows:
            if message_id in self.texts:
                continue
            if old_floor is not None and message_id > old_floor:
                learned.append((message_id, text))
            else:
                self.undelivered.add(message_id)
            self.texts[message_id] = text
        self.ids = sorted(self.texts)
        # The database's answer is complete above `floor`, whatever the window held before.
        self.floor = floor
        self._trim()
        learned.sort()
        return learned

    def remove(self, message_id: int) -> None:
        """Forget a message (it was deleted)."""
        self.undelivered.discard(message_id)
        if self.texts.pop(message_id, None) is not None:
            index = bisect.bisect_left(self.ids, message_id)
            del self.ids[index]

    def prune(self, through: int) -> None:
        """Forget every message up to id `through` (a retention prune deleted them): resumes
        from there on go to the database, which answers `truncated`."""
        cut = bisect.bisect_right(self.ids, through)
        for message_id in self.ids[:cut]:
            del self.texts[message_id]
            self.undelivered.discard(message_id)
        del self.ids[:cut]
        if self.floor is not None:
            self.floor = max(self.floor, through)

    def newest(self) -> int | None:
        """The newest id this worker knows of (0: no message at all), or None before the
        first fill. With nothing held, everything up to `floor` is known to be gone."""
        if self.floor is None:
            return None
        return self.ids[-1] if self.ids else self.floor

    def latest(self, limit: int) -> list[tuple[int, str]]:
        """The newest `limit` messages, oldest first."""
        if limit <= 0:
            return []
        return [(i, self.texts[i]) for i in self.ids[-limit:]]

    def after(self, after: int, *, limit: int) -> tuple[list[tuple[int, str]], bool] | None:
        """The newest `limit` messages above `after`, oldest first, and whether more were
        cut; None when the window does not cover `after` (the database must answer)."""
        if self.floor is None or after < self.floor:
            return None
        start = bisect.bisect_right(self.ids, after)
        newer = self.ids[start:]
        truncated = len(newer) > limit
        if truncated:
            newer = newer[-limit:] if limit > 0 else []
        return [(i, self.texts[i]) for i in newer], truncated

    def _trim(self) -> None:
        excess = len(self.ids) - self.capacity
        if excess > 0:
            dropped = self.ids[:excess]
            del self.ids[:excess]
            for message_id in dropped:
                del self.texts[message_id]
                self.undelivered.discard(message_id)
            # Everything above the newest dropped id is still held.
            if self.floor is not None:
                self.floor = max(self.floor, dropped[-1])
