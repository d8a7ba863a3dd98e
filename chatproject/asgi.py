"""ASGI entry point: HTTP through Django, WebSockets through Channels."""

import logging
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatproject.settings")
# Build the Django app first: it sets up the app registry that routing's imports need.
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from chat import daphne_server  # noqa: E402
from chat.middleware import (  # noqa: E402
    AllowedHostsOriginCheck,
    AuthStack,
    RefusedHandshakeLogger,
    ServerSendInScope,
)
from chat.routing import websocket_urlpatterns  # noqa: E402
from chat.warmup import warm_up  # noqa: E402

# When `daphne` starts this application: its server becomes chat.daphne_server's subclass
# (frames built once and written to every socket, slow readers cut off past
# CHAT_MAX_BACKLOG, sockets closed with 1012 on SIGTERM). Other servers are left alone.
daphne_server.install(
    max_backlog=settings.CHAT_MAX_BACKLOG,
    grace=settings.CHAT_SHUTDOWN_GRACE,
    listen_backlog=settings.CHAT_LISTEN_BACKLOG,
    fast_handshake=settings.CHAT_FAST_HANDSHAKE,
    fast_write=settings.CHAT_FAST_WRITE,
    # JSON logs: daphne's access log goes through logging too (one JSON object per line).
    access_via_logging=settings.LOG_FORMAT == "json",
    # Sanctions and the layer's subscription (with its window) loaded as the worker starts,
    # not by its first socket (a restarted worker's pages all reconnect at once).
    warm_up=warm_up,
)

if settings.CHANNEL_LAYERS["default"]["BACKEND"] == "channels.layers.InMemoryChannelLayer":
    logging.getLogger("chatproject").warning(
        "REDIS_URL is not set: using the in-memory channel layer, which works in a single "
        "process only. Set REDIS_URL to run several workers."
    )

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": ServerSendInScope(
            RefusedHandshakeLogger(
                AllowedHostsOriginCheck(AuthStack(URLRouter(websocket_urlpatterns)))
            )
        ),
    }
)
