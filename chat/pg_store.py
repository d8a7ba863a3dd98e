"""Storing message batches on PostgreSQL from the event loop, with psycopg's async connection.

`chat.writer` stores each batch with one statement. Through Django that costs a thread hop
(asgiref's `SyncToAsync`, with Channels' connection clean-up before and after), a connection
taken from the pool and given back, and Django's cursor wrapper: measured here at about
250 µs of the worker's CPU per batch, more than the insert itself. Django has no
asynchronous database connections, so on PostgreSQL each worker's writer keeps one psycopg
`AsyncConnection` of its own (autocommit, the same connection parameters and adapters as
Django's), and runs the same statements as `chat.services.message_create_many` on it:
`services.insert_returning_sql`, then one `SELECT` for client ids stored before. Results
are paired and merged by the same functions (`services.returned_in_order`,
`services.batch_results`), so idempotency by `client_id` is the same.

A batch that fails raises (the writer answers every sender of the batch with the error);
a connection that broke is dropped, and the next batch connects again. CHAT_ASYNC_WRITER
switches this off (Django's path on the database thread); on other databases it is never on.
"""

from __future__ import annotations

import asyncio
import logging
import select
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import psycopg
from django.conf import settings
from django.db import connections, router
from django.utils import timezone
from psycopg import sql
from psycopg.waiting import READY_R, READY_W, WAIT_R, WAIT_W

from chat import services
from chat.models import Message
from chat.serializers import ROW_FIELDS, row_to_frame

logger = logging.getLogger(__name__)

Result = tuple[dict[str, Any], bool]

# Seconds to connect, unless the database settings say (libpq's `connect_timeout`).
CONNECT_TIMEOUT = 5


class LoopConnection(psycopg.AsyncConnection[Any]):
    """psycopg's async connection, waiting for the server's answers more cheaply.

    psycopg's `wait_async` registers the socket with the event loop for every wait and
    removes it after (two `epoll_ctl` calls and asyncio's look-ups), and arms a 0.1 s timer
    to look for Ctrl-C: about 100 µs of a worker's CPU per statement here, a third of what
    psycopg's synchronous connection spends on the whole statement. This connection keeps
    its socket registered while it waits for answers, and wakes on the socket alone.

    Only `wait` without a timeout takes this path (every statement); a wait with one
    (connecting, cancelling) is psycopg's own. The generator protocol it drives
    (`psycopg.waiting`'s WAIT_*/READY_* states) is psycopg's documented one for custom
    waiting functions; tests/test_pg_store.py runs real statements through it.
    """

    _watched: tuple[asyncio.AbstractEventLoop, int] | None = None
    _waiter: asyncio.Future[int] | None = None

    async def wait(self, gen: Any, interval: float = 0.1, timeout: float | None = None) -> Any:
        """Drive `gen` to its end: psycopg's `wait`, without a timeout."""
        if timeout is not None:
            return await super().wait(gen, interval=interval, timeout=timeout)
        fileno = self.pgconn.socket
        try:
            state = next(gen)
            while True:
                # A socket asked for writing is nearly always writable at once.
                ready = _ready_now(fileno, state) if state & WAIT_W else 0
                if not ready:
                    if state == WAIT_R:
                        ready = await self._readable(fileno)
                    else:
                        # Our reader would be replaced, then removed, by the one-off wait.
                        self._unwatch()
                        ready = await _ready_later(fileno, state)
                state = gen.send(ready)
        except StopIteration as done:
            return done.value
        except OSError as exc:
            self._unwatch()
            raise psycopg.OperationalError("connection socket closed") from exc
        except BaseException:
            # Cancelled (the worker stops) or failed half-way through a statement: the
            # connection's state is unknown, so it is closed; the next batch connects again.
            self._unwatch()
            self.pgconn.finish()
            raise

    async def close(self) -> None:
        """Stop watching the socket, then psycopg's `close`."""
        self._unwatch()
        await super().close()

    def _readable(self, fileno: int) -> asyncio.Future[int]:
        loop = asyncio.get_running_loop()
        if self._watched != (loop, fileno):
            self._unwatch()
            loop.add_reader(fileno, self._on_readable)
            self._watched = (loop, fileno)
        self._waiter = waiter = loop.create_future()
        return waiter

    def _on_readable(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(READY_R)
            return
        # Nobody waits. Usually the event is stale: the loop polled again before the woken
        # statement read its answer (every statement's last answer), and the socket is
        # drained now. Still readable, it holds something nobody asked for (a notice, the
        # server going away): stop watching until the next wait, or the loop would call
        # this on every turn.
        watched = self._watched
        if watched is None or _ready_now(watched[1], WAIT_R):
            self._unwatch()

    def _unwatch(self) -> None:
        watched, self._watched = self._watched, None
        if watched is not None:
            loop, fileno = watched
            if not loop.is_closed():
                loop.remove_reader(fileno)


def _ready_now(fileno: int, state: int) -> int:
    """The socket's readiness for `state` right now (a poll that does not block)."""
    poller = select.poll()
    poller.register(
        fileno, (select.POLLIN if state & WAIT_R else 0) | (select.POLLOUT if state & WAIT_W else 0)
    )
    ready = 0
    for _, events in poller.poll(0):
        if events & (select.POLLIN | select.POLLERR | select.POLLHUP):
            ready |= READY_R if state & WAIT_R else 0
        if events & (select.POLLOUT | select.POLLERR | select.POLLHUP):
            ready |= READY_W if state & WAIT_W else 0
    return ready


async def _ready_later(fileno: int, state: int) -> int:
    """Wait until the socket is ready for `state` (a socket not writable at once: rare)."""
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[int] = loop.create_future()

    def wake(ready: int) -> None:
        if not waiter.done():
            waiter.set_result(ready)

    if state & WAIT_R:
        loop.add_reader(fileno, wake, READY_R)
    if state & WAIT_W:
        loop.add_writer(fileno, wake, READY_W)
    try:
        return await waiter
    finally:
        if state & WAIT_R:
            loop.remove_reader(fileno)
        if state & WAIT_W:
            loop.remove_writer(fileno)


def enabled() -> bool:
    """Whether batches go through this module: CHAT_ASYNC_WRITER on PostgreSQL."""
    alias = router.db_for_write(Message)
    return bool(settings.CHAT_ASYNC_WRITER) and connections[alias].vendor == "postgresql"


class AsyncStore:
    """One event loop's PostgreSQL connection for storing messages."""

    def __init__(self, alias: str | None = None) -> None:
        self.alias = alias or router.db_for_write(Message)
        self._connection: psycopg.AsyncConnection[Any] | None = None
        # Django's wrapper of the alias, for its SQL quoting (looked up once per connection:
        # `connections[...]` goes through asgiref's context-local storage each time).
        self._wrapper: Any = None

    async def store_many(self, items: Sequence[services.NewMessage]) -> list[Result]:
        """Store a batch; each item's frame, in input order, and whether it is new."""
        if not items:
            return []
        connection = await self._connect()
        try:
            return await self._store(connection, items)
        except psycopg.Error as exc:
            if connection.broken or connection.closed:
                logger.warning(
                    "message store: PostgreSQL connection lost (%r); the next batch reconnects",
                    exc,
                )
                self._connection = None
                await connection.close()
            raise

    async def aclose(self) -> None:
        """Close the connection (a worker that stops; tests)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.close()

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        connection = self._connection
        if connection is None or connection.closed:
            wrapper = connections[self.alias]
            params = wrapper.get_connection_params()
            # Django's synchronous cursor class; the async connection has its own.
            params.pop("cursor_factory", None)
            # A database that does not answer fails the batch instead of holding the writer
            # for the operating system's TCP timeout.
            params.setdefault("connect_timeout", CONNECT_TIMEOUT)
            connection = await LoopConnection.connect(**params, autocommit=True)
            try:
                await _configure(connection, wrapper)
            except BaseException:
                await connection.close()
                raise
            self._connection = connection
            self._wrapper = wrapper
        return connection

    async def _store(
        self, connection: psycopg.AsyncConnection[Any], items: Sequence[services.NewMessage]
    ) -> list[Result]:
        to_insert, client_ids = services.batch_plan(items)
        sent_at = timezone.now()
        wrapper = self._wrapper
        params = [value for item in to_insert for value in _insert_values(item, sent_at)]
        # One statement for the whole batch: PostgreSQL takes 65,535 parameters, and a batch
        # has at most chat.writer.BATCH_MAX messages of seven.
        cursor = await connection.execute(
            services.insert_returning_sql(wrapper, len(to_insert)), params
        )
        returned = await cursor.fetchall()
        new = [
            # The inserted columns but the address are `row_to_frame`'s, after the id.
            row_to_frame(pk, *_insert_values(item, sent_at)[:-1])
            for pk, item in services.returned_in_order(to_insert, returned)
        ]
        inserted = {frame["client_id"] for frame in new}
        conflicts = [cid for cid in client_ids if cid not in inserted]
        existing: dict[str, dict[str, Any]] = {}
        if conflicts:
            cursor = await connection.execute(_select_sql(wrapper), [conflicts])
            for row in await cursor.fetchall():
                frame = row_to_frame(*row)
                existing[frame["client_id"]] = frame
        return services.batch_results(
            items, new, existing, client_id=lambda frame: frame["client_id"]
        )


async def _configure(connection: psycopg.AsyncConnection[Any], wrapper: Any) -> None:
    """What Django does to each new PostgreSQL connection (`_configure_connection`): the
    session's time zone (Django's loaders read timestamps in it) and `assume_role`."""
    timezone_name = wrapper.timezone_name
    if timezone_name and connection.info.parameter_status("TimeZone") != timezone_name:
        await connection.execute(wrapper.ops.set_time_zone_sql(), [timezone_name])
    if role := wrapper.settings_dict["OPTIONS"].get("assume_role"):
        await connection.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(role)))


def _insert_values(item: services.NewMessage, sent_at: datetime) -> tuple[Any, ...]:
    """An item's values in the order of `services.insert_returning_sql`'s columns."""
    return (
        item.nick,
        item.body,
        sent_at,
        item.client_id,
        item.session,
        item.user_id,
        item.address,
    )


def _select_sql(wrapper: Any) -> str:
    """The stored messages with any of a list of client ids (one array parameter)."""
    meta = Message._meta
    qn = wrapper.ops.quote_name
    columns = ", ".join(qn(services.column(name)) for name in ROW_FIELDS)
    client_id = qn(services.column("client_id"))
    # Only the model's own (quoted) table and column names go into the text.
    return f"SELECT {columns} FROM {qn(meta.db_table)} WHERE {client_id} = ANY(%s)"  # noqa: S608
