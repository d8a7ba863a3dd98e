"""Hard to break: each failure case against real daphne processes and real Redis."""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import time
from pathlib import Path

import pytest
import websockets

from chat.models import Message
from chat.presence import FLUSH_DELAY, REFRESH_INTERVAL
from tests.support.client import ChatClient

pytestmark = [pytest.mark.live, pytest.mark.redis]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


async def handshake_status(ws_url: str, origin: str | None) -> int | None:
    """The HTTP status of a refused handshake, or None if it was accepted."""
    headers = {} if origin is None else {"Origin": origin}
    try:
        conn = await websockets.connect(ws_url, additional_headers=headers, open_timeout=5)
    except websockets.InvalidStatus as exc:
        return exc.response.status_code
    await conn.close()
    return None


# --- origins ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "origin",
    ["http://evil.example", "http://localhost.evil.example", "null", None],
    ids=["foreign", "look-alike", "null", "missing"],
)
async def test_handshake_from_a_disallowed_origin_is_refused_with_403(
    daphne_factory, redis_url, origin
):
    server = daphne_factory(redis_url=redis_url, name="origin")
    assert await handshake_status(server.ws_url, origin) == 403
    assert "connect session" not in server.log()
    assert "handshake refused" in server.log()


@pytest.mark.parametrize(
    ("origin", "reason"),
    [
        ("http://evil.example", "origin 'http://evil.example' is not allowed"),
        (None, "no Origin header"),
    ],
    ids=["foreign", "missing"],
)
async def test_a_refused_handshake_says_why_in_its_body_and_its_log_line(
    daphne_factory, redis_url, origin, reason
):
    server = daphne_factory(redis_url=redis_url, name="origin-why")
    headers = {} if origin is None else {"Origin": origin}
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(server.ws_url, additional_headers=headers, open_timeout=5)
    response = refused.value.response
    assert response.status_code == 403
    assert response.headers["Content-Type"].startswith("text/plain")
    assert reason in bytes(response.body).decode()
    lines = [line for line in server.log().splitlines() if "handshake refused" in line]
    assert len(lines) == 1 and "WARNING" in lines[0] and reason in lines[0]


async def test_handshake_from_an_allowed_origin_is_accepted(daphne_factory, redis_url):
    server = daphne_factory(redis_url=redis_url, name="origin-ok")
    assert await handshake_status(server.ws_url, server.http_url) is None


# --- sockets per address ---------------------------------------------------------------


async def test_sockets_per_address_are_capped_across_workers(daphne_factory, redis_url):
    env = {"CHAT_MAX_SOCKETS_PER_IP": "3"}
    a = daphne_factory(redis_url=redis_url, name="ipa", **env)
    b = daphne_factory(redis_url=redis_url, name="ipb", **env)
    open_ = [
        await ChatClient.connect(a.ws_url, nick="one"),
        await ChatClient.connect(a.ws_url, nick="two"),
        await ChatClient.connect(b.ws_url, nick="three"),
    ]
    # Each worker counts the other's sockets as of its last refresh (chat.presence).
    await asyncio.sleep(FLUSH_DELAY + REFRESH_INTERVAL + 0.5)
    try:
        for server in (a, b):
            with pytest.raises(websockets.InvalidStatus) as refused:
                await ChatClient.connect(server.ws_url, nick="four")
            assert refused.value.response.status_code == 403
            assert b"too many open sockets" in bytes(refused.value.response.body)
        # The open ones are unaffected.
        await open_[0].say("still fine")
        for client in open_:
            await client.recv_type("message", body="still fine")
        # A closed socket frees a place.
        await open_.pop().close()
        await asyncio.sleep(0.3)
        open_.append(await ChatClient.connect(b.ws_url, nick="four"))
    finally:
        for client in open_:
            await client.close()


# --- frame size --------------------------------------------------------------------------


async def test_frame_over_the_chat_cap_closes_the_socket_with_4009(daphne_factory, redis_url):
    server = daphne_factory(redis_url=redis_url, name="frame")
    other = await ChatClient.connect(server.ws_url, nick="Other")
    big = await ChatClient.connect(server.ws_url, nick="Big")
    try:
        await big.send('{"type":"message","body":"' + "x" * 70_000 + '"}')
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await big.recv_type("message", timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4009
        await other.say("unaffected")
        assert (await other.recv_type("message"))["body"] == "unaffected"
        assert await Message.objects.acount() == 1
    finally:
        await other.close()


async def test_frames_over_the_server_cap_end_the_connection_without_memory_growth(
    daphne_factory, redis_url
):
    server = daphne_factory(
        redis_url=redis_url, name="hardcap", extra_args=["--websocket-max-message-size", "65536"]
    )
    other = await ChatClient.connect(server.ws_url, nick="Other")
    try:
        warm = await ChatClient.connect(server.ws_url, nick="Warm")
        await warm.close()
        before = rss_kib(server.proc.pid)
        for _ in range(20):
            big = await ChatClient.connect(server.ws_url, nick="Big")
            with pytest.raises(websockets.ConnectionClosed):
                await big.send("x" * (2 * 1024 * 1024))
                while True:  # presence frames may come first
                    await big.recv(timeout=5)
        after = rss_kib(server.proc.pid)
        # 20 frames of 2 MiB would be 40 MiB if they were buffered and kept.
        assert after - before < 16 * 1024, f"RSS grew by {after - before} KiB"
        await other.say("unaffected")
        assert (await other.recv_type("message"))["body"] == "unaffected"
    finally:
        await other.close()


# --- floods ------------------------------------------------------------------------------


async def test_a_flood_is_rate_limited_then_closed_and_others_stay_fast(daphne_factory, redis_url):
    env = {"CHAT_RATE": "20", "CHAT_RATE_PERIOD": "10"}
    server = daphne_factory(redis_url=redis_url, name="flood", **env)
    flooder = await ChatClient.connect(server.ws_url, nick="Flood")
    calm = await ChatClient.connect(server.ws_url, nick="Calm")
    try:

        async def flood() -> list[dict]:
            errors = []
            with pytest.raises(websockets.ConnectionClosed) as closed:
                for i in range(200):
                    await flooder.say(f"spam {i}", client_id=f"spam-{i}")
                    await asyncio.sleep(0.05)
                    while True:
                        try:
                            frame = await flooder.recv(timeout=0.01)
                        except TimeoutError:
                            break
                        if frame["type"] == "error":
                            errors.append(frame)
                await flooder.recv(timeout=5)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4008
            return errors

        async def chat_calmly() -> list[float]:
            latencies = []
            for i in range(8):
                started = time.monotonic()
                await calm.say(f"calm {i}")
                await calm.recv_type("message", body=f"calm {i}", timeout=5)
                latencies.append(time.monotonic() - started)
                await asyncio.sleep(0.3)
            return latencies

        errors, latencies = await asyncio.gather(flood(), chat_calmly())
        assert errors and all(e["code"] == "rate_limited" for e in errors)
        assert all(e["retry_after"] > 0 for e in errors)
        assert await Message.objects.filter(nick="Flood").acount() <= 20
        assert await Message.objects.filter(nick="Calm").acount() == 8
        assert sorted(latencies)[len(latencies) // 2] < 0.5, latencies
    finally:
        await calm.close()


# --- Redis outage -----------------------------------------------------------------------


async def test_redis_down_sends_get_unavailable_then_everything_recovers(
    daphne_factory, private_redis
):
    env = {"CHAT_RATE": "0"}
    a = daphne_factory(redis_url=private_redis.url, name="downa", **env)
    b = daphne_factory(redis_url=private_redis.url, name="downb", **env)
    ana = await ChatClient.connect(a.ws_url, nick="Ana")
    bia = await ChatClient.connect(b.ws_url, nick="Bia")
    try:
        private_redis.stop()
        await ana.say("during the outage", client_id="out-1")
        error = await ana.recv_type("error", timeout=10)
        assert error["code"] == "unavailable" and error["client_id"] == "out-1"

        # New handshakes fail fast instead of hanging.
        started = time.monotonic()
        with pytest.raises(
            (websockets.InvalidStatus, websockets.InvalidHandshake, OSError)
        ) as refused:
            await ChatClient.connect(b.ws_url, nick="New", timeout=10)
        assert time.monotonic() - started < 5
        if isinstance(refused.value, websockets.InvalidStatus):
            assert b"cannot reach Redis" in bytes(refused.value.response.body)

        await asyncio.sleep(3)
        private_redis.start()
        # The stored message reaches the others once Redis is back, without a resend.
        got = await bia.recv_type("message", timeout=10, client_id="out-1")
        assert got["body"] == "during the outage"
        # The page's resend is acknowledged with the same message, stored once.
        await ana.say("during the outage", client_id="out-1")
        assert (await ana.recv_type("message", timeout=10, client_id="out-1"))["id"] == got["id"]
        assert await Message.objects.filter(client_id="out-1").acount() == 1
        # Workers recovered by themselves: new sockets and new messages work.
        late = await ChatClient.connect(b.ws_url, nick="Late", timeout=10)
        await late.say("back to normal")
        for client in (ana, bia, late):
            await client.recv_type("message", timeout=10, body="back to normal")
        await late.close()
    finally:
        await ana.close()
        await bia.close()


# --- slow readers ------------------------------------------------------------------------


def open_non_reading_socket(port: int) -> socket.socket:
    """A WebSocket handshake over a raw socket that then never reads another byte."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws/chat/?nick=Sleepy HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Origin: http://127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(1)
    assert response.startswith(b"HTTP/1.1 101"), response
    return sock


async def test_a_client_that_never_reads_is_disconnected_and_memory_stays_bounded(
    daphne_factory, redis_url
):
    env = {"CHAT_RATE": "0", "CHAT_MAX_BACKLOG": "262144"}
    # daphne drops a socket that answers no ping within 20 + 30 s, with no "slow client"
    # line: on a loaded machine the 3,500 messages take longer than that, and the ping
    # timeout, not the backlog bound under test, cut the sleeper. Pings are kept out of it.
    no_pings = ["--ping-interval", "3600", "--ping-timeout", "3600"]
    server = daphne_factory(redis_url=redis_url, name="slow", extra_args=no_pings, **env)
    reader = await ChatClient.connect(server.ws_url, nick="Reader")
    writer = await ChatClient.connect(server.ws_url, nick="Writer")
    sleepy = open_non_reading_socket(server.port)
    try:
        before = rss_kib(server.proc.pid)
        body = "z" * 1900
        latencies = []
        # About 6.6 MB for the sleeper: more than the kernel's socket buffers (4 MiB here) can
        # hold, so the rest waits in the worker, past the backlog bound.
        for i in range(3500):
            started = time.monotonic()
            await writer.say(f"{i} {body}")
            await reader.recv_type("message", timeout=5)
            latencies.append(time.monotonic() - started)
            await writer.recv_type("message", timeout=5)  # the writer reads its echoes too
            writer.frames.clear()
            reader.frames.clear()
        after = rss_kib(server.proc.pid)
        assert server.log().count("slow client") == 1, "exactly the non-reading client is cut"
        assert after - before < 32 * 1024, f"RSS grew by {after - before} KiB"
        # Everyone else got every message, on time.
        assert sorted(latencies)[int(len(latencies) * 0.99)] < 0.5
    finally:
        sleepy.close()
        await reader.close()
        await writer.close()
