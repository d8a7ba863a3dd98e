"""What the chat stores."""

from django.db import models


class Message(models.Model):
    """One chat message; its `id` is the order everyone sees."""

    nick = models.CharField(max_length=32)
    # No max_length on the column: the body limit is a setting (CHAT_MAX_BODY) checked in
    # chat.protocol, counting code points as PostgreSQL's char_length and SQLite's length do.
    body = models.TextField()
    sent_at = models.DateTimeField(auto_now_add=True)
    # Set by the client so that a resend after a reconnect is stored once.
    client_id = models.CharField(max_length=64, null=True, blank=True, unique=True)
    # The sender's connection id (not a user account: the chat is anonymous).
    session = models.CharField(max_length=32)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"#{self.id} {self.nick}"
