"""Storing messages with group commit: one database round trip per batch, not per message.

Each message stored on its own costs a round trip to the database (and, through Django, a
thread hop: `database_sync_to_async`, whose hops queue behind each other in asgiref's single
database thread under load). So each worker (one writer per event loop) queues the messages
its sockets send, and one writer task stores everything pending with one `INSERT`
statement: on PostgreSQL from the loop itself (`chat.pg_store`, unless CHAT_ASYNC_WRITER is
off), elsewhere with one `database_sync_to_async` call to
`chat.services.message_create_many`. While a batch is in the
database, new messages wait for the next one: a lone message is stored at once (there is no
timer), and under load batches grow by themselves, up to `BATCH_MAX`.

A batch succeeds or fails as a whole: if the database raises, every message of that batch
gets the exception (none is acknowledged) and the writer goes on with the next batch.
Messages are stored in the order `store()` was called, so their ids increase in that order.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from dataclasses import dataclass
from typing import Any

from channels.db import database_sync_to_async

from chat import metrics, pg_store, services
from chat.serializers import message_to_frame

logger = logging.getLogger(__name__)

# At most this many messages per batch (one statement); the rest wait for the next batch.
# Keeps a statement small (seven parameters per message) and bounds how many senders one
# failure reaches.
BATCH_MAX = 200

Result = tuple[dict[str, Any], bool]


@dataclass(frozen=True, slots=True)
class _Request:
    item: services.NewMessage
    future: asyncio.Future[Result]


def _store_batch(items: list[services.NewMessage]) -> list[Result]:
    """Store a batch (in the database thread); the frames in request order."""
    return [
        (message_to_frame(message), created)
        for message, created in services.message_create_many(items=items)
    ]


class MessageWriter:
    """One event loop's queue of messages to store, and the task that stores them."""

    def __init__(self, *, batch_max: int = BATCH_MAX) -> None:
        self.batch_max = batch_max
        self._pending: list[_Request] = []
        self._task: asyncio.Task[None] | None = None
        # PostgreSQL with CHAT_ASYNC_WRITER: batches stored from the loop (chat.pg_store).
        self._async_store: pg_store.AsyncStore | None = None
        self._async_checked = False

    async def store(
        self,
        *,
        nick: str,
        body: str,
        client_id: str | None,
        session: str,
        user_id: int | None = None,
        address: str = "",
    ) -> Result:
        """Queue a message, wait for its batch; return its frame and whether it is new."""
        loop = asyncio.get_running_loop()
        item = services.NewMessage(
            nick=nick,
            body=body,
            client_id=client_id,
            session=session,
            user_id=user_id,
            address=address,
        )
        request = _Request(item, loop.create_future())
        self._pending.append(request)
        if self._task is None or self._task.done():
            # A context of its own: the writer outlives the socket (or request) that
            # started it, and must not inherit its asgiref thread context.
            self._task = loop.create_task(
                self._run(), name="chat.writer", context=contextvars.Context()
            )
        return await request.future

    async def _run(self) -> None:
        """Store batches until nothing is pending."""
        while self._pending:
            batch = self._pending[: self.batch_max]
            del self._pending[: self.batch_max]
            # A sender that gave up before its batch started (its socket closed) is not
            # stored: nobody would broadcast it, and its resend then stores it afresh.
            batch = [request for request in batch if not request.future.done()]
            if not batch:
                continue
            items = [request.item for request in batch]
            try:
                store = self._store_in_loop()
                if store is not None:
                    results = await store.store_many(items)
                else:
                    results = await database_sync_to_async(_store_batch)(items)
            except Exception as exc:
                metrics.DATABASE_ERRORS.labels(where="store").inc()
                logger.error("storing a batch of %s messages failed (%r)", len(batch), exc)
                for request in batch:
                    if not request.future.done():
                        request.future.set_exception(exc)
                continue
            except BaseException:
                # The loop is shutting down: nobody waits for an answer any more.
                for request in batch + self._pending:
                    request.future.cancel()
                self._pending.clear()
                raise
            # Once per batch: new rows only (a resend of a stored client_id is not new).
            metrics.MESSAGES_STORED.inc(sum(created for _, created in results))
            for request, result in zip(batch, results, strict=True):
                if not request.future.done():
                    request.future.set_result(result)

    def _store_in_loop(self) -> pg_store.AsyncStore | None:
        if not self._async_checked:
            self._async_checked = True
            if pg_store.enabled():
                self._async_store = pg_store.AsyncStore()
        return self._async_store


_writers: dict[asyncio.AbstractEventLoop, MessageWriter] = {}


def get_writer() -> MessageWriter:
    """The writer of the running event loop (one per worker)."""
    loop = asyncio.get_running_loop()
    writer = _writers.get(loop)
    if writer is None:
        # Drop writers of closed loops (tests run one loop per test).
        for old in [key for key in _writers if key.is_closed()]:
            del _writers[old]
        writer = _writers[loop] = MessageWriter()
    return writer


async def close() -> None:
    """Close the running loop's writer's own database connection, if it has one and no
    batch is being stored on it (a worker that stops; a later batch would connect again)."""
    writer = _writers.get(asyncio.get_running_loop())
    if writer is None or writer._async_store is None:
        return
    if writer._task is not None and not writer._task.done():
        return  # cutting a batch short could store it and answer its senders with an error
    await writer._async_store.aclose()


async def store(
    *,
    nick: str,
    body: str,
    client_id: str | None,
    session: str,
    user_id: int | None = None,
    address: str = "",
) -> Result:
    """Store a message in the running loop's next batch; return its frame and whether new."""
    return await get_writer().store(
        nick=nick,
        body=body,
        client_id=client_id,
        session=session,
        user_id=user_id,
        address=address,
    )
