"""A worker's Redis subscription, read without redis-py's work per message.

Every message of the chat reaches every worker through one subscription connection.
redis-py's `PubSub.get_message` reads one reply per call, through its retry wrapper, a
timeout context, its parser's buffers and a dict per message: about 150 µs of a worker's
CPU per message received here, more than the fan-out of that message to 50 sockets. This
module is the connection's protocol instead: each chunk the transport reads is fed to
hiredis's reader and every complete message in it handed to a callback at once, in the
transport's own callback (no stream buffer, no task woken per chunk, no timeout context per
read); under load one chunk carries many messages.

redis-py still makes the connection (address, TLS, AUTH, `HELLO`, `SELECT` from the URL's
options). Then the subscription takes its transport (`asyncio.BaseTransport.set_protocol`)
and writes its commands to it, relying on two attributes of redis-py's `Connection`
(`_reader`, `_writer`), as chat.publisher does; tests/test_subscription.py fails when they
move.

Health: one timer per connection looks every `idle_ping` seconds; a connection it finds quiet
gets a `PING`, and one still quiet at the next look is taken for dead (ConnectionError), as
redis-py's health checks would find it, and the layer subscribes again."""

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
_PING = b"*1\r\n$4\r\nPING\r\n"


class Subscription(asyncio.Protocol):
    """One subscription connection: subscribe, then deliver each message as it arrives.

    The subscription is the connection's protocol (`asyncio.BaseTransport.set_protocol`):
    each chunk the transport reads is parsed and its messages delivered in that same
    callback, without a stream buffer or a task woken per chunk.
    """

    def __init__(self, client: aioredis.Redis, *, idle_ping: float = 5.0) -> None:
        self.client = client
        self.idle_ping = idle_ping
        self._parser = hiredis.Reader(notEnoughData=_INCOMPLETE)
        # The stream writer redis-py made, kept: a writer that is collected closes its
        # transport.
        self._writer: asyncio.StreamWriter | None = None
        self._transport: asyncio.Transport | None = None
        self._on_message: OnMessage = _ignore
        self._confirming = 0
        self._opened: asyncio.Future[None] | None = None
        self._failed: asyncio.Future[None] | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._heard = False
        self._ping_sent = False

    async def open(
        self, *, patterns: Sequence[str], channels: Sequence[str], on_message: OnMessage
    ) -> None:
        """Connect and subscribe; return once Redis confirmed every subscription. Messages
        that arrive meanwhile go to `on_message` too."""
        loop = asyncio.get_running_loop()
        self._failed = loop.create_future()
        self._opened = loop.create_future()
        connection: Any = self.client.connection_pool.make_connection()  # type: ignore[no-untyped-call]
        try:
            await connection.connect()
        except BaseException as exc:
            self._fail(RedisConnectionError(f"the subscription could not connect ({exc})"))
            raise
        writer = connection._writer
        # The transport is the subscription's now: redis-py's object keeps no stream of it
        # (it would warn of an unclosed connection when collected, and close it).
        connection._reader = connection._writer = None
        self._writer = writer
        self._transport = transport = writer.transport
        self._on_message = on_message
        self._confirming = len(patterns) + len(channels)
        transport.set_protocol(self)
        commands = []
        if patterns:
            commands += connection.pack_command("PSUBSCRIBE", *patterns)
        if channels:
            commands += connection.pack_command("SUBSCRIBE", *channels)
        transport.writelines(commands)
        self._watchdog = loop.call_later(self.idle_ping, self._check_quiet)
        if not self._confirming:
            self._opened.set_result(None)
        await self._opened

    async def run(self, on_message: OnMessage) -> None:
        """Deliver messages until the connection fails (it raises; it never returns)."""
        if self._failed is None:
            raise RedisConnectionError("the subscription was never opened")
        self._on_message = on_message
        await self._failed
        raise RedisConnectionError("the subscription ended")  # not reached: it fails

    async def close(self) -> None:
        """Drop the connection (idempotent)."""
        self._fail(RedisConnectionError("the subscription is closed"))

    # --- the transport's callbacks ---------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        self._heard = True
        self._parser.feed(data)
        try:
            while (reply := self._parser.gets()) is not _INCOMPLETE:
                if isinstance(reply, Exception):
                    raise reply
                kind = _kind(reply)
                if kind == b"pmessage":
                    self._on_message(reply[2], reply[3])
                elif kind == b"message":
                    self._on_message(reply[1], reply[2])
                elif kind in (b"psubscribe", b"subscribe"):
                    self._confirming -= 1
                    if not self._confirming and self._opened and not self._opened.done():
                        self._opened.set_result(None)
                # A pong, or an unsubscribe confirmation: nothing to deliver.
        except Exception as exc:
            # An error reply, or a message the layer could not take: the subscription ends,
            # and the layer subscribes again, as it does when the connection fails.
            self._fail(exc)

    def eof_received(self) -> bool:
        self._fail(RedisConnectionError("Redis closed the subscription connection"))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(RedisConnectionError(f"the subscription connection was lost ({exc})"))

    # --- health and failure --------------------------------------------------------------
    def _check_quiet(self) -> None:
        """Every `idle_ping` seconds: a quiet connection gets a PING; one still quiet at the
        next check is taken for dead."""
        if self._heard:
            self._heard = self._ping_sent = False
        elif not self._ping_sent:
            self._ping_sent = True
            if self._transport is not None:
                self._transport.write(_PING)
        else:
            self._fail(
                RedisConnectionError(f"Redis did not answer a PING within {self.idle_ping:g} s")
            )
            return
        self._watchdog = asyncio.get_running_loop().call_later(self.idle_ping, self._check_quiet)

    def _fail(self, error: Exception) -> None:
        """End the subscription with `error` (the first one wins) and drop the connection."""
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        for future in (self._opened, self._failed):
            if future is not None and not future.done():
                future.set_exception(error)
                # Marked as retrieved: asyncio would log it when nobody awaits it (a failed
                # `open`, a `run` never started); whoever awaits it still gets it.
                future.exception()
        writer, self._writer = self._writer, None
        self._transport = None
        if writer is not None:
            writer.close()


def _ignore(channel: bytes, data: bytes) -> None:
    """What a subscription that is not open yet does with a message."""


def _kind(reply: object) -> bytes | None:
    # Redis names a push reply's kind in lower case (`message`, `pmessage`, `pong`).
    if isinstance(reply, list) and reply and isinstance(reply[0], bytes):
        return reply[0]
    return None
