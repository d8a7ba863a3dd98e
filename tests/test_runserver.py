"""`python manage.py runserver` serves the page and a working socket (daphne's runserver)."""

from __future__ import annotations

import urllib.request

import pytest

from tests.conftest import REDIS_PREFIX
from tests.live import Runserver, base_env
from tests.wsclient import ChatClient

pytestmark = pytest.mark.live


@pytest.fixture
def runserver(live_db_url):
    proc = Runserver(
        env=base_env(db_url=live_db_url, redis_url=None, CHAT_REDIS_PREFIX=REDIS_PREFIX),
        name="runserver",
    )
    proc.start()
    yield proc
    proc.stop()


def test_runserver_serves_the_page(runserver):
    with urllib.request.urlopen(f"{runserver.http_url}/", timeout=5) as resp:
        assert resp.status == 200
        assert b'id="chat-config"' in resp.read()


def test_runserver_serves_static_files(runserver):
    with urllib.request.urlopen(f"{runserver.http_url}/static/chat/app.css", timeout=5) as resp:
        assert resp.status == 200


async def test_runserver_serves_a_working_socket(runserver):
    client = await ChatClient.connect(runserver.ws_url, nick="Smoke")
    try:
        await client.say("over runserver")
        got = await client.recv_type("message")
        assert got["body"] == "over runserver"
        assert got["nick"] == "Smoke"
    finally:
        await client.close()
