"""The daphne seam (chat/daphne_server.py): the internals it relies on, the frames it writes,
and its behaviour in real daphne processes."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from websockets.frames import Frame, Opcode

from chat.broadcast import text_frame, wire_frame
from chat.daphne_server import (
    MAX_HANDSHAKE,
    SendQueue,
    _send_now,
    websocket_upgrade,
    with_listen_backlog,
)
from tests.support.client import ChatClient
from tests.support.polling import wait_for
from tests.support.servers import ROOT, free_port


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


def test_a_connection_starts_in_the_state_autobahn_gives_it() -> None:
    """The chat's `_connectionMade` sets what autobahn's does, the constants on the class."""
    out = _in_a_fresh_process(
        "from daphne.ws_protocol import WebSocketFactory\n"
        "from twisted.internet.testing import StringTransport\n"
        "from chat.daphne_server import (\n"
        "    CONSTANT_CONNECTION_STATE, build_server_class, connection_made_assignments)\n"
        "server_class = build_server_class(max_backlog=0, grace=0, fast_write=True)\n"
        "protocols = []\n"
        "for chat in (True, False):\n"
        "    server = server_class.__new__(server_class)\n"
        "    factory = WebSocketFactory(server, server='Daphne')\n"
        "    if chat:\n"
        "        server.ws_factory = factory\n"
        "    factory.setProtocolOptions(openHandshakeTimeout=7)\n"
        "    protocol = factory.buildProtocol(None)\n"
        "    protocol.makeConnection(StringTransport())\n"
        "    protocols.append(protocol)\n"
        "ours, theirs = protocols\n"
        "def seen(value):\n"
        "    return value if value is None or isinstance(value, (bool, int, bytes))"
        " else type(value).__name__\n"
        "names = sorted(connection_made_assignments())\n"
        "print([name for name in names if seen(getattr(ours, name, 'unset'))"
        " != seen(getattr(theirs, name, 'unset'))])\n"
        "print(sorted(set(vars(ours)) & set(CONSTANT_CONNECTION_STATE)))\n"
        "print(type(ours.openHandshakeTimeoutCall).__name__, type(ours.send_queue).__name__,"
        " ours.factory.countConnections, theirs.factory.countConnections)"
    )
    assert out.splitlines() == [
        "['send_queue']",  # the chat's own SendQueue for autobahn's deque
        "['openHandshakeTimeoutCall']",
        "_BatchedCall SendQueue 1 1",
    ]


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


def test_a_connection_formats_no_debug_line_when_it_opens_reads_or_closes() -> None:
    """autobahn builds its debug lines' arguments (click-coloured names) even with debug
    logging off: on every read, and when a connection is made and lost. The chat's protocol
    does what those methods do without them: the peer, the connection count, the bytes handed
    to autobahn and the end of the connection are as before."""
    out = _in_a_fresh_process(
        "import autobahn.util\n"
        "from twisted.internet.testing import StringTransport\n"
        "from twisted.internet.error import ConnectionDone\n"
        "from twisted.python.failure import Failure\n"
        "from daphne.ws_protocol import WebSocketFactory\n"
        "from chat.daphne_server import build_server_class\n"
        "calls = []\n"
        "hl = autobahn.util.hl\n"
        "autobahn.util.hl = lambda *a, **k: calls.append(a) or hl(*a, **k)\n"
        "server = build_server_class(max_backlog=1, grace=1, fast_write=True)\n"
        "factory = WebSocketFactory(None)\n"
        "factory.protocol = server.websocket_protocol\n"
        "protocol = factory.buildProtocol(None)\n"
        "protocol.onClose = lambda *args: print('closed', end=' ')  # daphne's, minus daphne\n"
        "transport = StringTransport()\n"
        "protocol.makeConnection(transport)\n"
        "print(len(calls), protocol.peer, factory.countConnections)\n"
        "protocol.dataReceived(b'GET /ws/chat/ HTTP/1.1\\r\\n')\n"
        "print(len(calls), protocol.data)\n"
        "protocol.connectionLost(Failure(ConnectionDone()))\n"
        "print(len(calls), factory.countConnections, protocol.state == protocol.STATE_CLOSED)"
    )
    assert out.splitlines() == [
        "0 tcp4:192.168.1.1:54321 1",
        "0 b'GET /ws/chat/ HTTP/1.1\\r\\n'",
        "closed 0 0 True",
    ]


class _Transport:
    """What `_send_now` reads of a Twisted TCP connection."""

    SEND_LIMIT = 64

    def __init__(self, sock: socket.socket) -> None:
        self.socket = sock
        self.big: list[bytes] = []

    def writeSomeData(self, data: bytes) -> int:  # noqa: N802 (Twisted's name)
        self.big.append(bytes(data))
        return 3


def test_send_now_writes_what_the_kernel_takes_and_reports_it() -> None:
    ours, peer = socket.socketpair()
    with ours, peer:
        ours.setblocking(False)
        transport = _Transport(ours)
        assert _send_now(transport, b"hello") == 5
        assert peer.recv(10) == b"hello"
        # Past SEND_LIMIT, Twisted's own writeSomeData (which sends at most that much).
        assert _send_now(transport, b"x" * 65) == 3
        assert transport.big == [b"x" * 65]
        # A full socket buffer takes part of a write, then nothing.
        while (sent := _send_now(transport, b"y" * 60)) == 60:
            pass
        assert 0 <= sent < 60
        assert _send_now(transport, b"z") == 0
        peer.close()
    # A connection the peer closed takes nothing; Twisted's write path finds out.
    ours, peer = socket.socketpair()
    with ours:
        ours.setblocking(False)
        peer.close()
        assert _send_now(_Transport(ours), b"late") == 0


def _upgrade(
    *headers: bytes, target: bytes = b"/ws/chat/?nick=Ana", host: bytes = b"127.0.0.1:8000"
) -> bytes:
    lines = [
        b"GET " + target + b" HTTP/1.1",
        b"Host: " + host,
        b"Origin: http://" + host,
        b"Upgrade: websocket",
        b"Connection: Upgrade",
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        b"Sec-WebSocket-Version: 13",
        *headers,
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def test_a_whole_upgrade_request_takes_the_fast_path_with_its_raw_query_string() -> None:
    assert websocket_upgrade(_upgrade()) == b"nick=Ana"
    assert websocket_upgrade(_upgrade(target=b"/ws/chat/")) == b""
    assert websocket_upgrade(_upgrade(target=b"/ws/chat/?a=%C3%A9&b")) == b"a=%C3%A9&b"
    # Header names are case-insensitive; daphne compares the first Upgrade value, lowered.
    request = _upgrade().replace(b"Upgrade: websocket", b"upgrade:   WebSocket ")
    assert websocket_upgrade(request) == b"nick=Ana"
    assert websocket_upgrade(_upgrade(b"X_Under: ok", b"Origin: http://x")) == b"nick=Ana"


@pytest.mark.parametrize(
    ("why", "request_bytes"),
    [
        ("not an upgrade", _upgrade().replace(b"Upgrade: websocket\r\n", b"")),
        ("another upgrade", _upgrade().replace(b"Upgrade: websocket", b"Upgrade: h2c")),
        (
            "the first Upgrade decides",
            _upgrade(b"Upgrade: websocket").replace(b"websocket", b"h2c", 1),
        ),
        ("a POST", _upgrade().replace(b"GET ", b"POST ", 1)),
        ("HTTP/1.0", _upgrade().replace(b"HTTP/1.1", b"HTTP/1.0", 1)),
        ("not a path", _upgrade(target=b"http://x/ws/chat/")),
        ("a non-ASCII target", _upgrade(target="/ws/chat/?nick=é".encode())),
        ("a space in the target", _upgrade(target=b"/ws/chat/ x")),
        ("half a request", _upgrade()[:-2]),
        ("bytes after the request", _upgrade() + b"x"),
        ("two requests", _upgrade() + _upgrade()),
        ("a body", _upgrade(b"Content-Length: 0")),
        ("a chunked body", _upgrade(b"transfer-encoding: chunked")),
        ("a bad header name", _upgrade(b"Bad Name: x")),
        ("a forbidden byte in a value", _upgrade(b"X-Note: a\x0bb")),
        ("a folded line", _upgrade(b"X-Note: a", b" folded")),
        ("a bare LF", _upgrade(b"X-Note: a\nb")),
        ("a NUL in a value", _upgrade(b"X-Note: a\x00b")),
        ("a line separator in a value", _upgrade("X-Note: a\u2028X-Evil: 1".encode())),
        ("a non-ASCII value", _upgrade("X-Note: café".encode())),
        (
            "a header smuggled through the target",
            _upgrade(target=b"/ws/chat/?nick=a\tHTTP/1.1\x0bX-Forwarded-For:6.6.6.6"),
        ),
        ("a control byte in the target", _upgrade(target=b"/ws/chat/?nick=a\x0b")),
        ("too big", _upgrade(b"X-Pad: " + b"p" * MAX_HANDSHAKE)),
    ],
)
def test_anything_else_goes_through_daphnes_http_request(why: str, request_bytes: bytes) -> None:
    assert websocket_upgrade(request_bytes) is None, why


def test_endpoints_get_the_listen_backlog_where_their_kind_takes_one() -> None:
    endpoints = [
        "tcp:port=8000:interface=127.0.0.1",
        "unix:/run/chat.sock",
        "fd:fileno=3",
        "tcp:port=8001:backlog=10",
    ]
    assert with_listen_backlog(endpoints, 2048) == [
        "tcp:port=8000:interface=127.0.0.1:backlog=2048",
        "unix:/run/chat.sock:backlog=2048",
        "fd:fileno=3",
        "tcp:port=8001:backlog=10",
    ]
    assert with_listen_backlog(endpoints, 0) == endpoints


def test_twisted_reads_the_backlog_from_the_endpoint_string() -> None:
    out = _in_a_fresh_process(
        "from twisted.internet import reactor\n"
        "from twisted.internet.endpoints import serverFromString\n"
        "from chat.daphne_server import with_listen_backlog\n"
        "[tcp, unix] = with_listen_backlog(['tcp:port=0:interface=127.0.0.1', 'unix:/x'], 99)\n"
        "print(serverFromString(reactor, tcp)._backlog, serverFromString(reactor, unix)._backlog)"
    )
    assert out == "99 99"


_SNIFFER = (
    "from twisted.internet.address import IPv4Address\n"
    "from twisted.internet.task import Clock\n"
    "from twisted.internet.testing import StringTransport\n"
    "from twisted.web.http import _GenericHTTPChannelProtocol\n"
    "from daphne.ws_protocol import WebSocketFactory\n"
    "from chat.daphne_server import build_server_class\n"
    "server_class = build_server_class(max_backlog=1, grace=1, fast_write=True,"
    " fast_handshake=True)\n"
    "class Server:\n"
    "    ws_factory = WebSocketFactory(None)\n"
    "    ws_factory.protocol = server_class.websocket_protocol\n"
    "    def protocol_connected(self, protocol): pass\n"
    "factory = server_class.http_factory_class(Server())\n"
    "factory.reactor = Clock()\n"
    "addr = IPv4Address('TCP', '127.0.0.1', 5000)\n"
    "from zope.interface import implementer\n"
    "from twisted.internet.interfaces import ITCPTransport\n"
    "@implementer(ITCPTransport)\n"
    "class TCPTransport(StringTransport):  # what Nagle's setting was left at\n"
    "    nodelay = None\n"
    "    def setTcpNoDelay(self, enabled): self.nodelay = enabled\n"
    "def connect():\n"
    "    transport = TCPTransport(peerAddress=addr)\n"
    "    transport.protocol = factory.buildProtocol(addr)\n"
    "    transport.protocol.makeConnection(transport)\n"
    "    return transport\n"
)


def test_the_first_read_hands_the_connection_to_the_websocket_or_to_http() -> None:
    request = _upgrade().decode()
    out = _in_a_fresh_process(
        _SNIFFER + "from twisted.internet.defer import Deferred\n"
        "seen = []\n"
        "def on_connect(self, request):\n"
        "    seen.append(request.path)\n"
        "    return Deferred()\n"
        "server_class.websocket_protocol.onConnect = on_connect\n"
        "ws = connect()\n"
        "print(ws.nodelay)\n"
        f"ws.protocol.dataReceived({request!r}.encode())\n"
        "print(type(ws.protocol).__name__, ws.protocol._raw_query_string, seen, ws.nodelay)\n"
        "web = connect()\n"
        "web.protocol.dataReceived(b'GET /healthz HTTP/1.1\\r\\nHost: x\\r\\n')\n"
        "print(isinstance(web.protocol, _GenericHTTPChannelProtocol), web.producer is not None,"
        " web.nodelay)"
    )
    # Nagle's delay is off from the start (autobahn's own attempt at it fails on a new
    # connection, before its options are set: the protocol has no `tcpNoDelay` yet).
    assert out.splitlines() == [
        "True",
        "ChatWebSocketProtocol b'nick=Ana' ['/ws/chat/'] True",
        "True True True",
    ]


def test_the_handshakes_answer_leaves_with_the_first_frame() -> None:
    """The 101 is held while autobahn writes it and goes out with the first frame (the
    consumer's `hello`) in one write; without a frame, by the next turn of the loop; before
    a clean drop; at once with fast writes off."""
    request = _upgrade().decode()
    out = _in_a_fresh_process(
        "import asyncio\n"
        "from types import SimpleNamespace\n"
        "from twisted.internet.defer import Deferred\n"
        "from twisted.internet.testing import StringTransport\n"
        "from daphne.ws_protocol import WebSocketFactory\n"
        "from chat.daphne_server import build_server_class\n"
        "class Transport(StringTransport):  # with what write_frame reads of Twisted's\n"
        "    _tempDataBuffer, dataBuffer, offset, _writeDisconnected = [], b'', 0, False\n"
        "    def unregisterProducer(self):  # a real transport does not mind\n"
        "        self.producer = None\n"
        "def on_connect(self, request):\n"
        "    self.request, self.client_addr = request, None\n"
        "    self.server = SimpleNamespace(log_action=lambda *args: None)\n"
        "    self.handshake_deferred = Deferred()\n"
        "    return self.handshake_deferred\n"
        "def opened(fast_write):\n"
        "    server_class = build_server_class(max_backlog=0, grace=0, fast_write=fast_write)\n"
        "    server_class.websocket_protocol.onConnect = on_connect\n"
        "    factory = WebSocketFactory(None, server='Daphne')\n"
        "    factory.protocol = server_class.websocket_protocol\n"
        "    protocol = factory.buildProtocol(None)\n"
        "    transport = Transport()\n"
        "    protocol.makeConnection(transport)\n"
        f"    protocol.dataReceived({request!r}.encode())\n"
        "    protocol.handshake_deferred.callback(None)\n"
        "    return protocol, transport\n"
        "def shown(transport):\n"
        "    data = transport.value()\n"
        "    head, _, rest = data.partition(b'\\r\\n\\r\\n')\n"
        "    return (head.split(b'\\r\\n')[0].decode(), rest.decode()) if data else ()\n"
        "async def main():\n"
        "    protocol, transport = opened(True)\n"
        "    print(shown(transport), protocol.state == protocol.STATE_OPEN)\n"
        "    protocol.write_frame(b'HELLO')\n"
        "    print(shown(transport))\n"
        "    protocol, transport = opened(True)\n"
        "    await asyncio.sleep(0)\n"
        "    print(shown(transport))\n"
        "    protocol.write_frame(b'LATER')\n"
        "    print(shown(transport))\n"
        "    protocol, transport = opened(True)\n"
        "    protocol.dropConnection(abort=False)\n"
        "    print(shown(transport), transport.disconnecting)\n"
        "    protocol, transport = opened(False)\n"
        "    print(shown(transport))\n"
        "asyncio.run(main())\n"
    )
    assert out.splitlines() == [
        "() True",
        "('HTTP/1.1 101 Switching Protocols', 'HELLO')",
        "('HTTP/1.1 101 Switching Protocols', '')",
        "('HTTP/1.1 101 Switching Protocols', 'LATER')",
        "('HTTP/1.1 101 Switching Protocols', '') True",
        "('HTTP/1.1 101 Switching Protocols', '')",
    ]


def test_the_chats_onconnect_starts_the_application_as_daphnes_does() -> None:
    """Requests through daphne's `onConnect` (and its `applicationCreateWorked`) and through
    the chat's: the same scope, the same state on the protocol, the same first event."""
    out = _in_a_fresh_process(
        "import json\n"
        "from autobahn.websocket.types import ConnectionRequest\n"
        "from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol\n"
        "from twisted.internet.address import IPv4Address, IPv6Address, UNIXAddress\n"
        "from twisted.internet.defer import Deferred\n"
        "from twisted.internet.testing import StringTransport\n"
        "from chat.daphne_server import build_server_class\n"
        "server_class = build_server_class(max_backlog=0, grace=0, fast_write=True)\n"
        "class Queue(list):\n"
        "    put_nowait = list.append\n"
        "class Server:\n"
        "    root_path = ''\n"
        "    proxy_forwarded_address_header = None\n"
        "    proxy_forwarded_port_header = proxy_forwarded_proto_header = None\n"
        "    def __init__(self):\n"
        "        self.scopes, self.logged = [], []\n"
        "    def protocol_connected(self, protocol): self.connected = True\n"
        "    def create_application(self, protocol, scope):\n"
        "        self.scopes.append(scope)\n"
        "        return Queue()\n"
        "    def log_action(self, *args): self.logged.append(args[1])\n"
        "CASES = {\n"
        "  'plain': ({'host': 'h:1', 'origin': 'http://h:1', 'cookie': 'a=b'}, {}, 4),\n"
        "  'root path, underscore': ({'Daphne-Root-Path': '/p%20x', 'x_evil': '1'}, {}, 4),\n"
        "  'subprotocols': ({'sec-websocket-protocol': 'chat, v2'}, {}, 4),\n"
        "  'behind a proxy': ({'x-forwarded-for': '10.1.2.3', 'x-forwarded-port': '80'},\n"
        "     {'proxy_forwarded_address_header': 'X-Forwarded-For',\n"
        "      'proxy_forwarded_port_header': 'X-Forwarded-Port'}, 4),\n"
        "  'IPv6': ({'host': '[::1]:1'}, {}, 6),\n"
        "  'Unix socket': ({'host': 'h'}, {'root_path': '/r'}, 0),\n"
        "}\n"
        "def connect(methods, headers, options, family):\n"
        "    on_connect, on_open = methods\n"
        "    server = Server()\n"
        "    vars(server).update(options)\n"
        "    factory = WebSocketFactory(server, server='Daphne')\n"
        "    protocol = server_class.websocket_protocol()\n"
        "    protocol.factory = factory\n"
        "    if family == 4:\n"
        "        peer, host = IPv4Address('TCP', '1.2.3.4', 5), IPv4Address('TCP', '5.6.7.8', 80)\n"
        "    elif family == 6:\n"
        "        peer, host = IPv6Address('TCP', '::1', 5), IPv6Address('TCP', '::1', 80)\n"
        "    else:\n"
        "        peer = host = UNIXAddress('/tmp/s')\n"
        "    protocol.transport = StringTransport(hostAddress=host, peerAddress=peer)\n"
        "    protocol._raw_query_string = b'nick=Ana'\n"
        "    request = ConnectionRequest(\n"
        "        'peer', headers, 'h', '/ws/chat%20x/', {}, 13, '', [], [])\n"
        "    answer = on_connect(protocol, request)\n"
        "    on_open(protocol)\n"
        "    state = {k: repr(getattr(protocol, k, None)) for k in (\n"
        "        'root_path', 'clean_headers', 'client_addr', 'server_addr', 'client_scheme',\n"
        "        'path', 'protocol_to_accept', 'application_queue')}\n"
        "    state['request'] = protocol.request is request\n"
        "    state['answer'] = type(answer).__name__, answer is protocol.handshake_deferred\n"
        "    state['opened'] = protocol.socket_opened <= protocol.last_ping\n"
        "    state['connected'] = server.connected\n"
        "    return [repr(s) for s in server.scopes], state, server.logged\n"
        "for name, (headers, options, family) in CASES.items():\n"
        "    chat = server_class.websocket_protocol\n"
        "    daphnes = connect((WebSocketProtocol.onConnect, WebSocketProtocol.onOpen),\n"
        "        headers, options, family)\n"
        "    ours = connect((chat.onConnect, chat.onOpen), headers, options, family)\n"
        "    print(json.dumps([name, daphnes[:2] == ours[:2], daphnes[2], ours[2],\n"
        "        ours[1]['application_queue']]))\n"
    )
    results = [json.loads(line) for line in out.splitlines()]
    # daphne logged `connecting` and `connected`, which the chat's server drops anyway.
    assert results == [
        [name, True, ["connecting", "connected"], [], "[{'type': 'websocket.connect'}]"]
        for name in (
            "plain",
            "root path, underscore",
            "subprotocols",
            "behind a proxy",
            "IPv6",
            "Unix socket",
        )
    ]


def test_the_chats_onconnect_fails_the_handshake_when_the_application_cannot_start() -> None:
    out = _in_a_fresh_process(
        "from autobahn.websocket.types import ConnectionRequest\n"
        "from daphne.ws_protocol import WebSocketFactory\n"
        "from twisted.internet.address import IPv4Address\n"
        "from twisted.internet.testing import StringTransport\n"
        "from chat.daphne_server import build_server_class\n"
        "server_class = build_server_class(max_backlog=0, grace=0, fast_write=True)\n"
        "class Server:\n"
        "    root_path = ''\n"
        "    proxy_forwarded_address_header = None\n"
        "    def protocol_connected(self, protocol): pass\n"
        "    def create_application(self, protocol, scope): raise RuntimeError('no app')\n"
        "protocol = server_class.websocket_protocol()\n"
        "protocol.factory = WebSocketFactory(Server(), server='Daphne')\n"
        "address = IPv4Address('TCP', '1.2.3.4', 5)\n"
        "protocol.transport = StringTransport(hostAddress=address, peerAddress=address)\n"
        "protocol._raw_query_string = b''\n"
        "try:\n"
        "    protocol.onConnect(ConnectionRequest('p', {}, 'h', '/', {}, 13, '', [], []))\n"
        "except RuntimeError as exc:\n"
        "    print('raised', exc)\n"
    )
    # autobahn turns an exception of onConnect into a failed handshake (500); daphne's
    # left the handshake waiting for the open-handshake timeout.
    assert out.splitlines()[-1] == "raised no app"


def test_the_origins_read_are_remembered_within_a_bound() -> None:
    from chat import daphne_server

    daphne_server._ORIGINS.clear()
    for n in range(daphne_server._MAX_ORIGINS + 44):
        origin = f"http://site{n}.example:8{n % 10}"
        handshake = daphne_server.ordinary_handshake(
            _upgrade(b"X-N: 1").replace(
                b"Origin: http://127.0.0.1:8000", b"Origin: " + origin.encode()
            )
        )
        assert handshake is not None
        assert handshake.origin_tuple == ("http", f"site{n}.example", 8 * 10 + n % 10)
        assert len(daphne_server._ORIGINS) <= daphne_server._MAX_ORIGINS
    assert daphne_server.ordinary_handshake(_upgrade()).origin_tuple == ("http", "127.0.0.1", 8000)


def test_the_fast_handshake_is_daphnes_factory_when_switched_off() -> None:
    out = _in_a_fresh_process(
        "from daphne.http_protocol import HTTPFactory\n"
        "from chat.daphne_server import build_server_class\n"
        "for on in (True, False):\n"
        "    cls = build_server_class(max_backlog=1, grace=1, fast_write=True,"
        " fast_handshake=on)\n"
        "    server = cls.__new__(cls)\n"
        "    server.http_factory = HTTPFactory(server)  # what daphne's Server.run does\n"
        "    print(type(server.http_factory).__name__, server.http_factory.server is server)"
    )
    assert out.splitlines() == ["ChatHTTPFactory True", "HTTPFactory True"]


def test_the_ordinary_handshake_is_autobahns_when_switched_off() -> None:
    out = _in_a_fresh_process(
        "from daphne.ws_protocol import WebSocketFactory\n"
        "from twisted.internet.testing import StringTransport\n"
        "from chat import daphne_server\n"
        "calls = []\n"
        "daphne_server.process_ordinary_handshake = lambda protocol: calls.append(1)\n"
        "for on in (True, False):\n"
        "    cls = daphne_server.build_server_class(max_backlog=1, grace=1, fast_write=True,"
        " fast_handshake=on)\n"
        "    server = cls.__new__(cls)\n"
        "    server.ws_factory = WebSocketFactory(server, server='Daphne')\n"
        "    protocol = server.ws_factory.buildProtocol(None)\n"
        "    protocol.makeConnection(StringTransport())\n"
        "    protocol.data = b'GET / HTTP/1.1'  # not whole: autobahn's waits for more\n"
        "    protocol.processHandshake()\n"
        "    print(len(calls))"
    )
    assert out.splitlines() == ["1", "1"]


def test_a_connection_that_sends_nothing_is_closed_after_the_http_timeout() -> None:
    out = _in_a_fresh_process(
        _SNIFFER + "t = connect()\n"
        "factory.reactor.advance(factory.timeOut - 1)\n"
        "print(t.disconnecting, end=' ')\n"
        "factory.reactor.advance(2)\n"
        "print(t.disconnecting, factory.reactor.getDelayedCalls())\n"
        "quiet = connect()\n"
        "quiet.protocol.connectionLost(None)\n"
        "print(factory.reactor.getDelayedCalls())"
    )
    assert out.splitlines() == ["False True []", "[]"]


def test_an_ordinary_handshake_leaves_the_protocol_as_autobahns_processhandshake_does() -> None:
    from tests.support.handshakes import CASES

    out = _in_a_fresh_process("from tests.support.handshakes import report\nreport()")
    results = [json.loads(line) for line in out.splitlines()]
    # Every request, taken or not, ends in the same state, request and answer as autobahn's.
    assert [(r["name"], r["differ"]) for r in results] == [(r["name"], []) for r in results]
    taken = {r["name"]: r["taken"] for r in results}
    assert taken == {
        **{name: expected for name, _, expected in CASES},
        "policy, http://chat.example": True,
        "policy, http://evil.example": False,
    }


def test_the_access_log_leaves_out_the_socket_events_the_consumer_logs() -> None:
    out = _in_a_fresh_process(
        "from chat.daphne_server import build_server_class\n"
        "server_class = build_server_class(max_backlog=0, grace=0, fast_write=True)\n"
        "logged = []\n"
        "server = server_class(application=None, endpoints=['tcp:0'],\n"
        "    action_logger=lambda protocol, action, details: logged.append(action))\n"
        "for protocol, action in [('websocket', 'connecting'), ('websocket', 'connected'),\n"
        "        ('websocket', 'rejected'), ('websocket', 'disconnected'), ('http', 'complete')]:\n"
        "    server.log_action(protocol, action, {})\n"
        "print(logged)"
    )
    assert out == "['rejected', 'complete']"


@pytest.mark.live
@pytest.mark.redis
class TestUnderDaphne:
    @pytest.fixture
    def worker(self, daphne_factory, redis_url):
        return daphne_factory(redis_url=redis_url, name="seam", CHAT_RATE="0")

    def test_daphne_runs_the_chat_server(self, worker) -> None:
        assert "daphne integration installed" in worker.log()

    def test_the_worker_warms_up_before_its_first_socket(self, worker) -> None:
        # Whether the loads finished within the warm-up's wait depends on the machine's
        # load; that it ran before any socket does not.
        wait_for(lambda: "worker warmed up" in worker.log())
        assert "connect session=" not in worker.log()

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

    def test_the_listen_queue_has_the_configured_backlog(self, worker) -> None:
        assert _listen_queue(worker.port) == _expected_listen_queue()

    @pytest.mark.parametrize("pieces", [1, 3], ids=["one read", "three reads"])
    async def test_an_upgrade_is_served_whole_or_in_pieces(self, worker, pieces: int) -> None:
        """One read takes the fast path to autobahn; a request in pieces goes through
        daphne's HTTP request; both open the same chat socket, with the query's nick."""
        host = f"127.0.0.1:{worker.port}".encode()
        request = _upgrade(target=b"/ws/chat/?nick=Piecewise", host=host)
        reader, writer = await asyncio.open_connection("127.0.0.1", worker.port)
        try:
            step = len(request) // pieces + 1
            for start in range(0, len(request), step):
                writer.write(request[start : start + step])
                await writer.drain()
                await asyncio.sleep(0.05)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            assert head.startswith(b"HTTP/1.1 101 "), head
            first = await asyncio.wait_for(reader.read(2), 10)
            length = first[1] & 0x7F
            if length == 126:
                length = int.from_bytes(await reader.readexactly(2), "big")
            elif length == 127:
                length = int.from_bytes(await reader.readexactly(8), "big")
            hello = json.loads(await asyncio.wait_for(reader.readexactly(length), 10))
            assert hello["type"] == "hello"
            assert hello["nick"] == "Piecewise"
        finally:
            writer.close()

    async def test_a_malformed_upgrade_is_refused_by_daphne(self, worker) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", worker.port)
        try:
            writer.write(_upgrade(b"X-Note: a\x0bb", host=f"127.0.0.1:{worker.port}".encode()))
            status = await asyncio.wait_for(reader.readline(), 10)
            assert status.startswith(b"HTTP/1.1 400 "), status
        finally:
            writer.close()


def _listen_queue(port: int) -> int:
    """The backlog of the socket listening on `port`, as the kernel reports it."""
    out = subprocess.run(
        ["ss", "-ltnH", f"sport = :{port}"],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    ).stdout.split()
    # State, Recv-Q, Send-Q (a listening socket's backlog), local address, peer.
    assert out[0] == "LISTEN"
    return int(out[2])


def _expected_listen_queue() -> int:
    """CHAT_LISTEN_BACKLOG's default, as far as the kernel's somaxconn allows."""
    return min(2048, int(Path("/proc/sys/net/core/somaxconn").read_text()))


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A throwaway key and certificate for 127.0.0.1 (PEM files in `folder`)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    key_path, cert_path = folder / "key.pem", folder / "cert.pem"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


@pytest.mark.live
@pytest.mark.redis
async def test_daphne_terminating_tls_serves_sockets_and_pages(
    daphne_factory, redis_url, tmp_path
) -> None:
    """`daphne -e ssl:...` (TLS at daphne rather than at a proxy): the handshake sniffer sits
    inside Twisted's TLS wrapper and hands the connection on through it, so sockets are
    greeted and get broadcasts (written through the wrapper, not straight to the kernel) and
    a page request reaches daphne's HTTP channel, as over plain TCP."""
    import ssl

    import websockets

    key, cert = _self_signed(tmp_path)
    port = free_port()
    worker = daphne_factory(
        redis_url=redis_url,
        name="tls",
        CHAT_RATE="0",
        extra_args=["-e", f"ssl:{port}:interface=127.0.0.1:privateKey={key}:certKey={cert}"],
    )
    context = ssl.create_default_context(cafile=str(cert))
    url = f"wss://127.0.0.1:{port}/ws/chat/"
    origin = f"https://127.0.0.1:{port}"
    ana = await websockets.connect(url + "?nick=Ana", ssl=context, origin=origin)
    bia = await websockets.connect(url + "?nick=Bia", ssl=context, origin=origin)
    try:
        assert json.loads(await ana.recv())["type"] == "hello"
        assert json.loads(await bia.recv())["type"] == "hello"
        for i in range(3):
            await ana.send(json.dumps({"type": "message", "body": f"t{i}", "client_id": f"t{i}"}))
        bodies = []
        while len(bodies) < 3:
            frame = json.loads(await asyncio.wait_for(bia.recv(), 10))
            if frame["type"] == "message":
                bodies.append(frame["body"])
        assert bodies == ["t0", "t1", "t2"]
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        status = await asyncio.wait_for(reader.readline(), 10)
        writer.close()
        assert status.startswith(b"HTTP/1.1 200 "), status
    finally:
        await ana.close()
        await bia.close()
    assert "daphne integration installed" in worker.log()
    # The TLS endpoint gets the listen backlog too.
    assert _listen_queue(port) == _expected_listen_queue()
