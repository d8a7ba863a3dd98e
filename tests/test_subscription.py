"""A worker's subscription read in chunks (chat.subscription), against a real Redis: what it
subscribes to arrives in order and whole, many messages in one read, pings on a quiet
connection, and a connection that stops answering or is closed is reported."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
from redis import asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError

from chat.subscription import Subscription
from tests.support.environment import REDIS_PREFIX

pytestmark = pytest.mark.redis

PATTERN = f"{REDIS_PREFIX}:sub:g:*"
CHANNEL = f"{REDIS_PREFIX}:sub:w:one"


@pytest.fixture
async def clients(redis_url: str) -> AsyncIterator[tuple[aioredis.Redis, aioredis.Redis]]:
    """A client for the subscription (no socket timeout, as the layer's) and one to publish."""
    sub = aioredis.Redis.from_url(redis_url, socket_timeout=None)
    pub = aioredis.Redis.from_url(redis_url, socket_timeout=5)
    yield sub, pub
    await sub.aclose()
    await pub.aclose()


async def _open(
    client: aioredis.Redis, got: list[tuple[bytes, bytes]], *, idle_ping: float = 5.0
) -> Subscription:
    subscription = Subscription(client, idle_ping=idle_ping)
    await subscription.open(
        patterns=[PATTERN],
        channels=[CHANNEL],
        on_message=lambda channel, data: got.append((channel, data)),
    )
    return subscription


@contextlib.asynccontextmanager
async def _running(
    subscription: Subscription, got: list[tuple[bytes, bytes]]
) -> AsyncIterator[asyncio.Future[None]]:
    """The subscription delivering into `got` in a task; stopped and closed after."""
    runner = asyncio.ensure_future(subscription.run(lambda c, d: got.append((c, d))))
    try:
        yield runner
    finally:
        runner.cancel()
        await subscription.close()


async def _until(condition, seconds: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    for _ in range(int(seconds / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not met in time")


async def test_messages_of_the_pattern_and_the_channel_arrive_in_order(clients) -> None:
    sub, pub = clients
    got: list[tuple[bytes, bytes]] = []
    subscription = await _open(sub, got)
    # open() returned: both subscriptions are confirmed, so nothing published now is lost.
    async with _running(subscription, got):
        group = f"{REDIS_PREFIX}:sub:g:lobby"
        assert await pub.publish(group, b"\x00one") == 1
        assert await pub.publish(CHANNEL, b"two")
        assert await pub.publish(f"{REDIS_PREFIX}:sub:elsewhere", b"not ours") == 0
        assert await pub.publish(group, b"three")
        await _until(lambda: len(got) == 3)
        assert got == [
            (group.encode(), b"\x00one"),
            (CHANNEL.encode(), b"two"),
            (group.encode(), b"three"),
        ]


async def test_many_messages_in_one_read_are_each_delivered(clients) -> None:
    sub, pub = clients
    got: list[tuple[bytes, bytes]] = []
    subscription = await _open(sub, got)
    reads = 0
    received = subscription.data_received

    def counted(data: bytes) -> None:
        nonlocal reads
        reads += 1
        received(data)

    # The transport looks the callback up on its protocol for every chunk it reads.
    subscription.data_received = counted  # type: ignore[method-assign]
    async with _running(subscription, got):
        group = f"{REDIS_PREFIX}:sub:g:lobby"
        async with pub.pipeline(transaction=False) as pipe:
            for n in range(500):
                pipe.publish(group, str(n).encode())
            await pipe.execute()
        await _until(lambda: len(got) == 500)
        assert [int(data) for _, data in got] == list(range(500))
        assert reads < 500, "messages that arrived together were read together"


async def test_a_quiet_connection_is_pinged_and_stays_open(clients) -> None:
    sub, pub = clients
    got: list[tuple[bytes, bytes]] = []
    # Quiet periods long enough for a loaded machine to answer each ping within one.
    subscription = await _open(sub, got, idle_ping=0.5)
    async with _running(subscription, got) as runner:
        # Three quiet periods: each ping's answer keeps the connection for another.
        await asyncio.sleep(1.6)
        assert not runner.done()
        assert await pub.publish(CHANNEL, b"still here") == 1
        await _until(lambda: got == [(CHANNEL.encode(), b"still here")])


async def test_a_connection_that_stops_answering_is_reported(clients) -> None:
    sub, pub = clients
    subscription = await _open(sub, [], idle_ping=0.1)
    try:
        # Redis holds every client's commands (the ping's answer too) for up to two seconds:
        # every client of this Redis waits about a second, which a sequential suite allows.
        await pub.execute_command("CLIENT", "PAUSE", "2000", "ALL")
        with pytest.raises(RedisConnectionError, match="PING"):
            await asyncio.wait_for(subscription.run(lambda c, d: None), 1.8)
    finally:
        await pub.execute_command("CLIENT", "UNPAUSE")
        await subscription.close()


async def test_a_connection_redis_closes_is_reported(clients) -> None:
    sub, pub = clients
    subscription = await _open(sub, [])
    try:
        assert subscription._transport is not None
        host, port = subscription._transport.get_extra_info("sockname")[:2]
        await pub.execute_command("CLIENT", "KILL", "ADDR", f"{host}:{port}")
        with pytest.raises(RedisConnectionError, match="closed"):
            await asyncio.wait_for(subscription.run(lambda c, d: None), 3)
    finally:
        await subscription.close()
    with pytest.raises(RedisConnectionError):
        await subscription.run(lambda c, d: None)


async def test_an_error_reply_is_raised(clients) -> None:
    sub, _ = clients
    subscription = Subscription(sub)
    await subscription.open(patterns=[], channels=[], on_message=lambda c, d: None)
    # A PSUBSCRIBE without a pattern: Redis answers with an error.
    assert subscription._transport is not None
    subscription._transport.write(b"*1\r\n$10\r\nPSUBSCRIBE\r\n")
    with pytest.raises(Exception, match="(?i)wrong number of arguments"):
        await asyncio.wait_for(subscription.run(lambda c, d: None), 3)
    await subscription.close()


async def test_a_message_the_callback_cannot_take_ends_the_subscription(clients) -> None:
    sub, pub = clients

    def refuse(channel: bytes, data: bytes) -> None:
        raise ValueError(f"cannot take {data!r}")

    subscription = await _open(sub, [])
    try:
        runner = asyncio.ensure_future(subscription.run(refuse))
        await asyncio.sleep(0)
        assert await pub.publish(CHANNEL, b"poison") == 1
        # As a failed connection does: the layer logs it and subscribes again.
        with pytest.raises(ValueError, match="poison"):
            await asyncio.wait_for(runner, 3)
    finally:
        await subscription.close()
