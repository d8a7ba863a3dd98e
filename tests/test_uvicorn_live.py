"""uvicorn, the optional ASGI server, serves the same chat beside daphne."""

from __future__ import annotations

import signal
import urllib.request

import pytest
import websockets

from tests.support.client import ChatClient
from tests.support.servers import Uvicorn

pytestmark = [pytest.mark.live, pytest.mark.redis]


@pytest.fixture
def uvicorn_server(daphne_factory, redis_url):
    return daphne_factory(redis_url=redis_url, name="uvicorn", server_class=Uvicorn)


def test_uvicorn_serves_the_page(uvicorn_server):
    with urllib.request.urlopen(f"{uvicorn_server.http_url}/", timeout=5) as resp:
        assert resp.status == 200


async def test_uvicorn_and_daphne_workers_are_one_chat(uvicorn_server, daphne_factory, redis_url):
    daphne = daphne_factory(redis_url=redis_url, name="beside-uvicorn")
    ana = await ChatClient.connect(uvicorn_server.ws_url, nick="Ana")
    bia = await ChatClient.connect(daphne.ws_url, nick="Bia")
    try:
        await ana.say("from uvicorn")
        assert (await bia.recv_type("message"))["body"] == "from uvicorn"
        await bia.say("from daphne")
        assert (await ana.recv_type("message", body="from daphne"))["nick"] == "Bia"
    finally:
        await ana.close()
        await bia.close()


async def test_uvicorn_refuses_a_foreign_origin(uvicorn_server):
    with pytest.raises(websockets.InvalidStatus) as refused:
        await ChatClient.connect(uvicorn_server.ws_url, origin="http://evil.example")
    assert refused.value.response.status_code == 403
    # uvicorn offers ASGI's denial response itself: the body says why.
    assert b"is not allowed" in bytes(refused.value.response.body)


async def test_uvicorn_closes_sockets_with_1012_on_sigterm(uvicorn_server):
    client = await ChatClient.connect(uvicorn_server.ws_url, nick="Leaving")
    uvicorn_server.proc.send_signal(signal.SIGTERM)
    with pytest.raises(websockets.ConnectionClosed) as closed:
        while True:
            await client.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1012
