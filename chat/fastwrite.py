"""Under daphne: write a frame to the socket at once when nothing is waiting before it.

Twisted's transports always buffer a write and send it a loop turn later, registering the
socket for writability and unregistering it afterwards: two epoll changes and a callback
per frame. For a broadcast that is most of a delivery's cost (docs/performance.md). When
the transport's buffer is empty, this sends straight away, as asyncio's own transports do;
whatever the kernel does not take is buffered by Twisted as before, so the order of bytes
never changes. TLS connections and non-bytes data take Twisted's usual path.

Switched by CHAT_FAST_WRITE (on by default).
"""

from __future__ import annotations

import logging
import sys
from typing import Any

logger = logging.getLogger(__name__)


def install() -> bool:
    """Patch Twisted's FileDescriptor.write for TCP connections; True when installed."""
    if "daphne.server" not in sys.modules:
        return False
    from twisted.internet import abstract, tcp

    original = abstract.FileDescriptor.write
    if getattr(original, "_chat_fast", False):
        return True

    def write(self: Any, data: bytes) -> None:
        if (
            type(data) is bytes
            and data
            and isinstance(self, tcp.Connection)
            and self.connected
            and not self._writeDisconnected
            and not self.disconnecting
            and not self._tempDataBuffer
            and len(self.dataBuffer) == self.offset
        ):
            sent = self.writeSomeData(data)
            if isinstance(sent, int):
                if sent == len(data):
                    return
                data = data[sent:]
        original(self, data)

    write._chat_fast = True  # type: ignore[attr-defined]
    abstract.FileDescriptor.write = write
    return True
