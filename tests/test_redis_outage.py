"""Losing Redis for a while does not kill a worker, and no socket is left deaf."""

from __future__ import annotations

import asyncio
import time

import pytest
import websockets

from tests.support.client import ChatClient

pytestmark = [pytest.mark.live, pytest.mark.redis]


async def say_and_collect(
    sender: ChatClient, listeners: list[ChatClient], body: str, timeout: float = 10
) -> None:
    await sender.say(body)
    for listener in listeners:
        await listener.recv_type("message", timeout=timeout, body=body)


async def test_sockets_keep_receiving_after_a_redis_restart(daphne_factory, private_redis):
    a = daphne_factory(redis_url=private_redis.url, name="ra", CHAT_RATE="0")
    b = daphne_factory(redis_url=private_redis.url, name="rb", CHAT_RATE="0")
    ana = await ChatClient.connect(a.ws_url, nick="Ana")
    bia = await ChatClient.connect(b.ws_url, nick="Bia")
    try:
        await say_and_collect(ana, [ana, bia], "before")
        private_redis.stop()
        await asyncio.sleep(1)
        private_redis.start()
        back = time.monotonic()
        # Within 10 s of Redis returning, a new message reaches every connected client.
        delivered = False
        while time.monotonic() - back < 10 and not delivered:
            try:
                await say_and_collect(ana, [ana, bia], f"after {time.monotonic()}", timeout=1.5)
                delivered = True
            except TimeoutError:
                continue
        assert delivered, "a socket stayed open but deaf after Redis came back"
        assert time.monotonic() - back < 10
    except websockets.ConnectionClosed as exc:
        pytest.fail(f"a socket was closed instead of recovering: {exc}")
    finally:
        await ana.close()
        await bia.close()
