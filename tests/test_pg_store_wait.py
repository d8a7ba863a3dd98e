"""The loop connection's wait (chat.pg_store.LoopConnection) driven by psycopg-style
generators over a socket pair: no database, so it runs in every test run. The PostgreSQL
run drives it with real statements (tests/test_pg_store.py)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.pq import ConnStatus
from psycopg.waiting import READY_R, READY_W, WAIT_R, WAIT_RW, WAIT_W

from chat.pg_store import LoopConnection


class FakePGconn:
    """What the wait reads of psycopg's PGconn: the socket, the status, `finish`."""

    def __init__(self, fileno: int) -> None:
        self.socket = fileno
        self.status = ConnStatus.OK
        self.finished = False

    def finish(self) -> None:
        self.finished = True
        self.status = ConnStatus.BAD


@pytest.fixture
def socket_pair() -> Iterator[tuple[socket.socket, socket.socket]]:
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    theirs.setblocking(False)
    yield ours, theirs
    ours.close()
    theirs.close()


@pytest.fixture
def connection_on() -> Iterator[Any]:
    """Loop connections over a socket, each closed after the test (psycopg warns when a
    connection it made is collected open)."""
    made: list[Any] = []

    def make(sock: socket.socket) -> Any:
        connection: Any = LoopConnection.__new__(LoopConnection)
        connection.pgconn = FakePGconn(sock.fileno())
        made.append(connection)
        return connection

    yield make
    for connection in made:
        connection._unwatch()
        connection.pgconn.finish()


def readers(fileno: int) -> int:
    loop = asyncio.get_running_loop()
    key = loop._selector.get_map().get(fileno)  # type: ignore[attr-defined]
    return int(key is not None and key.data[0] is not None)


def steps(*states: int) -> Any:
    """A generator that waits for each state in turn and returns what it was told."""
    told = []
    for state in states:
        told.append((yield state))
    return told


async def read_after_send(connection: Any, theirs: socket.socket, *states: int) -> list[int]:
    """Wait for `states` while the peer sends a byte a moment later."""
    asyncio.get_running_loop().call_later(0.05, theirs.send, b"x")
    told: list[int] = await connection.wait(steps(*states))
    return told


async def test_a_read_wait_wakes_on_the_socket_and_keeps_the_reader(
    socket_pair, connection_on
) -> None:
    ours, theirs = socket_pair
    connection = connection_on(ours)
    assert await read_after_send(connection, theirs, WAIT_R) == [READY_R]
    assert readers(ours.fileno()) == 1
    ours.recv(10)
    # The next statement's wait finds its reader in place.
    assert await read_after_send(connection, theirs, WAIT_R, WAIT_R) == [READY_R, READY_R]
    assert readers(ours.fileno()) == 1
    await connection.close()
    assert readers(ours.fileno()) == 0
    assert connection._watched is None


def reads(sock: socket.socket, count: int) -> Any:
    """A statement's generator: wait until readable, then read the answer, `count` times."""
    got = []
    for _ in range(count):
        yield WAIT_R
        got.append(sock.recv(10))
    return got


async def test_an_answer_the_statement_read_leaves_the_reader_in_place(
    socket_pair, connection_on
) -> None:
    ours, theirs = socket_pair
    connection = connection_on(ours)
    loop = asyncio.get_running_loop()
    for _ in range(3):
        loop.call_later(0.01, theirs.send, b"x")
        assert await connection.wait(reads(ours, 1)) == [b"x"]
        # The loop polls once more before the woken statement reads its answer, so a
        # readiness event comes after the statement ended: a stale one, which must not
        # drop the reader (the next statement would register it again).
        for _ in range(3):
            await asyncio.sleep(0)
        assert connection._watched == (loop, ours.fileno())
        assert readers(ours.fileno()) == 1


async def test_a_writable_socket_is_answered_without_the_loop(socket_pair, connection_on) -> None:
    ours, _ = socket_pair
    connection = connection_on(ours)
    assert await connection.wait(steps(WAIT_W, WAIT_W)) == [READY_W, READY_W]
    assert readers(ours.fileno()) == 0


async def test_a_full_socket_is_waited_for_then_written(socket_pair, connection_on) -> None:
    ours, theirs = socket_pair
    connection = connection_on(ours)
    with pytest.raises(BlockingIOError):
        while True:
            ours.send(b"z" * 65536)

    def drain() -> None:
        with pytest.raises(BlockingIOError):
            while True:
                theirs.recv(65536)

    asyncio.get_running_loop().call_later(0.05, drain)
    assert await connection.wait(steps(WAIT_W)) == [READY_W]
    loop = asyncio.get_running_loop()
    key = loop._selector.get_map().get(ours.fileno())  # type: ignore[attr-defined]
    assert key is None, "the one-off writer is removed"


async def test_a_read_or_write_wait_does_not_lose_the_kept_reader(
    socket_pair, connection_on
) -> None:
    ours, theirs = socket_pair
    connection = connection_on(ours)
    assert await read_after_send(connection, theirs, WAIT_R) == [READY_R]
    # Readable and writable at once: answered at once, the kept reader left alone.
    assert await connection.wait(steps(WAIT_RW)) == [READY_R | READY_W]
    ours.recv(10)
    assert await read_after_send(connection, theirs, WAIT_R) == [READY_R]
    assert readers(ours.fileno()) == 1
    await connection.close()


async def test_readable_with_nobody_waiting_stops_the_watch(socket_pair, connection_on) -> None:
    ours, theirs = socket_pair
    connection = connection_on(ours)
    await read_after_send(connection, theirs, WAIT_R)
    # Left unread (a notice, a server's goodbye): the reader goes instead of firing forever.
    for _ in range(500):
        if connection._watched is None:
            break
        await asyncio.sleep(0.01)
    assert connection._watched is None
    assert readers(ours.fileno()) == 0
    # The next wait watches again.
    assert await connection.wait(steps(WAIT_R)) == [READY_R]
    assert readers(ours.fileno()) == 1
    await connection.close()


async def test_a_cancelled_wait_closes_the_connection(socket_pair, connection_on) -> None:
    ours, _ = socket_pair
    connection = connection_on(ours)
    task = asyncio.ensure_future(connection.wait(steps(WAIT_R)))
    while connection._waiter is None:  # until the wait is under way
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert connection.pgconn.finished
    assert connection.closed
    assert readers(ours.fileno()) == 0


async def test_a_socket_error_is_psycopgs_operational_error(socket_pair, connection_on) -> None:
    ours, _ = socket_pair
    connection = connection_on(ours)

    def broken() -> Any:
        yield WAIT_W
        raise ConnectionResetError("reset by peer")

    with pytest.raises(psycopg.OperationalError, match="socket closed"):
        await connection.wait(broken())
    assert readers(ours.fileno()) == 0


async def test_a_generator_that_needs_no_wait_returns_at_once(socket_pair, connection_on) -> None:
    ours, _ = socket_pair
    connection = connection_on(ours)
    assert await connection.wait(steps()) == []
    assert connection._watched is None
