"""When storing fails (the database is locked), nothing is broadcast and a resend is safe."""

from __future__ import annotations

import pytest
from django.db import connection

from chat.models import Message
from tests.support.client import ChatClient
from tests.support.database import table_locked

pytestmark = pytest.mark.live


@pytest.fixture
def server(daphne_factory, live_db_url):
    if connection.vendor == "sqlite":
        return daphne_factory(redis_url=None, name="locked", SQLITE_TIMEOUT="1")
    return daphne_factory(
        redis_url=None,
        name="locked",
        DATABASE_URL=live_db_url + "?options=-c%20lock_timeout%3D1000",
    )


async def test_locked_database_gives_unavailable_and_broadcasts_nothing(server):
    ana = await ChatClient.connect(server.ws_url, nick="Ana")
    bia = await ChatClient.connect(server.ws_url, nick="Bia")
    try:
        with table_locked():
            await ana.say("while locked", client_id="lock-1")
            error = await ana.recv_type("error", timeout=10)
            assert error["code"] == "unavailable"
            assert error["client_id"] == "lock-1"
        # The page's retry after the lock is gone: stored once, broadcast once.
        await ana.say("while locked", client_id="lock-1")
        got = await bia.recv_type("message", timeout=10)
        assert got["client_id"] == "lock-1"
        assert [f for f in bia.frames if f["type"] == "message"] == [got]
        assert await Message.objects.filter(client_id="lock-1").acount() == 1
    finally:
        await ana.close()
        await bia.close()
