from django.apps import AppConfig


class ChatConfig(AppConfig):
    """The lobby chat."""

    name = "chat"
    default_auto_field = "django.db.models.BigAutoField"
