"""Graceful shutdown under daphne: close every socket with 1012 before the worker exits.

On SIGTERM daphne cancels its application instances and drops their sockets without a close
frame, so consumers never run `disconnect()` and pages cannot tell a deploy from a network
failure. This hook runs first: it sends each open socket a close frame with 1012 ("service
restart", RFC 6455), waits up to CHAT_SHUTDOWN_GRACE seconds for the closing handshakes (so
consumers leave the online list), then lets daphne cancel whatever is left.

The application cannot send 1012 through ASGI (autobahn accepts only 1000 and 3000-4999 from
applications), so the frame is sent through the protocol object, which is why this lives
beside daphne rather than in the consumer.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any

from chat.protocol import CLOSE_SERVICE_RESTART

logger = logging.getLogger(__name__)


async def _wait_done(instances: list[asyncio.Future[Any]], grace: float) -> None:
    if instances:
        await asyncio.wait(instances, timeout=grace)
    # Let the last presence broadcasts go out.
    await asyncio.sleep(min(0.3, grace))


def install(*, grace: float) -> bool:
    """Patch daphne's shutdown if daphne is the server; True when installed."""
    server_module = sys.modules.get("daphne.server")
    if server_module is None:
        return False
    from daphne.ws_protocol import WebSocketProtocol
    from twisted.internet import defer

    server_class = server_module.Server
    if getattr(server_class.kill_all_applications, "_chat_graceful", False):
        return True
    original = server_class.kill_all_applications

    def kill_all_applications(self: Any) -> Any:
        closing = []
        for protocol, details in list(self.connections.items()):
            if isinstance(protocol, WebSocketProtocol) and protocol.state == protocol.STATE_OPEN:
                protocol.sendCloseFrame(code=CLOSE_SERVICE_RESTART, isReply=False)
                instance = details.get("application_instance")
                if instance is not None and not instance.done():
                    closing.append(instance)
        logger.info("shutting down: closed %d sockets with 1012", len(closing))
        if not closing or grace <= 0:
            return original(self)
        waited = defer.Deferred.fromFuture(asyncio.ensure_future(_wait_done(closing, grace)))
        waited.addBoth(lambda _: original(self))
        return waited

    kill_all_applications._chat_graceful = True  # type: ignore[attr-defined]
    server_class.kill_all_applications = kill_all_applications
    return True
