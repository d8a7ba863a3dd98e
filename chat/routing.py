"""WebSocket routes."""

from typing import Any

from django.urls import path

from chat.consumers import ChatConsumer

# Any: types-channels' URLRouter wants a pattern type of its own, which path() never returns.
websocket_urlpatterns: list[Any] = [
    # django-stubs' path() has no overload for an ASGI application (only for views).
    path("ws/chat/", ChatConsumer.as_asgi()),  # type: ignore[arg-type]
]
