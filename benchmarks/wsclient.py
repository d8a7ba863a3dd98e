"""A minimal WebSocket client protocol for the load generator.

The `websockets` client costs tens of microseconds per received frame; with 1,000 clients
receiving 50 messages per second that alone would need more than a core, and the load
generator would measure itself. This client parses the unmasked frames a server sends in a
tight loop and hands each text payload (bytes, not decoded) to a callback.

Limits: text frames only (binary payloads are handed over the same way), no extensions
(no permessage-deflate is offered), pings are answered, close frames end the connection.
Loopback only; it is a measuring tool, not a general client.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Callable

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


def _mask(payload: bytes, key: bytes) -> bytes:
    """XOR the payload with the 4-byte key (one big-integer operation, cheap for short text)."""
    if not payload:
        return payload
    repeated = (key * (len(payload) // 4 + 1))[: len(payload)]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(
        len(payload), "big"
    )


def encode_frame(opcode: int, payload: bytes) -> bytes:
    """A masked client frame (RFC 6455 requires clients to mask)."""
    key = os.urandom(4)
    length = len(payload)
    if length < 126:
        header = bytes((0x80 | opcode, 0x80 | length))
    elif length < 65536:
        header = bytes((0x80 | opcode, 0x80 | 126)) + length.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + length.to_bytes(8, "big")
    return header + key + _mask(payload, key)


class WSClient(asyncio.Protocol):
    """One client socket: handshake, then every text payload goes to `on_text(self, payload)`."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        path: str,
        on_text: Callable[[WSClient, bytes], None],
        on_close: Callable[[WSClient], None] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.path = path
        self.on_text = on_text
        self.on_close = on_close
        self.transport: asyncio.Transport | None = None
        self.upgraded = asyncio.get_running_loop().create_future()
        self.closed = False
        self._buf = bytearray()
        self._fragments: list[bytes] = []
        self._open = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET {self.path} HTTP/1.1\r\n"
            f"Host: {self.host}:{self.port}\r\n"
            "Upgrade: websocket\r\n"
            "Connection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n"
            f"Origin: http://{self.host}:{self.port}\r\n"
            "\r\n"
        )
        transport.write(request.encode())

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        if not self._open:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > 65536:
                    self._fail(ConnectionError("handshake response too long"))
                return
            status = bytes(buf[: buf.find(b"\r\n")])
            if b" 101 " not in status:
                self._fail(ConnectionError(f"handshake refused: {status.decode(errors='replace')}"))
                return
            del buf[: end + 4]
            self._open = True
            if not self.upgraded.done():
                self.upgraded.set_result(None)
        while True:
            size = len(buf)
            if size < 2:
                return
            b0 = buf[0]
            length = buf[1] & 0x7F
            pos = 2
            if length == 126:
                if size < 4:
                    return
                length = int.from_bytes(buf[2:4], "big")
                pos = 4
            elif length == 127:
                if size < 10:
                    return
                length = int.from_bytes(buf[2:10], "big")
                pos = 10
            if buf[1] & 0x80:  # a masked server frame is a protocol error; read it anyway
                pos += 4
            end = pos + length
            if size < end:
                return
            payload = bytes(buf[pos:end])
            del buf[:end]
            opcode = b0 & 0x0F
            if opcode in (OP_TEXT, OP_BINARY):
                if b0 & 0x80:
                    self.on_text(self, payload)
                else:
                    self._fragments = [payload]
            elif opcode == OP_CONT:
                self._fragments.append(payload)
                if b0 & 0x80:
                    whole = b"".join(self._fragments)
                    self._fragments = []
                    self.on_text(self, whole)
            elif opcode == OP_PING:
                self.write(encode_frame(OP_PONG, payload))
            elif opcode == OP_CLOSE:
                self.write(encode_frame(OP_CLOSE, payload[:2]))
                self.close()
                return

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.closed:
            self.transport.write(data)

    def send_text(self, text: str) -> None:
        """Send one text frame (no await: the loopback socket buffer absorbs it)."""
        self.write(encode_frame(OP_TEXT, text.encode()))

    def close(self) -> None:
        """Drop the connection (no closing handshake: the server sees a disconnect)."""
        if self.transport is not None:
            self.transport.close()

    def _fail(self, exc: Exception) -> None:
        if not self.upgraded.done():
            self.upgraded.set_exception(exc)
        self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if not self.upgraded.done():
            self.upgraded.set_exception(exc or ConnectionError("closed during handshake"))
        if self.on_close is not None:
            self.on_close(self)
