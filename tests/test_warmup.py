"""chat.warmup: a worker loads at start what its first handshake would otherwise wait for."""

from __future__ import annotations

import json
import logging

import pytest
from asgiref.sync import sync_to_async
from channels.layers import channel_layers

from chat import broadcast, guard, services, warmup
from chat.presence import PresenceTracker, get_tracker
from tests.support.environment import REDIS_PREFIX, use_the_broadcast_layer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_layer")]


@pytest.fixture
def prefixed(settings):
    settings.CHAT_REDIS_PREFIX = REDIS_PREFIX


async def test_a_warm_worker_has_its_sanctions_and_window(settings, redis_url, prefixed):
    use_the_broadcast_layer(settings, redis_url)
    settings.REDIS_URL = redis_url
    for i in range(3):
        await sync_to_async(services.message_create)(
            nick="Ana", body=f"before {i}", client_id=f"warm-{i}", session="s-ana"
        )
    other = PresenceTracker(redis_url=redis_url, ttl=30)
    try:
        await warmup.warm_up()

        assert guard.get_guard().loaded.is_set()
        lobby = broadcast.get_lobby()
        assert lobby is not None and lobby.filled.is_set()
        bodies = [json.loads(text)["body"] for _, text in lobby.window.latest(3)]
        assert bodies == ["before 0", "before 1", "before 2"]
        # Someone joins another worker after the warm-up: this worker's first join still
        # reads the other workers (an idle worker's view is not kept fresh).
        await other.join("s-bia", "Bia")
        await other.sync()
        page = await get_tracker().join("s-cai", "Cai")
        assert [entry["nick"] for entry in page.entries] == ["Bia", "Cai"]
    finally:
        await other.aclose()
        await get_tracker().aclose()
        await channel_layers["default"].flush()


async def test_a_warm_up_that_fails_is_logged_and_leaves_the_work_to_the_handshakes(
    monkeypatch, caplog
):
    def broken(**kwargs):
        raise RuntimeError("no database")

    monkeypatch.setattr(warmup, "get_guard", broken)
    with caplog.at_level(logging.ERROR, logger="chat.warmup"):
        await warmup.warm_up()
    assert "warm-up failed" in caplog.text
