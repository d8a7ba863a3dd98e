"""A deletion reaches every worker: real daphne processes on real Redis, the retract published
by this test process through the broadcast layer, as the admin would publish it."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async

from chat import broadcast
from chat.layers import RedisBroadcastChannelLayer
from chat.moderation import message_delete
from tests.conftest import REDIS_PREFIX
from tests.wsclient import ChatClient

pytestmark = [pytest.mark.live, pytest.mark.redis]


@pytest.fixture
def redis_layer(redis_url, monkeypatch):
    """This process publishes through the same Redis layer as the workers."""
    layer = RedisBroadcastChannelLayer(hosts=[redis_url], prefix=f"{REDIS_PREFIX}:layer")
    monkeypatch.setattr(broadcast, "get_channel_layer", lambda: layer)
    return layer


@pytest.fixture
def workers(daphne_factory, redis_url):
    return [daphne_factory(redis_url=redis_url, name=f"w{n}", CHAT_RATE="0") for n in (1, 2)]


async def test_a_deletion_is_retracted_on_every_worker_within_a_second(workers, redis_layer):
    ana = await ChatClient.connect(workers[0].ws_url, nick="Ana")
    bia = await ChatClient.connect(workers[1].ws_url, nick="Bia")
    try:
        await ana.say("to be deleted", client_id="d1")
        message_id = (await ana.recv_type("message", body="to be deleted"))["id"]
        await bia.recv_type("message", id=message_id)
        await sync_to_async(message_delete)(ids=[message_id], by=None, via="admin")
        for client in (ana, bia):
            await client.recv_type("retract", timeout=1, id=message_id)
    finally:
        await ana.close()
        await bia.close()


async def test_a_join_after_a_deletion_gets_no_such_message(workers, redis_layer):
    ana = await ChatClient.connect(workers[0].ws_url, nick="Ana")
    bia = await ChatClient.connect(workers[1].ws_url, nick="Bia")
    try:
        for body in ("keep", "drop"):
            await ana.say(body, client_id=body)
        await bia.recv_type("message", body="keep")
        dropped = (await bia.recv_type("message", body="drop"))["id"]
        await sync_to_async(message_delete)(ids=[dropped], by=None, via="admin")
        # Both workers have heard the retract once their sockets have it.
        for client in (ana, bia):
            await client.recv_type("retract", timeout=1, id=dropped)
        for worker in workers:
            late = await ChatClient.connect(worker.ws_url, nick="Late")
            assert [m["body"] for m in late.hello["history"]] == ["keep"]
            await late.close()
    finally:
        await ana.close()
        await bia.close()
