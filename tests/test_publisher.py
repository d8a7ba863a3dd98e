"""A worker's PUBLISH on a connection of its own (chat.publisher), against a real Redis:
replies reach their callers in order, concurrent publishes share one connection, a caller
that gives up does not shift the others' replies, and a connection that is closed, stops
answering or cannot be made fails as redis-py's would, after the client's retries."""

from __future__ import annotations

import asyncio
import gc
import socket
import warnings
from collections.abc import AsyncIterator

import pytest
from redis import asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from chat.publisher import Publisher, publish_command
from tests.support.environment import REDIS_PREFIX

pytestmark = pytest.mark.redis

HEARD = f"{REDIS_PREFIX}:pub:heard"
UNHEARD = f"{REDIS_PREFIX}:pub:unheard"


def test_the_command_is_resp() -> None:
    assert publish_command(b"ch", b"\x00hi") == (
        b"*3\r\n$7\r\nPUBLISH\r\n$2\r\nch\r\n$3\r\n\x00hi\r\n"
    )


@pytest.fixture
async def listener(redis_url: str) -> AsyncIterator[aioredis.client.PubSub]:
    """One subscriber of HEARD (none of UNHEARD), and the client that made it."""
    client = aioredis.Redis.from_url(redis_url)
    pubsub = client.pubsub()
    await pubsub.subscribe(HEARD)
    await pubsub.get_message(timeout=1)  # the confirmation
    yield pubsub
    await pubsub.aclose()
    await client.aclose()


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    made = aioredis.Redis.from_url(redis_url, socket_timeout=5)
    yield made
    await made.aclose()


@pytest.fixture
async def publisher(client: aioredis.Redis) -> AsyncIterator[Publisher]:
    made = Publisher(client)
    yield made
    await made.close()


def _address(publisher: Publisher) -> str:
    link = publisher._link
    assert link is not None
    host, port = link.transport.get_extra_info("sockname")[:2]
    return f"{host}:{port}"


async def test_concurrent_publishes_get_their_own_replies_on_one_connection(
    listener, publisher, client
) -> None:
    channels = [HEARD if n % 3 == 0 else UNHEARD for n in range(60)]
    counts = await asyncio.gather(
        *(publisher.publish(channel, f"m{n}".encode()) for n, channel in enumerate(channels))
    )
    assert counts == [1 if channel == HEARD else 0 for channel in channels]
    received = []
    while len(received) < 20:
        message = await listener.get_message(timeout=2)
        assert message is not None
        received.append(message["data"])
    assert received == [f"m{n}".encode() for n in range(0, 60, 3)]
    # One connection of its own, made once.
    address = _address(publisher)
    clients = await client.client_list()
    assert sum(entry["addr"] == address for entry in clients) == 1


async def test_a_caller_that_gives_up_does_not_shift_the_next_reply(listener, publisher) -> None:
    assert await publisher.publish(UNHEARD, b"connect") == 0
    gave_up = asyncio.ensure_future(publisher.publish(HEARD, b"abandoned"))
    await asyncio.sleep(0)  # written, its reply not yet read
    gave_up.cancel()
    assert await publisher.publish(UNHEARD, b"next") == 0
    assert await publisher.publish(HEARD, b"after") == 1


async def test_an_error_reply_fails_that_command_only(publisher) -> None:
    assert await publisher.publish(UNHEARD, b"connect") == 0
    with pytest.raises(ResponseError):
        await publisher._send(b"*1\r\n$14\r\nNOT-A-COMMAND!\r\n")
    assert await publisher.publish(UNHEARD, b"still fine") == 0


async def test_a_closed_connection_is_noticed_and_replaced(publisher, client) -> None:
    assert await publisher.publish(UNHEARD, b"connect") == 0
    first = publisher._link
    assert first is not None
    await client.execute_command("CLIENT", "KILL", "ADDR", _address(publisher))
    for _ in range(500):  # up to 5 s on a busy machine
        if first.lost is not None:
            break
        await asyncio.sleep(0.01)
    # Noticed when Redis closed it, before anything else was written to it.
    assert isinstance(first.lost, RedisConnectionError)
    assert await publisher.publish(UNHEARD, b"again") == 0
    assert publisher._link is not first


async def test_a_publish_redis_does_not_answer_times_out(redis_url: str, client) -> None:
    quick = aioredis.Redis.from_url(redis_url, socket_timeout=0.3, retry=Retry(NoBackoff(), 0))
    publisher = Publisher(quick)
    try:
        assert await publisher.publish(UNHEARD, b"connect") == 0
        await client.execute_command("CLIENT", "PAUSE", "1500", "ALL")
        try:
            with pytest.raises(RedisTimeoutError):
                await publisher.publish(UNHEARD, b"paused")
        finally:
            await client.execute_command("CLIENT", "UNPAUSE")
        assert publisher._link is not None and publisher._link.lost is not None
        assert await publisher.publish(UNHEARD, b"answered") == 0
    finally:
        await publisher.close()
        await quick.aclose()


async def test_a_lost_connection_is_retried_under_the_clients_policy(
    listener, redis_url: str
) -> None:
    retrying = aioredis.Redis.from_url(redis_url, socket_timeout=5, retry=Retry(NoBackoff(), 1))
    publisher = Publisher(retrying)
    assert await publisher.publish(UNHEARD, b"connect") == 0
    first = publisher._link
    assert first is not None
    # Lost with a publish on its way: the retry sends it again on a new connection.
    publishing = asyncio.ensure_future(publisher.publish(HEARD, b"retried"))
    await asyncio.sleep(0)
    first.connection_lost(OSError("reset"))
    try:
        assert await publishing == 1
        assert publisher._link is not first
    finally:
        await publisher.close()
        await retrying.aclose()


async def test_without_a_retry_policy_a_lost_publish_fails_at_once(publisher) -> None:
    # A client made from a URL, as the layer's: redis-py's own publish would not retry either.
    assert await publisher.publish(UNHEARD, b"connect") == 0
    first = publisher._link
    assert first is not None
    publishing = asyncio.ensure_future(publisher.publish(UNHEARD, b"lost"))
    await asyncio.sleep(0)
    first.connection_lost(OSError("reset"))
    with pytest.raises(RedisConnectionError, match="reset"):
        await publishing
    assert await publisher.publish(UNHEARD, b"next one connects") == 0


async def test_redis_unreachable_raises_connection_error_after_the_retries() -> None:
    # A port nothing listens on (reserved for the test by binding it, never listening).
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]
        unreachable = aioredis.Redis(
            host="127.0.0.1", port=port, socket_connect_timeout=1, retry=Retry(NoBackoff(), 2)
        )
        publisher = Publisher(unreachable)
        try:
            with pytest.raises(RedisConnectionError, match="after 3 tries"):
                await publisher.publish(UNHEARD, b"nowhere")
        finally:
            await publisher.close()
            await unreachable.aclose()


async def test_redis_pys_object_of_the_handed_over_connection_is_not_left_open(client) -> None:
    # redis-py's `Connection` would close the transport when collected with its streams set.
    publisher = Publisher(client)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert await publisher.publish(UNHEARD, b"connect") == 0
        gc.collect()
        assert await publisher.publish(UNHEARD, b"same connection") == 0
        await publisher.close()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]
