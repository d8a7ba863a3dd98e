"""A worker's Redis subscription, read without redis-py's work per message.

Every message of the chat reaches every worker through one subscription connection.
redis-py's `PubSub.get_message` reads one reply per call, through its retry wrapper, a
timeout context, its parser's buffers and a dict per message: about 150 µs of a worker's
CPU per message received here, more than the fan-out of that message to 50 sockets. This
module reads the same connection's bytes in chunks and hands each complete message, parsed
by hiredis's reader, to a callback at once: under load one read carries many messages.

redis-py still makes the connection (address, TLS, AUTH, `HELLO`, `SELECT` from the URL's
options). After that the subscription only writes its commands to the connection's stream
and reads from it, the two attributes of redis-py's `Connection` it relies on
(`_reader`, `_writer`); tests/test_subscription.py fails when they move.

Health: a connection quiet for `idle_ping` seconds gets a `PING`; one that stays quiet
for another `idle_ping` is taken for dead (ConnectionError), as redis-py's health checks
would find it, and the layer subscribes again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import hiredis
from redis import asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

# (channel, data) of one message; the pattern it matched is not needed.
OnMessage = Callable[[bytes, bytes], None]

# hiredis returns this when a reply is incomplete (False is a valid RESP3 reply).
_INCOMPLETE = object()
_READ_SIZE = 65536
_PING = b"*1\r\n$4\r\nPING\r\n"


class Subscription:
    """One subscription connection: subscribe, then deliver each message as it arrives."""

    def __init__(self, client: aioredis.Redis, *, idle_ping: float = 5.0) -> None:
        self.client = client
        self.idle_ping = idle_ping
        # redis-py's asyncio Connection (its stream attributes are untyped).
        self._connection: Any = None
        self._parser = hiredis.Reader(notEnoughData=_INCOMPLETE)
        self._ping_sent = False

    async def open(
        self, *, patterns: Sequence[str], channels: Sequence[str], on_message: OnMessage
    ) -> None:
        """Connect and subscribe; return once Redis confirmed every subscription. Messages
        that arrive meanwhile go to `on_message` too."""
        connection: Any = self.client.connection_pool.make_connection()  # type: ignore[no-untyped-call]
        self._connection = connection
        await connection.connect()
        commands = []
        if patterns:
            commands += connection.pack_command("PSUBSCRIBE", *patterns)
        if channels:
            commands += connection.pack_command("SUBSCRIBE", *channels)
        connection._writer.writelines(commands)
        await connection._writer.drain()
        waiting = len(patterns) + len(channels)
        while waiting:
            for reply in await self._read():
                if _kind(reply) in (b"psubscribe", b"subscribe"):
                    waiting -= 1
                else:
                    _dispatch(reply, on_message)

    async def run(self, on_message: OnMessage) -> None:
        """Deliver messages until the connection fails (it raises; it never returns)."""
        while True:
            for reply in await self._read():
                _dispatch(reply, on_message)

    async def close(self) -> None:
        """Drop the connection (idempotent)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.disconnect()

    async def _read(self) -> list[object]:
        """The complete replies of the next chunk of bytes (waiting, with health pings)."""
        connection = self._connection
        if connection is None:
            raise RedisConnectionError("the subscription is closed")
        reader = connection._reader
        while True:
            try:
                async with asyncio.timeout(self.idle_ping):
                    data = await reader.read(_READ_SIZE)
            except TimeoutError:
                if self._ping_sent:
                    raise RedisConnectionError(
                        f"Redis did not answer a PING within {self.idle_ping:g} s"
                    ) from None
                self._ping_sent = True
                connection._writer.write(_PING)
                continue
            if not data:
                raise RedisConnectionError("Redis closed the subscription connection")
            self._ping_sent = False
            self._parser.feed(data)
            replies = []
            while (reply := self._parser.gets()) is not _INCOMPLETE:
                if isinstance(reply, Exception):
                    raise reply
                replies.append(reply)
            if replies:
                return replies


def _kind(reply: object) -> bytes | None:
    # Redis names a push reply's kind in lower case (`message`, `pmessage`, `pong`).
    if isinstance(reply, list) and reply and isinstance(reply[0], bytes):
        return reply[0]
    return None


def _dispatch(reply: object, on_message: OnMessage) -> None:
    """Hand a message to `on_message`; pongs and (un)subscribe confirmations are dropped."""
    kind = _kind(reply)
    if kind == b"pmessage":
        on_message(reply[2], reply[3])  # type: ignore[index]
    elif kind == b"message":
        on_message(reply[1], reply[2])  # type: ignore[index]
