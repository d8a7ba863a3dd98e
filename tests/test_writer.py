"""Group commit (chat.writer), against the real test database.

Statements are counted with an execute wrapper installed on the connection of the database
thread, where the writer's batches run; failures are made by the same means, below the
writer and the services.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from channels.db import database_sync_to_async
from django.db import OperationalError, connection

from chat import writer
from chat.models import Message
from chat.serializers import message_to_frame

pytestmark = pytest.mark.django_db(transaction=True)

# nick, body, sent_at, client_id, session, user (chat.services._INSERT_FIELDS).
INSERT_COLUMNS = 7


@contextlib.asynccontextmanager
async def on_database_thread(wrapper: Callable[..., Any]) -> AsyncIterator[None]:
    """Wrap every statement of the connection that `database_sync_to_async` uses."""

    def install() -> None:
        connection.execute_wrappers.append(wrapper)

    def remove() -> None:
        connection.execute_wrappers.remove(wrapper)

    await database_sync_to_async(install)()
    try:
        yield
    finally:
        await database_sync_to_async(remove)()


class Inserts:
    """Counts INSERT statements and the rows each one carries."""

    def __init__(self) -> None:
        self.rows: list[int] = []

    def __call__(self, execute, sql, params, many, context):
        if sql.startswith("INSERT"):
            self.rows.append(len(params) // INSERT_COLUMNS)
        return execute(sql, params, many, context)


class Gate:
    """Holds the first INSERT in the database until released (then lets it fail, if asked)."""

    def __init__(self, *, then_fail: bool = False) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.then_fail = then_fail

    def __call__(self, execute, sql, params, many, context):
        if sql.startswith("INSERT") and not self.entered.is_set():
            self.entered.set()
            self.release.wait(timeout=10)
            if self.then_fail:
                raise OperationalError("database is locked")
        return execute(sql, params, many, context)

    async def wait_entered(self) -> bool:
        return await asyncio.to_thread(self.entered.wait, 10)


def fail_inserts(execute, sql, params, many, context):
    if sql.startswith("INSERT"):
        raise OperationalError("database is locked")
    return execute(sql, params, many, context)


def send(body: str = "hello", client_id: str | None = None) -> asyncio.Task[Any]:
    return asyncio.create_task(
        writer.store(nick="Ana", body=body, client_id=client_id, session="s1")
    )


async def test_store_returns_the_stored_message_as_a_frame():
    frame, _ = await writer.store(nick="Ana", body="hi", client_id="c-1", session="s1")
    assert frame == message_to_frame(await Message.objects.aget(client_id="c-1"))


async def test_store_reports_a_new_message_as_created():
    _, created = await writer.store(nick="Ana", body="hi", client_id="c-1", session="s1")
    assert created is True


async def test_lone_store_goes_to_the_database_without_waiting_for_company():
    gate = Gate()
    inserts = Inserts()
    async with on_database_thread(inserts), on_database_thread(gate):
        task = send("alone")
        try:
            # Nothing else is sent: the lone message reaches the database by itself.
            assert await gate.wait_entered()
        finally:
            gate.release.set()
        await task
    assert inserts.rows == [1]


async def test_concurrent_stores_share_one_insert():
    inserts = Inserts()
    async with on_database_thread(inserts):
        await asyncio.gather(*(send(f"m{i}", f"c-{i}") for i in range(50)))
    assert inserts.rows == [50]
    assert await Message.objects.acount() == 50


async def test_stores_sent_during_a_batch_wait_for_the_next_batch():
    gate = Gate()
    inserts = Inserts()
    async with on_database_thread(inserts), on_database_thread(gate):
        first = send("first")
        assert await gate.wait_entered()
        later = [send(f"m{i}") for i in range(10)]
        await asyncio.sleep(0)
        gate.release.set()
        await asyncio.gather(first, *later)
    assert inserts.rows == [1, 10]


async def test_batches_are_capped_at_batch_max():
    capped = writer.MessageWriter(batch_max=10)
    inserts = Inserts()
    async with on_database_thread(inserts):
        await asyncio.gather(
            *(
                capped.store(nick="Ana", body=f"m{i}", client_id=None, session="s1")
                for i in range(25)
            )
        )
    assert inserts.rows == [10, 10, 5]


async def test_ids_follow_the_order_of_store_calls():
    tasks = [send(f"m{i}") for i in range(30)]
    frames = [frame for frame, _ in await asyncio.gather(*tasks)]
    assert [f["body"] for f in sorted(frames, key=lambda f: f["id"])] == [
        f"m{i}" for i in range(30)
    ]


async def test_ids_follow_the_order_of_store_calls_across_batches():
    gate = Gate()
    async with on_database_thread(gate):
        first = send("m0")
        assert await gate.wait_entered()
        later = [send(f"m{i}") for i in range(1, 6)]
        await asyncio.sleep(0)
        gate.release.set()
        frames = [frame for frame, _ in await asyncio.gather(first, *later)]
    ids = [f["id"] for f in frames]
    assert ids == sorted(ids)


async def test_same_client_id_twice_in_one_batch_stores_one_row():
    inserts = Inserts()
    async with on_database_thread(inserts):
        await asyncio.gather(send("first", "c-1"), send("again", "c-1"))
    # One batch (one statement), and the resend is not in it.
    assert inserts.rows == [1]
    assert [m.body async for m in Message.objects.all()] == ["first"]


async def test_same_client_id_twice_in_one_batch_gets_the_same_message():
    (a, _), (b, _) = await asyncio.gather(send("first", "c-1"), send("again", "c-1"))
    assert a == b


async def test_same_client_id_twice_in_one_batch_reports_the_second_not_created():
    results = await asyncio.gather(send("first", "c-1"), send("again", "c-1"))
    assert [created for _, created in results] == [True, False]


async def test_resend_in_a_later_batch_returns_the_stored_message():
    original, _ = await send("first", "c-1")
    again, _ = await send("again", "c-1")
    assert again == original


async def test_resend_in_a_later_batch_reports_not_created():
    await send("first", "c-1")
    _, created = await send("again", "c-1")
    assert created is False


async def test_failed_batch_is_acknowledged_to_nobody():
    async with on_database_thread(fail_inserts):
        results = await asyncio.wait_for(
            asyncio.gather(*(send(f"m{i}", f"c-{i}") for i in range(5)), return_exceptions=True),
            timeout=10,
        )
    assert [type(result) for result in results] == [OperationalError] * 5
    assert await Message.objects.acount() == 0


async def test_next_batch_after_a_failed_one_is_stored():
    async with on_database_thread(fail_inserts):
        with pytest.raises(OperationalError):
            await send("lost", "c-1")
    frame, created = await send("again", "c-1")
    assert (frame["body"], created) == ("again", True)


async def test_stores_waiting_behind_a_failed_batch_are_stored():
    gate = Gate(then_fail=True)
    async with on_database_thread(gate):
        first = send("lost")
        assert await gate.wait_entered()
        later = [send(f"m{i}") for i in range(3)]
        await asyncio.sleep(0)
        gate.release.set()
        with pytest.raises(OperationalError):
            await first
        # Nobody stores again: the writer itself must go on with what was waiting.
        await asyncio.wait_for(asyncio.gather(*later), timeout=10)
    assert [m.body async for m in Message.objects.all()] == ["m0", "m1", "m2"]


async def test_store_cancelled_before_its_batch_is_not_stored():
    gate = Gate()
    async with on_database_thread(gate):
        first = send("first")
        assert await gate.wait_entered()
        gone = send("gone")
        await asyncio.sleep(0)
        gone.cancel()
        gate.release.set()
        await first
        with pytest.raises(asyncio.CancelledError):
            await gone
    assert [m.body async for m in Message.objects.all()] == ["first"]


async def test_one_writer_per_event_loop():
    assert writer.get_writer() is writer.get_writer()


def test_writers_of_closed_loops_are_dropped():
    async def loop_and_writer() -> tuple[asyncio.AbstractEventLoop, writer.MessageWriter]:
        return asyncio.get_running_loop(), writer.get_writer()

    old_loop, old_writer = asyncio.run(loop_and_writer())
    new_loop, new_writer = asyncio.run(loop_and_writer())
    assert new_writer is not old_writer
    assert old_loop not in writer._writers
