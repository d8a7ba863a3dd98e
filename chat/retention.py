"""Retention: how long messages are kept, and the prune that enforces it.

`manage.py prune_messages` calls `message_prune`; with no options it applies the
CHAT_RETENTION and CHAT_RETENTION_KEEP settings. Each option says what to keep, and a
message is deleted only when no option keeps it:

- `older_than` (e.g. `30d`): messages sent within that age are kept;
- `keep` (N): the newest N messages are kept, however old.

The delete runs in batches of `batch_size` rows, each in its own short transaction, from the
oldest id up, so that a large prune never holds a long lock on the table; a prune stopped
half way leaves a consistent table (only older messages gone) and can be run again.

What a prune means for the rest of the chat (the README's "Retention" says it to operators):

- Resumes: a resume (`after=ID`) from before the oldest kept message gets `truncated: true`
  (chat.consumers), and /api/messages?after=ID answers from the oldest kept message on.
  Pages accept the pruned ids as a hole, as they do for any id the API does not return.
- Each worker's window of recent messages (chat.recent) drops the pruned ids when the prune
  event reaches it (`chat.broadcast.publish_pruned`); if that event cannot be published
  (Redis down, or the in-memory layer of another process), the windows keep serving those
  messages to fresh joins until newer messages roll them out.
- Pages that already show pruned messages keep showing them: a prune is not a retraction.
- Moderation's `Deletion` rows are not linked to messages (no foreign key, so no cascade
  either way) and are not pruned: they are the moderators' audit trail.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Max

from chat.models import Message

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 1000
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_AGE = re.compile(r"^(\d+)([smhdw])$")


def parse_age(text: str) -> timedelta | None:
    """An age such as `30d`, `12h`, `90m`, `2w` or `45s`; None for `` or `0` (keep all).

    Raises ValueError for anything else.
    """
    value = text.strip().lower()
    if value in ("", "0"):
        return None
    match = _AGE.match(value)
    if match is None:
        raise ValueError(
            f"{text!r} is not an age: a whole number and a unit, s m h d or w (e.g. 30d, 12h)"
        )
    seconds = int(match.group(1)) * UNITS[match.group(2)]
    return timedelta(seconds=seconds) if seconds else None


def format_age(age: timedelta) -> str:
    """An age in the largest unit that divides it exactly (`30d`, `36h`): parse_age's inverse."""
    seconds = int(age.total_seconds())
    for unit, size in sorted(UNITS.items(), key=lambda item: -item[1]):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def cutoff(*, now: datetime, older_than: timedelta | None) -> datetime | None:
    """The send time before which messages are old enough to prune; None: no age limit."""
    return None if older_than is None else now - older_than


def prune_through(bounds: Iterable[int | None]) -> int | None:
    """The highest id a prune may delete, from the bound each given option sets (the
    highest id that option would delete, None when it keeps everything): the lowest bound,
    or None when any option keeps every message."""
    through: int | None = None
    for bound in bounds:
        if bound is None:
            return None
        through = bound if through is None else min(through, bound)
    return through


def resume_cut(*, after: int, oldest: int | None) -> bool:
    """Whether a resume from `after` lost messages to a prune: some id between `after` and
    the oldest stored message is gone (pruned, or a hole the sequence left), so the answer
    is `truncated` and the client fetches what it can from the API."""
    return oldest is not None and after < oldest - 1


@dataclass(frozen=True, slots=True)
class PruneResult:
    """What a prune deleted (or, on a dry run, would delete)."""

    count: int
    batches: int
    # The highest id deleted (or to delete); None when nothing is.
    through: int | None
    dry_run: bool


def _keep_bound(keep: int) -> int | None:
    """The highest id outside the newest `keep` messages; None when there are no more."""
    ids = list(Message.objects.order_by("-id").values_list("id", flat=True)[keep : keep + 1])
    return ids[0] if ids else None


def message_prune(
    *,
    older_than: timedelta | None,
    keep: int | None,
    now: datetime,
    batch_size: int = DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
) -> PruneResult:
    """Delete the messages that neither `older_than` nor `keep` keeps (see the module), in
    batches of `batch_size` rows, one transaction each; then tell every worker's window.

    With neither option, nothing is deleted. `dry_run` counts without deleting.
    """
    batch_size = max(1, batch_size)
    before = cutoff(now=now, older_than=older_than)
    bounds: list[int | None] = []
    if before is not None:
        bounds.append(Message.objects.filter(sent_at__lt=before).aggregate(top=Max("id"))["top"])
    if keep:
        bounds.append(_keep_bound(keep))
    through = prune_through(bounds) if bounds else None
    if through is None:
        return PruneResult(count=0, batches=0, through=None, dry_run=dry_run)
    doomed = Message.objects.filter(id__lte=through)
    if before is not None:
        # Ids follow send times, but not strictly (a clock step): the age decides.
        doomed = doomed.filter(sent_at__lt=before)
    if dry_run:
        count = doomed.count()
        batches = -(-count // batch_size)
        return PruneResult(count=count, batches=batches, through=through, dry_run=True)
    count = batches = 0
    while True:
        with transaction.atomic():
            ids = list(doomed.order_by("id").values_list("id", flat=True)[:batch_size])
            if not ids:
                break
            # One range per batch: the rows between the batch's first and last id.
            deleted, _ = doomed.filter(id__gte=ids[0], id__lte=ids[-1]).delete()
        count += deleted
        batches += 1
    logger.info(
        "messages pruned count=%d through=%s batches=%d",
        count,
        through,
        batches,
        extra={"count": count, "through": through, "batches": batches},
    )
    if count:
        _announce_pruned(through)
    return PruneResult(count=count, batches=batches, through=through, dry_run=False)


def _announce_pruned(through: int) -> None:
    from chat import broadcast

    try:
        broadcast.run_from_sync(broadcast.publish_pruned, through)
    except Exception as exc:
        # Pruned for good; the windows serve those messages until they roll out.
        logger.warning(
            "prune event not published (%s); windows drop the messages as they roll",
            exc,
            extra={"through": through},
        )
