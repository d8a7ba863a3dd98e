"""ASGI middleware around the WebSocket stack."""

from __future__ import annotations

import logging
from typing import Any

from channels.auth import AuthMiddleware
from channels.security import websocket as channels_security
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.conf import settings
from django.contrib.auth.models import AnonymousUser

from chat import metrics

logger = logging.getLogger(__name__)


class RefusedHandshakeLogger:
    """Logs every WebSocket handshake refused (403) by anything inside it: the origin check,
    the per-address cap or an unavailable channel layer. Adds no work to accepted sockets
    beyond one flag check per outgoing event."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        """Wrap `send` to notice a close that comes before any accept."""
        accepted = False

        async def watching_send(message: dict[str, Any]) -> None:
            nonlocal accepted
            kind = message["type"]
            if kind == "websocket.accept":
                accepted = True
            elif kind == "websocket.close" and not accepted:
                headers = dict(scope.get("headers", []))
                client = scope.get("client") or ("-",)
                origin = headers.get(b"origin", b"-").decode("latin-1")
                logger.warning(
                    "handshake refused path=%s client=%s origin=%s",
                    scope.get("path"),
                    client[0],
                    origin,
                    extra={"path": scope.get("path"), "client": client[0], "origin": origin},
                )
            await send(message)

        return await self.app(scope, receive, watching_send)


class ServerSendInScope:
    """Puts the server's own `send` in the scope as `chat.server_send`.

    The consumer uses it for broadcast frames after the handshake, past the middleware
    wrappers (the session middleware inspects the session on every message; nothing a
    `websocket.send` needs). Everything else still goes through the full stack.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        """Record `send`, then call the application unchanged."""
        # In place rather than a copy: the scope is this connection's own (the server made it
        # for this call), and a copy would cost every open socket most of a kilobyte.
        scope["chat.server_send"] = send
        return await self.app(scope, receive, send)


class GuestAwareAuthMiddleware(AuthMiddleware):
    """Channels' AuthMiddleware, except that a handshake without a session cookie is a guest
    at once: Channels would look the (absent) session up in a database thread, one thread hop
    per guest handshake for nothing."""

    async def resolve_scope(self, scope: Any) -> None:  # the stubs: a closed TypedDict
        """The user of the handshake; AnonymousUser when there is no session cookie."""
        if settings.SESSION_COOKIE_NAME not in scope.get("cookies", {}):
            scope["user"]._wrapped = AnonymousUser()
            return
        await super().resolve_scope(scope)


def AuthStack(inner: Any) -> Any:  # noqa: N802 (named like Channels' AuthMiddlewareStack)
    """Channels' AuthMiddlewareStack with the guest fast path."""
    return CookieMiddleware(SessionMiddleware(GuestAwareAuthMiddleware(inner)))


class CountingOriginValidator(channels_security.OriginValidator):
    """Channels' OriginValidator, counting the handshakes it refuses
    (chat_handshakes_refused_total{reason="origin"})."""

    def valid_origin(self, parsed_origin: Any) -> bool:
        """Channels' check; a refusal is counted."""
        valid = bool(super().valid_origin(parsed_origin))
        if not valid:
            metrics.HANDSHAKES_REFUSED.labels(reason=metrics.REFUSED_ORIGIN).inc()
        return valid


def AllowedHostsOriginValidator(inner: Any) -> Any:  # noqa: N802 (named like Channels')
    """Channels' AllowedHostsOriginValidator (origins from ALLOWED_HOSTS), counting refusals."""
    origins = channels_security.AllowedHostsOriginValidator(inner).allowed_origins
    return CountingOriginValidator(inner, origins)
