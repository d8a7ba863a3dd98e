import logging

from django.apps import AppConfig
from django.conf import settings


class ChatConfig(AppConfig):
    """The lobby chat."""

    name = "chat"
    # The primary key type is DEFAULT_AUTO_FIELD in chatproject/settings.py (one place).

    def ready(self) -> None:
        """Warn about the in-memory layer here, not in settings: logging is configured now,
        so the line comes out in DJANGO_LOG_FORMAT like every other."""
        if not settings.REDIS_URL:
            logging.getLogger("chatproject").warning(
                "REDIS_URL is not set: using the in-memory channel layer, which works in a "
                "single process only. Set REDIS_URL to run several workers."
            )
