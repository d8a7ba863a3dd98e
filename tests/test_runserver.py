"""`python manage.py runserver` serves the page and a working socket (daphne's runserver)."""

from __future__ import annotations

import time
import urllib.request

import pytest

from tests.support.client import ChatClient
from tests.support.servers import ReloadingRunserver, Runserver

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


def test_make_run_says_each_warning_once_and_logs_each_request_once(daphne_factory):
    """As `make run` starts it (autoreloader parent and child, debug on, no Redis): the
    in-memory layer warning once, one log line per request."""
    server = daphne_factory(
        redis_url=None, name="reloading", server_class=ReloadingRunserver, DJANGO_DEBUG="true"
    )
    with urllib.request.urlopen(f"{server.http_url}/?probe", timeout=5) as resp:
        assert resp.status == 200
    request_lines: list[str] = []
    deadline = time.monotonic() + 10
    while not request_lines and time.monotonic() < deadline:
        time.sleep(0.2)
        request_lines = [line for line in server.log().splitlines() if "HTTP GET /?probe " in line]
    time.sleep(1)  # a second copy, if any, would be written by now
    log = server.log()
    assert [line for line in log.splitlines() if "HTTP GET /?probe " in line] == request_lines
    assert len(request_lines) == 1, log
    assert log.count("REDIS_URL is not set") == 1, log
    assert log.count("Watching for file changes") == 1, log
