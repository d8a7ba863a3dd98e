"""`manage.py prune_messages`: delete old messages in batches (chat.retention)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from chat import retention


class Command(BaseCommand):
    help = (
        "Delete messages that neither --older-than nor --keep keeps, in batches. Without "
        "either option, applies CHAT_RETENTION and CHAT_RETENTION_KEEP."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        """The options: what to keep, the batch size, and a dry run."""
        parser.add_argument(
            "--older-than",
            metavar="AGE",
            help="delete messages older than AGE, e.g. 30d, 12h, 90m, 2w (0: no age limit)",
        )
        parser.add_argument(
            "--keep", type=int, metavar="N", help="always keep the newest N messages"
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=None,
            metavar="ROWS",
            help="rows deleted per transaction (default: CHAT_PRUNE_BATCH)",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="print what would be deleted; delete nothing"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Prune once and say what was (or would be) deleted."""
        older_than, keep = self._policy(options["older_than"], options["keep"])
        if older_than is None and not keep:
            self.stdout.write(
                "No retention set (CHAT_RETENTION, --older-than, --keep): nothing to do."
            )
            return
        batch_size = options["batch_size"] or settings.CHAT_PRUNE_BATCH
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        result = retention.message_prune(
            older_than=older_than,
            keep=keep,
            now=timezone.now(),
            batch_size=batch_size,
            dry_run=options["dry_run"],
        )
        rule = _describe(older_than, keep)
        if result.dry_run:
            self.stdout.write(
                f"Would delete {result.count} messages ({rule}) through id {result.through}, "
                f"in {result.batches} batches of up to {batch_size}."
                if result.count
                else f"Would delete nothing ({rule})."
            )
        else:
            self.stdout.write(
                f"Deleted {result.count} messages ({rule}) through id {result.through}, "
                f"in {result.batches} batches."
                if result.count
                else f"Deleted nothing ({rule})."
            )

    def _policy(self, age: str | None, keep: int | None) -> tuple[timedelta | None, int | None]:
        """The options given, or else the settings."""
        if age is None and keep is None:
            age, keep = settings.CHAT_RETENTION, settings.CHAT_RETENTION_KEEP or None
        if keep is not None and keep < 0:
            raise CommandError("--keep must not be negative.")
        try:
            return retention.parse_age(age or ""), keep
        except ValueError as exc:
            raise CommandError(str(exc)) from None


def _describe(older_than: timedelta | None, keep: int | None) -> str:
    parts = []
    if older_than is not None:
        parts.append(f"older than {retention.format_age(older_than)}")
    if keep:
        parts.append(f"beyond the newest {keep}")
    return " and ".join(parts)
