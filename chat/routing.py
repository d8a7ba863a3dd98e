"""WebSocket routes."""

from django.urls import path

from chat.consumers import ChatConsumer

websocket_urlpatterns = [
    # django-stubs' path() has no overload for an ASGI application (only for views).
    path("ws/chat/", ChatConsumer.as_asgi()),  # type: ignore[arg-type]
]
