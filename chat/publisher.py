"""A worker's Redis PUBLISH, without redis-py's work per command.

Every message of the chat is published once by the worker whose socket sent it. redis-py's
`publish` takes a connection from the pool and gives it back, packs the command through
its generic encoder, and wraps the round trip in its retry policy, a timeout context and
its observability hooks: about half of a publish's CPU here, and a tenth of the sender's
worker's CPU per message. This module writes `PUBLISH` to one connection of its own and
matches the replies to the callers in order (Redis answers a connection's commands in the
order they came), so concurrent publishes share the connection without waiting for each
other.

redis-py still makes the connection (address, TLS, AUTH, `HELLO`, `SELECT` from the URL's
options). After that this module owns its transport: it sets its own protocol on it
(`asyncio.BaseTransport.set_protocol`), so each reply is parsed by hiredis and handed to
its caller as it arrives. It relies on two attributes of redis-py's `Connection`, `_reader`
and `_writer`, as chat.subscription does; tests/test_publisher.py fails when they move.

Failures are redis-py's: a connection that closes fails the publishes waiting on it with
`ConnectionError`, and a reply that does not come within the client's `socket_timeout`
closes the connection and fails them with `TimeoutError`. A publish that fails so is tried
again under the retry policy of the client's connections, on a new connection, as
redis-py's `publish` would be (a client made from a URL, as the layer's, has none: it
fails at once). A retried message may reach Redis twice; every worker's window
(chat.broadcast) drops a stored message it already has.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

import hiredis
from redis import asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

# hiredis returns this when a reply is incomplete (False is a valid RESP3 reply).
_INCOMPLETE = object()


def publish_command(channel: bytes, data: bytes) -> bytes:
    """`PUBLISH channel data` in the Redis protocol (RESP)."""
    return b"*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n" % (
        len(channel),
        channel,
        len(data),
        data,
    )


class _Link(asyncio.Protocol):
    """One connection's replies, matched in order to the publishes waiting for them."""

    def __init__(self, writer: asyncio.StreamWriter, timeout: float | None) -> None:
        # The stream writer is kept, not only its transport: a writer that is collected
        # closes its transport.
        self.writer = writer
        self.transport = writer.transport
        self.timeout = timeout
        self.parser = hiredis.Reader(notEnoughData=_INCOMPLETE)
        # (the caller's future, when its command was written), oldest first.
        self.pending: deque[tuple[asyncio.Future[int], float]] = deque()
        self.lost: Exception | None = None
        self._watchdog: asyncio.TimerHandle | None = None

    def send(self, command: bytes) -> asyncio.Future[int]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[int] = loop.create_future()
        self.pending.append((future, loop.time()))
        self.transport.write(command)
        if self._watchdog is None and self.timeout is not None:
            self._watchdog = loop.call_later(self.timeout, self._check_late)
        return future

    def data_received(self, data: bytes) -> None:
        self.parser.feed(data)
        while (reply := self.parser.gets()) is not _INCOMPLETE:
            if not self.pending:
                self.close(RedisConnectionError(f"Redis sent a reply nobody asked for: {reply!r}"))
                return
            future, _ = self.pending.popleft()
            if future.done():
                continue  # its caller gave up (cancelled)
            if isinstance(reply, Exception):
                future.set_exception(ResponseError(str(reply)))
            else:
                future.set_result(reply)

    def eof_received(self) -> bool:
        self.close(RedisConnectionError("Redis closed the connection"))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.close(RedisConnectionError(f"connection to Redis lost ({exc or 'closed'})"))

    def close(self, error: Exception) -> None:
        """Fail every waiting publish with `error` and drop the connection (idempotent)."""
        if self.lost is None:
            self.lost = error
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        while self.pending:
            future, _ = self.pending.popleft()
            if not future.done():
                future.set_exception(error)
        self.transport.close()

    def _check_late(self) -> None:
        """Once per `timeout` while replies are awaited, not once per publish."""
        self._watchdog = None
        if not self.pending or self.lost is not None or self.timeout is None:
            return
        loop = asyncio.get_running_loop()
        _, sent_at = self.pending[0]
        late = loop.time() - sent_at
        if late >= self.timeout:
            self.close(RedisTimeoutError(f"Redis did not answer within {self.timeout:g} s"))
            return
        self._watchdog = loop.call_later(self.timeout - late, self._check_late)


class Publisher:
    """PUBLISH on one connection of its own, made by `client`'s pool and options."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client
        kwargs = client.connection_pool.connection_kwargs
        self.timeout: float | None = kwargs.get("socket_timeout")
        self._link: _Link | None = None
        self._connecting: asyncio.Future[_Link] | None = None
        # The retry policy of the client's connections, which redis-py's commands run under.
        self._retry: Retry | None = None

    async def publish(self, channel: str, data: bytes) -> int:
        """Publish `data` on `channel`; the number of subscribers that received it."""
        command = publish_command(channel.encode(), data)
        try:
            return await self._send(command)
        except (RedisConnectionError, RedisTimeoutError) as first:
            if self._retry is None:
                raise
            return await self._send_again(command, self._retry, first)

    async def _send_again(self, command: bytes, retry: Retry, first: Exception) -> int:
        """After a failed first try: as many tries in all as the policy allows."""
        tries = 0
        started = time.monotonic()

        async def attempt() -> int:
            nonlocal tries
            tries += 1
            if tries == 1:
                raise first  # the try that failed counts as the policy's first
            return await self._send(command)

        async def failed(error: Exception) -> None:
            pass  # the link that failed is already dropped; `_send` makes a new one

        try:
            return await retry.call_with_retry(attempt, failed)
        except (RedisConnectionError, RedisTimeoutError) as error:
            if error is first:
                raise
            waited = time.monotonic() - started
            raise type(error)(f"{error} (after {tries} tries in {waited:.1f} s)") from error

    async def close(self) -> None:
        """Drop the connection (idempotent); a later publish connects again."""
        link, self._link = self._link, None
        if link is not None:
            link.close(RedisConnectionError("the publisher is closed"))

    async def _send(self, command: bytes) -> int:
        link = self._link
        if link is None or link.lost is not None:
            link = await self._connect()
        return await link.send(command)

    async def _connect(self) -> _Link:
        # One connection at a time: publishes that find none wait for the same one.
        if self._connecting is not None:
            return await asyncio.shield(self._connecting)
        loop = asyncio.get_running_loop()
        self._connecting = connecting = loop.create_future()
        try:
            connection: Any = self.client.connection_pool.make_connection()  # type: ignore[no-untyped-call]
            self._retry = connection.retry
            await connection.connect()
            link = _Link(connection._writer, self.timeout)
            link.transport.set_protocol(link)
            # The transport is the link's now: redis-py's object keeps no stream of it (it
            # would warn of an unclosed connection when collected).
            connection._reader = connection._writer = None
        except BaseException as exc:
            # Publishes waiting for this connection fail as on a lost one (and are retried);
            # a cancelled one was not theirs to see.
            connecting.set_exception(
                exc
                if isinstance(exc, Exception)
                else RedisConnectionError("connecting to Redis was interrupted")
            )
            # Marked as retrieved: when no other publish waits for it, asyncio would log it.
            connecting.exception()
            raise
        finally:
            self._connecting = None
        self._link = link
        connecting.set_result(link)
        return link
