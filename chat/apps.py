from django.apps import AppConfig


class ChatConfig(AppConfig):
    """The lobby chat. (The in-memory layer's warning comes from chatproject/asgi.py: once
    per serving process, after logging is configured, so in DJANGO_LOG_FORMAT too.)"""

    name = "chat"
    # The primary key type is DEFAULT_AUTO_FIELD in chatproject/settings.py (one place).
