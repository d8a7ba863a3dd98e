"""ASGI entry point: HTTP through Django, WebSockets through Channels."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatproject.settings")
# Build the Django app first: it sets up the app registry that routing's imports need.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.conf import settings  # noqa: E402

from chat import backpressure, fastwrite, shutdown  # noqa: E402
from chat.middleware import RefusedHandshakeLogger, ServerSendInScope  # noqa: E402
from chat.routing import websocket_urlpatterns  # noqa: E402

# Under daphne: close sockets with 1012 on SIGTERM instead of dropping them.
shutdown.install(grace=settings.CHAT_SHUTDOWN_GRACE)
# Under daphne: disconnect a client whose unsent frames pass CHAT_MAX_BACKLOG bytes.
backpressure.install(max_backlog=settings.CHAT_MAX_BACKLOG)
# Under daphne: send a frame at once when nothing is buffered before it.
if settings.CHAT_FAST_WRITE:
    fastwrite.install()

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": ServerSendInScope(
            RefusedHandshakeLogger(
                AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
            )
        ),
    }
)
