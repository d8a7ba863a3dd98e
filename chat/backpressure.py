"""A bound on what daphne buffers for a client that reads slowly or not at all.

ASGI has no backpressure for `websocket.send`: daphne writes every frame into the socket's
Twisted transport, whose buffer grows without limit when the client does not read. This hook
checks that buffer before each frame; past CHAT_MAX_BACKLOG bytes the connection is aborted,
the consumer gets its `disconnect()`, and the worker's memory stays bounded (at most the
kernel's socket buffer plus the backlog per client). Everyone else is unaffected: the check
is one addition per frame, and frames are never delayed.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

logger = logging.getLogger(__name__)


def buffered_bytes(transport: Any) -> int:
    """Bytes waiting in a Twisted transport's user-space write buffer."""
    data = getattr(transport, "dataBuffer", b"")
    offset = getattr(transport, "offset", 0)
    return len(data) - offset + getattr(transport, "_tempDataLen", 0)


# True once daphne's send path is bounded here: sends then never wait for a slow client, so
# the channel layer may deliver to every local socket in one loop (see chat.layers.attach).
installed = False


def sends_never_block() -> bool:
    """Whether the server's `websocket.send` returns without waiting for the client."""
    return installed


def install(*, max_backlog: int) -> bool:
    """Patch daphne's frame sending if daphne is the server; True when installed."""
    if not max_backlog or "daphne.ws_protocol" not in sys.modules:
        return False
    from daphne.ws_protocol import WebSocketProtocol

    global installed
    if getattr(WebSocketProtocol.serverSend, "_chat_bounded", False):
        installed = True
        return True
    original = WebSocketProtocol.serverSend

    def serverSend(self: Any, content: Any, binary: bool = False) -> None:
        if self.state == self.STATE_OPEN and buffered_bytes(self.transport) > max_backlog:
            logger.warning(
                "slow client %s: over %d bytes unsent; disconnecting",
                self.client_addr[0] if self.client_addr else "-",
                max_backlog,
            )
            self.dropConnection(abort=True)
            return
        original(self, content, binary)

    serverSend._chat_bounded = True  # type: ignore[attr-defined]
    WebSocketProtocol.serverSend = serverSend
    installed = True
    return True
