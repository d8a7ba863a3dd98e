"""What the chat stores: messages, the audit trail of their deletions, and sanctions.

Sanctions live in the database so that they survive restarts; each worker keeps its own
in-memory copy (chat.sanctions) and reloads it when told through the channel layer.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q


class Message(models.Model):
    """One chat message; its `id` is the order everyone sees."""

    nick = models.CharField(max_length=32)
    # No max_length on the column: the body limit is a setting (CHAT_MAX_BODY) checked in
    # chat.protocol, counting code points as PostgreSQL's char_length and SQLite's length do.
    body = models.TextField()
    sent_at = models.DateTimeField(auto_now_add=True)
    # Set by the client so that a resend after a reconnect is stored once.
    client_id = models.CharField(max_length=64, null=True, blank=True, unique=True)
    # The sender's connection id (guests have no account).
    session = models.CharField(max_length=32)
    # The sender's account when signed in; kept as NULL when the account is deleted.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="chat_messages",
    )
    # The sender's client address, so that a moderator can mute or ban a guest by address.
    # Never sent to pages or the API.
    address = models.CharField(max_length=45, blank=True, default="")

    class Meta:
        ordering = ["id"]
        permissions = [("moderate_message", "Can moderate the chat (delete, mute, ban)")]
        # The admin filters and orders by time.
        indexes = [models.Index(fields=["sent_at"], name="chat_message_sent_at_idx")]

    def __str__(self) -> str:
        return f"#{self.id} {self.nick}"


class Deletion(models.Model):
    """The audit record of one deleted message: what it said, who sent it, who removed it."""

    class Via(models.TextChoices):
        PAGE = "page", "page"
        ADMIN = "admin", "admin"

    # Not a foreign key: the message row is gone.
    message_id = models.BigIntegerField(db_index=True)
    nick = models.CharField(max_length=32)
    body = models.TextField()
    sent_at = models.DateTimeField()
    session = models.CharField(max_length=32)
    sender = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    deleted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="chat_deletions",
    )
    deleted_at = models.DateTimeField(db_index=True)
    via = models.CharField(max_length=8, choices=Via.choices)

    class Meta:
        ordering = ["-deleted_at", "-id"]

    def __str__(self) -> str:
        return f"#{self.message_id} {self.nick} (deleted)"


class Sanction(models.Model):
    """A mute or a ban of one account, guest session or client address, until `expires_at`."""

    class Kind(models.TextChoices):
        MUTE = "mute", "mute"
        BAN = "ban", "ban"

    kind = models.CharField(max_length=8, choices=Kind.choices)
    # Exactly one target (see the constraint below).
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="chat_sanctions",
    )
    # NULL, not "", when absent: the constraint counts the targets that are not NULL.
    session = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    address = models.GenericIPAddressField(null=True, blank=True)
    expires_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    reason = models.CharField(max_length=200, blank=True)
    # Set when a moderator ends the sanction early; the row stays for the record.
    lifted_at = models.DateTimeField(null=True, blank=True)
    lifted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    Q(user__isnull=False, session__isnull=True, address__isnull=True)
                    | Q(user__isnull=True, session__isnull=False, address__isnull=True)
                    | Q(user__isnull=True, session__isnull=True, address__isnull=False)
                ),
                name="chat_sanction_exactly_one_target",
            ),
            models.CheckConstraint(
                condition=Q(kind__in=["mute", "ban"]), name="chat_sanction_kind_valid"
            ),
        ]
        # What chat.selectors.sanctions_active reads: the ones not lifted, by expiry.
        indexes = [
            models.Index(
                fields=["expires_at"],
                name="chat_sanction_open_idx",
                condition=Q(lifted_at__isnull=True),
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.target}"

    @property
    def target(self) -> str:
        """Who is sanctioned, for display."""
        if self.user_id is not None:
            return f"user {self.user_id}"
        if self.session is not None:
            return f"session {self.session}"
        return f"address {self.address}"
