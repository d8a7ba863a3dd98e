from django.apps import AppConfig


class ChatConfig(AppConfig):
    """The lobby chat."""

    name = "chat"
    # The primary key type is DEFAULT_AUTO_FIELD in chatproject/settings.py (one place).
