"""ASGI middleware around the WebSocket stack."""

from __future__ import annotations

import contextlib
import logging
from typing import Any
from urllib.parse import urlparse

from channels.auth import AuthMiddleware
from channels.security.websocket import AllowedHostsOriginValidator, OriginValidator
from channels.sessions import CookieMiddleware, SessionMiddleware
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.db import DatabaseError

from chat import metrics

logger = logging.getLogger(__name__)

# Set in the scope by a middleware that found the handshake cannot go on; the consumer
# refuses it with this reason before doing anything else.
REFUSAL = "chat.refusal"
DATABASE_DOWN = "the database is unavailable; try again shortly"


# The ASGI extension for an HTTP response in place of a WebSocket handshake ("denial
# response"); uvicorn offers it, and daphne through chat.daphne_server.
DENIAL_EXTENSION = "websocket.http.response"
# Longest Origin value repeated in a refusal's body and log line.
_MAX_ORIGIN_SHOWN = 100


async def refuse(receive: Any, send: Any, *, reason: str) -> None:
    """Refuse a handshake before any consumer runs: close before accepting, saying why.

    `RefusedHandshakeLogger` logs the reason and, where the server allows it, sends it as
    the body of the 403.
    """
    message = await receive()
    if message["type"] == "websocket.connect":
        await send({"type": "websocket.close", "reason": reason})


class RefusedHandshakeLogger:
    """Logs every WebSocket handshake refused by anything inside it (the origin check, the
    per-address cap, a ban, Redis or the database unavailable), with the reason given in the
    `websocket.close` (ASGI's `reason`), and tells the client that reason: where the server
    offers the `websocket.http.response` extension, the refusal becomes a 403 whose plain-text
    body is the reason; elsewhere a bare 403. Adds no work to accepted sockets beyond one flag
    check per outgoing event."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        """Wrap `send` to notice a close that comes before any accept."""
        accepted = False
        denied = False

        async def watching_send(message: dict[str, Any]) -> None:
            nonlocal accepted, denied
            kind = message["type"]
            if kind == "websocket.accept":
                accepted = True
            elif kind == "websocket.close" and not accepted:
                if denied:
                    return  # already answered with a denial response
                reason = message.get("reason") or "refused by the application"
                headers = dict(scope.get("headers", []))
                client = scope.get("client") or ("-",)
                origin = headers.get(b"origin", b"-").decode("latin-1")[:_MAX_ORIGIN_SHOWN]
                logger.warning(
                    "handshake refused: %s path=%s client=%s origin=%s",
                    reason,
                    scope.get("path"),
                    client[0],
                    origin,
                    extra={"path": scope.get("path"), "client": client[0], "origin": origin},
                )
                if DENIAL_EXTENSION in (scope.get("extensions") or {}):
                    denied = True
                    await send(
                        {
                            "type": "websocket.http.response.start",
                            "status": 403,
                            "headers": [(b"content-type", b"text/plain; charset=utf-8")],
                        }
                    )
                    body = f"WebSocket handshake refused: {reason}\n".encode()
                    await send({"type": "websocket.http.response.body", "body": body})
                    return
            await send(message)

        return await self.app(scope, receive, watching_send)


class ExplainingOriginValidator(OriginValidator):
    """Channels' `OriginValidator`, whose refusal says why (a missing or a foreign origin)."""

    # Answers for the Origin values seen (a page's handful; bounded against a flood of
    # made-up ones): parsing and matching an origin on every handshake is work for nothing.
    _MAX_REMEMBERED = 256

    def __init__(self, application: Any, allowed_origins: Any) -> None:
        super().__init__(application, allowed_origins)
        self._remembered: dict[bytes | None, bool] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
        """Pass an allowed origin on; refuse any other with a reason."""
        raw = None
        for name, value in scope.get("headers", ()):
            if name == b"origin":
                raw = value  # the last one, as Channels reads it
        remembered = self._remembered
        valid = remembered.get(raw)
        if valid is None:
            parsed = None
            if raw is not None:
                with contextlib.suppress(UnicodeDecodeError, ValueError):
                    parsed = urlparse(raw.decode("latin-1"))
            valid = bool(self.valid_origin(parsed))
            if len(remembered) >= self._MAX_REMEMBERED:
                remembered.clear()
            remembered[raw] = valid
        if valid:
            application: Any = self.application
            return await application(scope, receive, send)
        if raw is None:
            reason = (
                "no Origin header; a client other than a browser must send one naming a host "
                "this server allows (DJANGO_ALLOWED_HOSTS)"
            )
        else:
            shown = raw.decode("latin-1")[:_MAX_ORIGIN_SHOWN]
            reason = f"origin {shown!r} is not allowed (DJANGO_ALLOWED_HOSTS)"
        metrics.HANDSHAKES_REFUSED.labels(reason=metrics.REFUSED_ORIGIN).inc()
        return await refuse(receive, send, reason=reason)


def AllowedHostsOriginCheck(application: Any) -> ExplainingOriginValidator:
    """Channels' `AllowedHostsOriginValidator` (the hosts of ALLOWED_HOSTS) with reasons."""
    base = AllowedHostsOriginValidator(application)
    return ExplainingOriginValidator(base.application, base.allowed_origins)


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
        """The user of the handshake; AnonymousUser when there is no session cookie.

        When the session cannot be read (the database is down), the scope says so in
        `chat.refusal` and the consumer refuses the handshake with that reason.
        """
        if settings.SESSION_COOKIE_NAME not in scope.get("cookies", {}):
            scope["user"]._wrapped = AnonymousUser()
            return
        try:
            await super().resolve_scope(scope)
        except DatabaseError:
            scope["user"]._wrapped = AnonymousUser()
            scope[REFUSAL] = DATABASE_DOWN


class AuthStack:
    """Channels' AuthMiddlewareStack (cookies, session, user) for a handshake that carries a
    session cookie; any other is a guest at once.

    A guest's handshake would otherwise pay for parsing cookies, a lazy session, a lazy
    user, three scope copies and a wrapper around every `send` that inspects the session
    (that wrapper alone was 6 % of a connect storm's samples), all to find no session. A
    Cookie header that so much as names the session cookie takes the full stack, so a
    signed-in user always gets the account.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.full = CookieMiddleware(SessionMiddleware(GuestAwareAuthMiddleware(inner)))
        self._cookie_name = settings.SESSION_COOKIE_NAME.encode("latin-1")

    async def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
        """The full stack with a session cookie; else the inner application, as a guest."""
        for name, value in scope.get("headers", ()):
            if name == b"cookie" and self._cookie_name in value:
                return await self.full(scope, receive, send)
        # In place: the scope is this connection's own (see ServerSendInScope).
        scope["user"] = AnonymousUser()
        return await self.inner(scope, receive, send)
