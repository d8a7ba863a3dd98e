"""Message batches stored from the event loop on PostgreSQL (chat.pg_store), against the real
test database: the same rows, frames and idempotency as Django's path, failures that reach
every sender of a batch, and a connection that comes back after it broke."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from asgiref.sync import sync_to_async
from django.db import connection
from django.db import connection as django_connection
from psycopg.waiting import READY_W, WAIT_W

from chat import pg_store, writer
from chat.models import Message
from chat.serializers import message_to_frame
from chat.services import NewMessage

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _postgresql_only() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("the loop's own connection is PostgreSQL's; the PostgreSQL run tests it")


@pytest.fixture
async def store() -> AsyncIterator[pg_store.AsyncStore]:
    made = pg_store.AsyncStore()
    yield made
    await made.aclose()


def item(body: str, client_id: str | None = None, **fields: object) -> NewMessage:
    return NewMessage(
        nick=str(fields.get("nick", "Ana")),
        body=body,
        client_id=client_id,
        session=str(fields.get("session", "s1")),
        user_id=fields.get("user_id"),  # type: ignore[arg-type]
        address=str(fields.get("address", "10.0.0.1")),
    )


def stored(ids: list[int]) -> list[Message]:
    return list(Message.objects.filter(id__in=ids).order_by("id"))


async def test_a_batch_is_stored_as_djangos_path_stores_it(store) -> None:
    results = await store.store_many([item("one", "c1"), item("two", None), item("three", "c3")])
    frames = [frame for frame, _ in results]
    assert [created for _, created in results] == [True, True, True]
    ids = [frame["id"] for frame in frames]
    assert ids == sorted(ids), "ids are drawn in input order"
    rows = await sync_to_async(stored)(ids)
    assert [message_to_frame(row) for row in rows] == frames
    assert [row.address for row in rows] == ["10.0.0.1"] * 3


async def test_a_resend_of_a_stored_client_id_is_answered_with_the_first_message(store) -> None:
    [(first, created)] = await store.store_many([item("hello", "again")])
    assert created
    [(second, created)] = await store.store_many([item("hello (resent)", "again")])
    assert not created
    assert second == first
    assert await Message.objects.filter(client_id="again").acount() == 1


async def test_times_read_back_do_not_depend_on_the_servers_time_zone(store, monkeypatch) -> None:
    # libpq starts the session in PGTZ: a server whose default is local time, as Django's
    # own connections would find it (Django sets the session's time zone on each).
    monkeypatch.setenv("PGTZ", "America/New_York")
    [(first, _)] = await store.store_many([item("tz", "tz1")])
    [(again, created)] = await store.store_many([item("tz (resent)", "tz1")])
    assert not created
    assert again == first
    row = await Message.objects.aget(client_id="tz1")
    assert message_to_frame(row)["sent_at"] == first["sent_at"]


async def test_copies_of_a_client_id_in_one_batch_are_stored_once(store) -> None:
    old = uuid.uuid4().hex
    await store.store_many([item("before", old)])
    results = await store.store_many(
        [item("a", "dup"), item("b", None), item("a again", "dup"), item("old", old)]
    )
    (a, a_new), (b, b_new), (a2, a2_new), (o, o_new) = results
    assert (a_new, b_new, a2_new, o_new) == (True, True, False, False)
    assert a2 == a and a["body"] == "a"
    assert o["body"] == "before"
    assert b["id"] > a["id"]
    assert await Message.objects.filter(client_id="dup").acount() == 1


async def test_a_failed_batch_stores_nothing_and_the_next_one_works(store) -> None:
    # A user that does not exist breaks the foreign key: the whole statement fails.
    with pytest.raises(Exception) as failed:
        await store.store_many([item("fine", "f1"), item("broken", "f2", user_id=10**9)])
    assert "foreign key" in str(failed.value).lower()
    assert await Message.objects.filter(client_id__in=["f1", "f2"]).acount() == 0
    [(frame, created)] = await store.store_many([item("fine", "f1")])
    assert created and frame["body"] == "fine"


async def test_a_connection_the_database_dropped_is_replaced(store) -> None:
    await store.store_many([item("first", None)])
    assert store._connection is not None
    pid = store._connection.info.backend_pid

    def terminate() -> None:
        with connection.cursor() as cursor:
            # With a timeout, PostgreSQL returns once the backend has gone (PostgreSQL 14+).
            cursor.execute("SELECT pg_terminate_backend(%s, 10000)", [pid])

    await sync_to_async(terminate)()
    # The batch that meets the dead connection fails (its senders resend) ...
    with pytest.raises(Exception):  # noqa: B017 (psycopg's OperationalError)
        await store.store_many([item("lost", "l1")])
    # ... and the next one connects again.
    [(frame, created)] = await store.store_many([item("lost", "l1")])
    assert created and frame["body"] == "lost"
    assert store._connection is not None
    assert store._connection.info.backend_pid != pid


async def test_the_writer_stores_from_the_loop_when_it_is_on(settings) -> None:
    settings.CHAT_ASYNC_WRITER = True
    assert pg_store.enabled()
    loop_writer = writer.get_writer()
    try:
        frame, created = await writer.store(
            nick="Ana", body="via the loop", client_id="w1", session="s1"
        )
        assert created
        store = loop_writer._async_store
        assert isinstance(store, pg_store.AsyncStore)
        assert store._connection is not None
        row = await Message.objects.aget(client_id="w1")
        assert message_to_frame(row) == frame
    finally:
        # What a stopping worker does (chat.daphne_server, after its sockets closed).
        await writer.close()
    assert store._connection is None
    settings.CHAT_ASYNC_WRITER = False
    assert not pg_store.enabled()


# --- the loop connection's wait (pg_store.LoopConnection) -------------------------------------


def _readers(loop: asyncio.AbstractEventLoop, fileno: int) -> int:
    """How many readers the loop has for `fileno` (0 or 1)."""
    selector = loop._selector  # type: ignore[attr-defined]
    key = selector.get_map().get(fileno)
    return int(key is not None and key.data[0] is not None)


async def test_statements_on_the_loop_connection_keep_one_reader_registered(
    store, monkeypatch
) -> None:
    await store.store_many([item("first", None)])
    connection = store._connection
    assert isinstance(connection, pg_store.LoopConnection)
    loop = asyncio.get_running_loop()
    added: list[int] = []
    add_reader = loop.add_reader

    def counting_add_reader(fd: Any, callback: Any, *args: Any) -> None:
        added.append(fd)
        add_reader(fd, callback, *args)

    monkeypatch.setattr(loop, "add_reader", counting_add_reader)
    for n in range(20):
        [(frame, created)] = await store.store_many([item(f"n{n}", f"k{n}")])
        assert created and frame["body"] == f"n{n}"
        # Let the loop turn, as a worker's would between messages.
        for _ in range(3):
            await asyncio.sleep(0)
    assert added == []
    assert connection._watched == (loop, connection.pgconn.socket)
    assert _readers(loop, connection.pgconn.socket) == 1
    await store.aclose()
    assert connection._watched is None


async def test_an_idle_connection_the_server_ends_is_not_watched_and_is_replaced(store) -> None:
    await store.store_many([item("first", None)])
    connection = store._connection
    assert isinstance(connection, pg_store.LoopConnection)
    fileno = connection.pgconn.socket

    def terminate(pid: int) -> None:
        with django_connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s, 10000)", [pid])

    await sync_to_async(terminate)(connection.info.backend_pid)
    # The server's goodbye makes the idle socket readable with nobody waiting: the reader
    # goes, so the loop does not call it on every turn.
    loop = asyncio.get_running_loop()
    for _ in range(500):
        if connection._watched is None:
            break
        await asyncio.sleep(0.01)
    assert connection._watched is None
    assert _readers(loop, fileno) == 0
    with pytest.raises(psycopg.OperationalError):
        await store.store_many([item("lost", "g1")])
    [(frame, created)] = await store.store_many([item("lost", "g1")])
    assert created and frame["body"] == "lost"


async def test_a_statement_cancelled_half_way_closes_the_connection(store) -> None:
    await store.store_many([item("first", None)])
    connection = store._connection
    assert isinstance(connection, pg_store.LoopConnection)
    fileno = connection.pgconn.socket
    pid = connection.info.backend_pid
    task = asyncio.ensure_future(connection.execute("SELECT pg_sleep(10)"))
    for _ in range(500):  # until the statement's answer is awaited
        if connection._waiter is not None:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert connection.closed
    assert _readers(asyncio.get_running_loop(), fileno) == 0
    [(frame, created)] = await store.store_many([item("after", "a1")])
    assert created and frame["body"] == "after"
    assert store._connection is not connection

    def terminate() -> None:
        # The server runs the sleep to its end unless told: the test database must drop.
        with django_connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s, 10000)", [pid])

    await sync_to_async(terminate)()


async def test_a_wait_with_a_timeout_is_psycopgs_own(store, monkeypatch) -> None:
    await store.store_many([item("first", None)])
    connection = store._connection
    assert isinstance(connection, pg_store.LoopConnection)
    used = []
    original = psycopg.AsyncConnection.wait

    async def spy(self, gen, interval=0.1, timeout=None):  # type: ignore[no-untyped-def]
        used.append(timeout)
        return await original(self, gen, interval=interval, timeout=timeout)

    def writable() -> Any:
        ready = yield WAIT_W
        return ready

    monkeypatch.setattr(psycopg.AsyncConnection, "wait", spy)
    assert await connection.wait(writable(), timeout=5.0) == READY_W
    assert await connection.wait(writable()) == READY_W
    # Only the wait with a timeout went to psycopg's method.
    assert used == [5.0]
