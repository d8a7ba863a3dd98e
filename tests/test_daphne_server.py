"""The daphne seam (chat/daphne_server.py): the internals it relies on, the frames it writes,
and its behaviour in real daphne processes."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest
from websockets.frames import Frame, Opcode

from chat.broadcast import text_frame, wire_frame
from chat.daphne_server import SendQueue
from tests.support.client import ChatClient
from tests.support.servers import ROOT


def _in_a_fresh_process(code: str) -> str:
    """Run `code` where daphne's command line is imported, as under `daphne ...` (importing
    daphne.server installs Twisted's reactor, which this test process must not do)."""
    result = subprocess.run(
        [sys.executable, "-c", "import daphne.cli\n" + code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"DJANGO_SETTINGS_MODULE": "tests.settings", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_no_internal_that_the_seam_uses_has_moved() -> None:
    out = _in_a_fresh_process(
        "from chat.daphne_server import missing_internals; print(missing_internals())"
    )
    assert out == "[]"


def test_the_installed_versions_are_the_tested_ones() -> None:
    out = _in_a_fresh_process(
        "from chat.daphne_server import version_mismatches; print(version_mismatches())"
    )
    assert out == "{}"


def test_the_tested_versions_are_pinned() -> None:
    from chat.daphne_server import TESTED_VERSIONS

    pins = {
        line.split("==")[0].strip().lower(): line.split("==")[1].strip()
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    for name, version in TESTED_VERSIONS.items():
        assert pins.get(name) == version, f"{name} is not pinned to {version}"


def test_install_makes_daphnes_command_line_build_the_chat_server() -> None:
    out = _in_a_fresh_process(
        "from chat.daphne_server import install\n"
        "from daphne.cli import CommandLineInterface\n"
        "print(install(max_backlog=1, grace=1, fast_write=True),"
        " CommandLineInterface.server_class.__name__)"
    )
    assert out == "True ChatServer"


def test_connections_read_the_factorys_options_without_copying_them() -> None:
    """autobahn copies (and pformats) ~40 options per connection unless the protocol has
    them: the factory's own subclass holds them once, as set after the factory was made."""
    out = _in_a_fresh_process(
        "from autobahn.websocket.protocol import WebSocketServerProtocol\n"
        "from daphne.ws_protocol import WebSocketFactory\n"
        "from twisted.internet.testing import StringTransport\n"
        "from chat.daphne_server import build_server_class\n"
        "server_class = build_server_class(max_backlog=0, grace=0, fast_write=True)\n"
        "server = server_class.__new__(server_class)\n"
        "server.ws_factory = WebSocketFactory(server, server='Daphne')\n"
        "server.ws_factory.setProtocolOptions(openHandshakeTimeout=7, autoPingTimeout=3)\n"
        "protocols = [server.ws_factory.buildProtocol(None) for _ in range(2)]\n"
        "for protocol in protocols:\n"
        "    protocol.makeConnection(StringTransport())\n"
        "copied = set(vars(protocols[0])) & set(WebSocketServerProtocol.CONFIG_ATTRS)\n"
        "accept = server.ws_factory.perMessageCompressionAccept\n"
        "print(protocols[1].openHandshakeTimeout, protocols[1].autoPingTimeout, len(copied),"
        " protocols[1].perMessageCompressionAccept is accept)"
    )
    assert out == "7 3 0 True"


def test_the_chat_server_freezes_what_is_loaded_and_sets_the_gc_thresholds() -> None:
    out = _in_a_fresh_process(
        "import gc\n"
        "from chat.daphne_server import build_server_class\n"
        "server_class = build_server_class(max_backlog=0, grace=0, fast_write=True)\n"
        "server_class(application=None, endpoints=['tcp:0'])\n"
        "print(gc.get_threshold(), gc.get_freeze_count() > 10000)"
    )
    assert out == "(7000, 10, 10) True"


def test_a_denial_response_has_its_status_body_and_length() -> None:
    from chat.daphne_server import _http_response

    raw = _http_response(403, [(b"content-type", b"text/plain")], [b"no ", b"entry\n"])
    assert raw.startswith(b"HTTP/1.1 403 Forbidden\r\n")
    assert b"\r\ncontent-type: text/plain\r\n" in raw
    assert b"\r\nContent-Length: 9\r\n" in raw
    assert raw.endswith(b"\r\n\r\nno entry\n")


def test_a_denial_response_drops_headers_that_would_break_it() -> None:
    from chat.daphne_server import _http_response

    raw = _http_response(403, [(b"x-a", b"1\r\nx-b: 2"), (b"content-length", b"99")], [b""])
    assert b"x-b" not in raw and b"99" not in raw


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_a_text_frame_is_what_a_websocket_server_sends(size: int) -> None:
    payload = ("é" * size).encode()[:size]
    expected = Frame(Opcode.TEXT, payload).serialize(mask=False, extensions=[])
    assert text_frame(payload) == expected


def test_a_broadcast_frame_is_built_once_per_event() -> None:
    event = {"type": "chat.frame", "text": '{"type":"message"}'}
    assert wire_frame(event) is wire_frame(event)


def test_the_send_queue_is_a_fifo_like_autobahns_deque() -> None:
    queue = SendQueue()
    assert not queue
    assert len(queue) == 0
    queue.append((b"a", True))
    queue.append((b"b", False))
    assert len(queue) == 2
    assert queue.popleft() == (b"a", True)
    assert queue.popleft() == (b"b", False)
    assert not queue
    assert queue.items is None
    with pytest.raises(IndexError):
        queue.popleft()


def test_an_open_chat_connection_keeps_no_http_channel_send_deque_or_option_copies() -> None:
    out = _in_a_fresh_process(
        "from twisted.internet.testing import StringTransport\n"
        "from twisted.web.http import HTTPChannel\n"
        "from daphne.ws_protocol import WebSocketFactory\n"
        "from chat.daphne_server import build_server_class\n"
        "server = build_server_class(max_backlog=1, grace=1, fast_write=True)\n"
        "factory = WebSocketFactory(None)\n"
        "factory.protocol = server.websocket_protocol\n"
        "factory.setProtocolOptions(autoPingInterval=7)\n"
        "protocol = factory.buildProtocol(None)\n"
        "transport = StringTransport()\n"
        "transport.registerProducer(HTTPChannel(), True)\n"
        "protocol.makeConnection(transport)\n"
        "print(transport.producer, type(protocol.send_queue).__name__,\n"
        "      protocol.autoPingInterval, 'autoPingInterval' in vars(protocol))"
    )
    assert out == "None SendQueue 7 False"


@pytest.mark.live
@pytest.mark.redis
class TestUnderDaphne:
    @pytest.fixture
    def worker(self, daphne_factory, redis_url):
        return daphne_factory(redis_url=redis_url, name="seam", CHAT_RATE="0")

    def test_daphne_runs_the_chat_server(self, worker) -> None:
        assert "daphne integration installed" in worker.log()

    async def test_frames_on_one_socket_keep_their_order(self, worker) -> None:
        """Broadcast frames (written pre-built) and the socket's own frames (errors, sent
        through autobahn) interleave on one socket without reordering or corruption."""
        ana = await ChatClient.connect(worker.ws_url, nick="Ana")
        bia = await ChatClient.connect(worker.ws_url, nick="Bia")
        try:
            for i in range(40):
                await ana.say(f"o{i}", client_id=f"o{i}")
                await bia.send("not json")
                if i % 10 == 0:
                    await ana.send({"type": "nick", "nick": f"Ana{i}"})
            await bia.recv_type("message", timeout=15, body="o39")
            kinds = [f["type"] for f in bia.frames]
            bodies = [f["body"] for f in bia.frames if f["type"] == "message"]
            assert bodies == [f"o{i}" for i in range(40)]
            while kinds.count("error") < 40:
                await bia.recv(timeout=10)
                kinds = [f["type"] for f in bia.frames]
            assert {f["code"] for f in bia.frames if f["type"] == "error"} == {"invalid_json"}
        finally:
            await ana.close()
            await bia.close()

    async def test_a_socket_closing_during_a_broadcast_harms_no_one(self, worker) -> None:
        sender = await ChatClient.connect(worker.ws_url, nick="Sender")
        leaver = await ChatClient.connect(worker.ws_url, nick="Leaver")
        stayers = [await ChatClient.connect(worker.ws_url, nick=f"S{i}") for i in range(3)]
        try:
            burst = asyncio.ensure_future(
                asyncio.gather(*(sender.say(f"b{i}", client_id=f"b{i}") for i in range(150)))
            )
            await leaver.recv_type("message", timeout=10)
            leaver.conn.transport.abort()
            await burst
            for stayer in stayers:
                await stayer.recv_type("message", timeout=20, body="b149")
                bodies = [m["body"] for m in stayer.messages()]
                assert bodies == [f"b{i}" for i in range(150)]
        finally:
            for client in [sender, *stayers]:
                await client.close()

    async def test_a_socket_joining_mid_broadcast_gets_a_clean_stream(self, worker) -> None:
        sender = await ChatClient.connect(worker.ws_url, nick="Sender")
        try:
            burst = asyncio.ensure_future(
                asyncio.gather(*(sender.say(f"k{i}", client_id=f"k{i}") for i in range(200)))
            )
            await sender.recv_type("message", timeout=10, body="k20")
            joiner = await ChatClient.connect(worker.ws_url, nick="Joiner")
            await burst
            await joiner.recv_type("message", timeout=20, body="k199")
            seen = [int(m["body"][1:]) for m in joiner.messages() if m["body"].startswith("k")]
            assert seen == list(range(seen[0], 200)), "a gap or a duplicate after joining"
            await joiner.close()
        finally:
            await sender.close()
