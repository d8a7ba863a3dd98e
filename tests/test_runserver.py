"""`python manage.py runserver` serves the page and a working socket (daphne's runserver)."""

from __future__ import annotations

import urllib.request

import pytest

from tests.support.client import ChatClient
from tests.support.servers import Runserver

pytestmark = pytest.mark.live


@pytest.fixture
def runserver(daphne_factory):
    return daphne_factory(redis_url=None, name="runserver", server_class=Runserver)


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
