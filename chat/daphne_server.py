"""Everything the chat does inside daphne, in one place: a server subclass and a protocol
subclass, chosen through daphne's own attributes.

`daphne chatproject.asgi:application` imports the application before it builds its server,
so `install()` (called from `chatproject/asgi.py`) sets `CommandLineInterface.server_class`
to `ChatServer`; the server then sets its WebSocket factory's `protocol` to
`ChatWebSocketProtocol`. Nothing is replaced process-wide, and under any other server
(uvicorn, runserver, the test communicator) nothing here runs: the consumer falls back to
plain ASGI sends.

What the subclasses add:

- **Frame once, write many.** A server-to-client text frame is the same bytes for every
  socket (servers do not mask; no compression here), so a broadcast builds it once per
  worker (`chat.broadcast.wire_frame`) and `write_frame` writes those bytes to each socket,
  as `websockets.broadcast()` does. The consumer finds `write_frame` in its scope under
  `scope["extensions"]["chat.frames"]`; its presence also says that sends never block.
- **Immediate writes.** Twisted buffers every write and sends it a loop turn later (two
  epoll changes and a callback per frame); when nothing is buffered, frames are written to
  the socket at once, and whatever the kernel does not take is buffered as before, so the
  order of bytes never changes.
- **A bound on slow readers.** ASGI has no backpressure: past CHAT_MAX_BACKLOG bytes
  unsent, the connection is aborted (the consumer gets `disconnect()`), so one client that
  never reads cannot grow the worker's memory.
- **An access log without repeats.** daphne's access log leaves out the WebSocket
  connect and disconnect entries, which the consumer's own lines give with the session
  (`QUIET_SOCKET_ACTIONS`).
- **Access log through logging (optional).** daphne writes its access log as NCSA text
  lines to stdout; with `access_via_logging` (DJANGO_LOG_FORMAT=json) each entry goes to
  the `daphne.access` logger instead, with its fields as `extra`, so that every line of
  the worker's output is one JSON object.
- **Refusals that say why.** daphne answers a handshake the application closes before
  accepting with a bare 403. The server offers ASGI's `websocket.http.response` extension
  instead (a "denial response": `websocket.http.response.start`, then `.body`), and the
  protocol writes that response, status, headers and body, in place of autobahn's bare one;
  chat.middleware uses it to tell a client why it was refused.
- **Lighter idle sockets.** What a connection keeps while it is idle is cut where daphne,
  autobahn and Twisted allocate more than they use: a slotted input queue (`chat.queues`)
  instead of an `asyncio.Queue` (four deques and an Event), autobahn's send queue made on
  first use, its ~40 protocol options set once on the factory's protocol class instead of
  copied onto every connection (and pformatted for a debug line each time), and the
  upgraded HTTP channel (with its request and headers) released once the WebSocket has the
  transport.
- **Handshakes without twisted.web.** daphne parses every request with twisted.web and
  then replays an upgrade's bytes to autobahn, which parses them again. `ChatHTTPFactory`
  starts each connection with a `HandshakeSniffer` instead: a whole WebSocket upgrade in the
  first read (`websocket_upgrade`: stricter checks than daphne's request makes) goes to the
  WebSocket protocol directly; anything else goes to daphne's HTTP channel as before
  (CHAT_FAST_HANDSHAKE).
- **A listen queue for a reconnect storm.** Twisted listens with a backlog of 50; a
  connection that finds the queue full loses its SYN and retries a second later.
  `ChatServer` adds CHAT_LISTEN_BACKLOG to daphne's TCP and Unix endpoint strings.
- **A warm worker.** The application's `warm_up` (chat.warmup) runs as the server starts,
  so that the first sockets of a restarted worker do not wait for what the first handshake
  would load (sanctions, the subscription and its window).
- **Graceful shutdown.** On SIGTERM daphne cancels applications and drops sockets without a
  close frame; `ChatServer` first closes each socket with 1012 (service restart) and waits
  up to CHAT_SHUTDOWN_GRACE seconds for the closing handshakes, so pages reconnect at once
  and consumers leave the online list; then it removes the worker's presence keys.

These rely on private attributes of daphne, autobahn and Twisted, pinned in
requirements.txt. `missing_internals()` lists the ones that moved; `install()` refuses to
install when any did (logging why), and tests/test_daphne_server.py fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hashlib
import http
import importlib
import inspect
import logging
import re
import sys
import time
import traceback
import types
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from importlib import metadata
from typing import Any
from urllib.parse import unquote

from chat import metrics
from chat.protocol import CLOSE_SERVICE_RESTART
from chat.queues import LightQueue

logger = logging.getLogger(__name__)

# The versions these subclasses were written and tested against (requirements.txt pins them).
TESTED_VERSIONS = {"daphne": "4.2.3", "twisted": "26.10.0", "autobahn": "26.10.2"}
# The scope extension that carries `write_frame` (ASGI: scope["extensions"]).
EXTENSION = "chat.frames"
# ASGI's extension for an HTTP response in place of the handshake (a denial response).
DENIAL_EXTENSION = "websocket.http.response"
# The worker's garbage collector thresholds (Python's default is 700, 10, 10). Each socket
# keeps ~150 objects the collector tracks, and with the default a connect storm runs a full
# collection every time the heap grows by a quarter: about a quarter of the CPU of 5,000
# handshakes, spent walking the sockets already connected. A young generation of 7,000
# allocations considers a full collection ten times less often; cyclic garbage of closed
# sockets waits longer for it (measured: no change in memory per idle socket).
GC_THRESHOLDS = (7000, 10, 10)


# WebSocket events daphne's access log leaves out: the consumer logs each accepted socket's
# connect and disconnect itself, with its session (and chat.middleware each refusal, with
# its reason), so daphne's lines for them (WSCONNECTING, WSCONNECT, WSDISCONNECT) said
# nothing new, three lines per socket. A refusal (WSREJECT) and HTTP requests stay.
QUIET_SOCKET_ACTIONS = frozenset({"connecting", "connected", "disconnected"})

# The SHA-256 of the source of autobahn's `WebSocketServerProtocol.processHandshake` (as
# pinned) whose checks `ordinary_handshake` and `process_ordinary_handshake` make: any change
# there may be a check the ordinary path lacks, so `missing_internals` reports it until the
# two are compared again (tests/support/handshakes.py) and this is updated.
PROCESS_HANDSHAKE_SHA256 = "0055f4d3499376738a0a710fc56b499befa39d90e2060ee1dabefda36bedb483"

# The SHA-256 of the source of daphne's `WebSocketProtocol.onConnect`,
# `applicationCreateWorked` and `onOpen` (as pinned), which the chat's protocol's `onConnect`
# and `onOpen` do with less work: any change there reports in `missing_internals` until the
# two are compared again (`test_the_chats_onconnect_starts_the_application_as_daphnes_does`).
DAPHNE_ON_CONNECT_SHA256 = "96aa13dc4403e9b4e9fa2baafe01c369621e275127f724371659219256c9b9f8"

# What autobahn's `WebSocketProtocol._connectionMade` sets on every server connection: these
# to the same value each time (the chat's protocol holds them as class attributes), and
# `PER_CONNECTION_STATE` to new objects (set by the chat's `_connectionMade`).
# `missing_internals` checks that autobahn sets exactly these.
CONSTANT_CONNECTION_STATE: dict[str, Any] = {
    "_perMessageCompress": None,
    "trackedTimings": None,
    "send_state": 0,  # WebSocketProtocol.SEND_STATE_GROUND
    "triggered": False,
    "wasMaxFramePayloadSizeExceeded": False,
    "wasMaxMessagePayloadSizeExceeded": False,
    "closedByMe": False,
    "failedByMe": False,
    "droppedByMe": False,
    "wasClean": False,
    "wasNotCleanReason": None,
    "wasServerConnectionDropTimeout": False,
    "wasOpenHandshakeTimeout": False,
    "wasCloseHandshakeTimeout": False,
    "wasServingFlashSocketPolicyFile": False,
    "localCloseCode": None,
    "localCloseReason": None,
    "remoteCloseCode": None,
    "remoteCloseReason": None,
    "openHandshakeTimeoutCall": None,
    "closeHandshakeTimeoutCall": None,
    "autoPingTimeoutCall": None,
    "autoPingPending": None,
    "autoPingPendingCall": None,
    "autoPingPendingSeq": 0,
    "autoPingPendingSent": None,
}
PER_CONNECTION_STATE = (
    "trafficStats",
    "state",
    "data",
    "send_queue",
    "utf8validator",
    "openHandshakeTimeoutCall",
    "serverConnectionDropTimeoutCall",  # a client's only
)


def connection_made_assignments() -> dict[str, Any]:
    """What autobahn's `WebSocketProtocol._connectionMade` assigns to `self.<name>`: the
    value of a constant (None, a bool, a number, `WebSocketProtocol.SEND_STATE_GROUND`),
    else the name of the expression's type (`Call`, ...)."""
    import ast
    import textwrap

    from autobahn.websocket.protocol import WebSocketProtocol as AutobahnProtocol

    tree = ast.parse(textwrap.dedent(inspect.getsource(AutobahnProtocol._connectionMade)))
    assigned: dict[str, Any] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Assign):
            continue
        for target in node.targets:
            if (
                isinstance(target, ast.Attribute)
                and isinstance(target.value, ast.Name)
                and target.value.id == "self"
            ):
                value = node.value
                if isinstance(value, ast.Constant):
                    found: Any = value.value
                elif isinstance(value, ast.Attribute) and value.attr.isupper():
                    found = getattr(AutobahnProtocol, value.attr)
                else:
                    found = type(value).__name__
                # A name set twice (state: one value or another) keeps its first value.
                assigned.setdefault(target.attr, found)
    return assigned


# One `asgi` entry shared by every scope (daphne builds a dict per connection; nothing
# writes to it).
ASGI_VERSION = {"version": "3.0"}


class SendQueue:
    """autobahn's per-connection send queue (used only for chopped or synchronous sends),
    with its deque made on first use: an empty deque costs 760 bytes per socket."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: deque[Any] | None = None

    def __len__(self) -> int:
        return len(self.items) if self.items is not None else 0

    def append(self, item: Any) -> None:
        """Queue an item."""
        if self.items is None:
            self.items = deque()
        self.items.append(item)

    def popleft(self) -> Any:
        """The oldest item (IndexError when empty, as a deque)."""
        if self.items is None:
            raise IndexError("pop from an empty queue")
        item = self.items.popleft()
        if not self.items:
            self.items = None
        return item


def buffered_bytes(transport: Any) -> int:
    """Bytes waiting in a Twisted transport's user-space write buffer."""
    buffered: int = len(transport.dataBuffer) - transport.offset + transport._tempDataLen
    return buffered


def _send_now(transport: Any, data: bytes) -> int:
    """What Twisted's `tcp.Connection.writeSomeData` does, in one call: the bytes the kernel
    takes at once (Python retries EINTR), 0 when it takes none. A failed connection also
    gives 0: the caller buffers the data, and Twisted's own write path finds the error and
    closes the connection, as it would have. (writeSomeData adds a memoryview, a slice and
    two calls per write: a tenth of a delivery's CPU.)"""
    if len(data) > transport.SEND_LIMIT:
        partial: Any = transport.writeSomeData(data)
        return partial if isinstance(partial, int) else 0
    try:
        sent: int = transport.socket.send(data)
    except OSError:
        return 0
    return sent


def version_mismatches() -> dict[str, tuple[str, str]]:
    """Packages whose installed version differs from the tested one: name -> (tested, found)."""
    found = {}
    for name, tested in TESTED_VERSIONS.items():
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            version = "missing"
        if version != tested:
            found[name] = (tested, version)
    return found


def _source_has(code: Any, *parts: str) -> bool:
    """Whether the source of a function or class holds every one of `parts`."""
    source = inspect.getsource(code)
    return all(part in source for part in parts)


def daphne_on_connect_sha256() -> str:
    """The SHA-256 of daphne's `onConnect`, `applicationCreateWorked` and `onOpen`."""
    from daphne.ws_protocol import WebSocketProtocol

    source = "".join(
        inspect.getsource(method)
        for method in (
            WebSocketProtocol.onConnect,
            WebSocketProtocol.applicationCreateWorked,
            WebSocketProtocol.onOpen,
        )
    )
    return hashlib.sha256(source.encode()).hexdigest()


def missing_internals() -> list[str]:
    """The private attributes these subclasses use that the installed packages lack."""
    from autobahn.twisted.websocket import WebSocketAdapterProtocol as AdapterProtocol
    from autobahn.twisted.websocket import WebSocketServerProtocol as TwistedServerProtocol
    from autobahn.websocket.protocol import WebSocketProtocol as AutobahnProtocol
    from autobahn.websocket.protocol import WebSocketServerProtocol as AutobahnServerProtocol
    from daphne import utils
    from daphne.cli import CommandLineInterface
    from daphne.http_protocol import HTTPFactory, WebRequest
    from daphne.server import Server
    from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol
    from twisted.internet import abstract, tcp

    checks = {
        "daphne.cli.CommandLineInterface.server_class": hasattr(
            CommandLineInterface, "server_class"
        ),
        "daphne.server.Server.run assigns self.ws_factory": "self.ws_factory = WebSocketFactory("
        in inspect.getsource(Server.run),
        "daphne.server.Server.create_application builds an asyncio.Queue": _source_has(
            Server.create_application,
            "input_queue = asyncio.Queue()",
            "receive=input_queue.get",
            'self.connections[protocol]["application_instance"]',
        ),
        "daphne.server.Server.kill_all_applications": hasattr(Server, "kill_all_applications"),
        "daphne.ws_protocol.WebSocketFactory.protocol": getattr(WebSocketFactory, "protocol", None)
        is WebSocketProtocol,
        "daphne.ws_protocol.WebSocketProtocol.serverSend": hasattr(WebSocketProtocol, "serverSend"),
        "daphne.ws_protocol.WebSocketProtocol.handle_reply": hasattr(
            WebSocketProtocol, "handle_reply"
        ),
        "daphne.ws_protocol.WebSocketProtocol.serverReject fails the handshake": (
            "self.handshake_deferred.errback(" in inspect.getsource(WebSocketProtocol.serverReject)
        ),
        "autobahn failHandshake writes through sendHttpErrorResponse": (
            "self.sendHttpErrorResponse(" in inspect.getsource(AutobahnServerProtocol.failHandshake)
        ),
        "autobahn _connectionMade copies the CONFIG_ATTRS options a protocol lacks": (
            "for configAttr in self.CONFIG_ATTRS:\n            if not hasattr(self, configAttr):"
            in inspect.getsource(AutobahnProtocol._connectionMade)
        ),
        "autobahn's _connectionMade sets the state the chat's protocol sets or holds": (
            {
                name: value
                for name, value in connection_made_assignments().items()
                if name in CONSTANT_CONNECTION_STATE
            }
            == CONSTANT_CONNECTION_STATE
            and set(connection_made_assignments())
            == set(CONSTANT_CONNECTION_STATE) | set(PER_CONNECTION_STATE)
            and _source_has(
                AutobahnProtocol._connectionMade,
                "self.setTrackTimings(self.trackTimings)",
                "self.trafficStats = TrafficStats()",
                "self.state = WebSocketProtocol.STATE_CONNECTING",
                'self.data = b""',
                "self.send_queue = deque()",
                "self.utf8validator = Utf8Validator()",
                "if self.openHandshakeTimeout > 0:",
                "self.factory._batched_timer.call_later(",
                "self.onOpenHandshakeTimeout,",
            )
        ),
        "autobahn WebSocketServerProtocol.CONFIG_ATTRS": isinstance(
            getattr(AutobahnServerProtocol, "CONFIG_ATTRS", None), list
        ),
        "autobahn WebSocketProtocol.sendData": hasattr(AutobahnProtocol, "sendData"),
        "autobahn WebSocketProtocol.send_queue": "self.send_queue = deque()"
        in inspect.getsource(AutobahnProtocol),
        "autobahn WebSocketProtocol.sendCloseFrame": hasattr(AutobahnProtocol, "sendCloseFrame"),
        "autobahn copies CONFIG_ATTRS unless the protocol has them": "if not hasattr(self, "
        "configAttr)" in inspect.getsource(AutobahnProtocol._connectionMade),
        "daphne's HTTP channel stays the transport's producer after the upgrade": (
            "transport.protocol = protocol" in inspect.getsource(WebRequest.process)
        ),
        "autobahn WebSocketProtocol.STATE_OPEN/STATE_CONNECTING": hasattr(
            AutobahnProtocol, "STATE_OPEN"
        )
        and hasattr(AutobahnProtocol, "STATE_CONNECTING"),
        "autobahn WebSocketProtocol.dropConnection": hasattr(AutobahnProtocol, "dropConnection"),
        "daphne.ws_protocol.WebSocketProtocol.onConnect sets client_addr": (
            "self.client_addr = " in inspect.getsource(WebSocketProtocol.onConnect)
        ),
        "daphne's WebSocket protocol logs its events through Server.log_action": all(
            f'"websocket",\n            "{action}"' in inspect.getsource(WebSocketProtocol)
            for action in QUIET_SOCKET_ACTIONS
        )
        and "self.action_logger(protocol, action, details)" in inspect.getsource(Server.log_action),
        "daphne's onConnect is the one the chat's protocol was compared with": (
            daphne_on_connect_sha256() == DAPHNE_ON_CONNECT_SHA256
        ),
        "autobahn's processHandshake is the one the ordinary path was compared with": (
            hashlib.sha256(
                inspect.getsource(AutobahnServerProtocol.processHandshake).encode()
            ).hexdigest()
            == PROCESS_HANDSHAKE_SHA256
        ),
        "autobahn's processHandshake makes the checks and calls the ordinary path mirrors": (
            _source_has(
                AutobahnServerProtocol.processHandshake,
                "parseHttpHeader(self.http_request_data)",
                'http_headers_cnt["host"] > 1',
                "if self.factory.externalPort:",
                'if "upgrade" not in self.http_headers:',
                'if "connection" not in self.http_headers:',
                "if version not in self.versions:",
                'if origin_tuple == "null" and self.factory.allowNullOrigin:',
                "_is_same_origin(",
                "if len(key) != 24:",
                "self._parseExtensionsHeader(",
                "self.data = self.data[end_of_header + 4 :]",
                "self._wskey = key",
                "self.maxConnections > 0",
                "ConnectionRequest(",
                "txaio.add_callbacks(f, self.succeedHandshake, forward_error)",
            )
            and not any(
                "processHandshake" in vars(cls)
                for cls in (WebSocketProtocol, TwistedServerProtocol)
            )
        ),
        "daphne's onConnect does not read the parsed query string": not any(
            part in inspect.getsource(WebSocketProtocol.onConnect)
            for part in ("request.params", "http_request_params")
        ),
        "daphne.server.Server.__init__ sets action_logger": (
            "self.action_logger = action_logger" in inspect.getsource(Server.__init__)
        ),
        "twisted FileDescriptor.dataBuffer/offset": hasattr(abstract.FileDescriptor, "dataBuffer")
        and hasattr(abstract.FileDescriptor, "offset"),
        "twisted FileDescriptor._tempDataBuffer/_tempDataLen": _source_has(
            abstract.FileDescriptor.__init__, "self._tempDataBuffer", "self._tempDataLen"
        ),
        "twisted FileDescriptor._writeDisconnected": hasattr(
            abstract.FileDescriptor, "_writeDisconnected"
        ),
        "twisted tcp.Connection.writeSomeData sends on .socket up to SEND_LIMIT": _source_has(
            tcp.Connection.writeSomeData,
            "self.socket.send",
            "self.SEND_LIMIT",
            "EWOULDBLOCK, ENOBUFS",
        ),
        "daphne.server.Server.run assigns self.http_factory": (
            "self.http_factory = HTTPFactory(self)" in inspect.getsource(Server.run)
        ),
        "daphne's WebRequest.process checks headers and hands over _raw_query_string": (
            _source_has(
                WebRequest.process,
                "HEADER_NAME_RE.fullmatch(name)",
                "INVALID_HEADER_VALUE_BYTES.intersection(value)",
                "protocol._raw_query_string = self.query_string",
                'upgrade_header.lower() == b"websocket"',
            )
        ),
        "daphne.utils header rules are no wider than the fast handshake's": (
            utils.HEADER_NAME_RE.pattern.decode() in _HEADER_BLOCK.pattern.decode()
            and all(byte < 0x20 or byte > 0x7E for byte in utils.INVALID_HEADER_VALUE_BYTES)
        ),
        "daphne.ws_protocol.WebSocketProtocol.onConnect reads _raw_query_string": (
            "self._raw_query_string" in inspect.getsource(WebSocketProtocol.onConnect)
        ),
        "twisted HTTPFactory.timeOut": hasattr(HTTPFactory, "timeOut"),
        "autobahn's Twisted adapter: connectionMade, dataReceived, connectionLost": (
            _source_has(
                AdapterProtocol.connectionMade,
                "create_transport_details(",
                "TransportDetails.CHANNEL_FRAMING_WEBSOCKET",
                "self.peer = self._transport_details.peer",
                "self.transport.setTcpNoDelay(self.tcpNoDelay)",
                "self._connectionMade()",
            )
            and _source_has(AdapterProtocol.dataReceived, "self._dataReceived(data)")
            and _source_has(
                AdapterProtocol.connectionLost,
                "_is_tls_error(reason.value)",
                "self._connectionLost(reason)",
            )
        ),
        "between daphne's protocol and autobahn's adapter, nothing else overrides them": not any(
            name in vars(cls)
            for cls in (WebSocketProtocol, TwistedServerProtocol)
            for name in (
                "connectionMade",
                "dataReceived",
                "connectionLost",
                "_connectionMade",
                "_connectionLost",
            )
        ),
        "autobahn's server _connectionMade/_connectionLost count connections": (
            _source_has(
                AutobahnServerProtocol._connectionMade,
                "WebSocketProtocol._connectionMade(self)",
                "self.factory.countConnections += 1",
            )
            and _source_has(
                AutobahnServerProtocol._connectionLost,
                "WebSocketProtocol._connectionLost(self, reason)",
                "self.factory.countConnections -= 1",
            )
        ),
    }
    return [name for name, present in checks.items() if not present]


def install(
    *,
    max_backlog: int,
    grace: float,
    fast_write: bool,
    access_via_logging: bool = False,
    listen_backlog: int = 0,
    fast_handshake: bool = False,
    warm_up: Callable[[], Awaitable[None]] | None = None,
) -> bool:
    """Make daphne's command line build a `ChatServer`; True when installed.

    Only when daphne's command line is what is starting (`daphne ...`): it imports the
    application first and reads `server_class` afterwards.
    """
    if "daphne.cli" not in sys.modules:
        return False
    for name, (tested, found) in version_mismatches().items():
        logger.warning(
            "daphne integration: written for %s %s, found %s; run tests/test_daphne_server.py",
            name,
            tested,
            found,
        )
    missing = missing_internals()
    if missing:
        logger.error(
            "daphne integration NOT installed: internals moved (%s); falling back to plain "
            "ASGI sends, no slow-reader bound, no 1012 on shutdown",
            ", ".join(missing),
        )
        return False
    from daphne.cli import CommandLineInterface

    server_class = build_server_class(
        max_backlog=max_backlog,
        grace=grace,
        fast_write=fast_write,
        access_via_logging=access_via_logging,
        listen_backlog=listen_backlog,
        fast_handshake=fast_handshake,
        warm_up=warm_up,
    )
    CommandLineInterface.server_class = server_class
    logger.info("daphne integration installed: frames written once, backlog bound, 1012")
    return True


# Twisted endpoint kinds whose string takes a `backlog` (an adopted descriptor, `fd:`, is
# already listening).
BACKLOG_ENDPOINTS = ("tcp:", "tcp6:", "unix:", "ssl:")


def with_listen_backlog(endpoints: list[str], backlog: int) -> list[str]:
    """daphne's endpoint strings with `backlog=` added where the kind takes one and none is
    given (`daphne -b/-p/-u` build them without one, so Twisted listens with 50)."""
    if backlog <= 0:
        return list(endpoints)
    return [
        f"{endpoint}:backlog={backlog}"
        if endpoint.startswith(BACKLOG_ENDPOINTS) and ":backlog=" not in endpoint
        else endpoint
        for endpoint in endpoints
    ]


# The largest first read the handshake fast path takes (Twisted's HTTP channel allows 16 KiB
# of headers); anything bigger goes through daphne's HTTP request.
MAX_HANDSHAKE = 16384
# Headers as whole lines up to the blank one, stricter than daphne's HTTP request: h11's
# header names (daphne.utils), and values of printable ASCII and tabs only. autobahn reads
# the request with `str.splitlines()`, which also ends a line at \x0b, \x0c, \x1c-\x1e, \x85
# and (in UTF-8) U+2028/U+2029: any of them in a value would start a header no check saw.
# Anything else (non-ASCII values included) goes through daphne's path, as before.
_HEADER_BLOCK = re.compile(rb"(?:[-!#$%&'*+.^_`|~0-9a-zA-Z]+:[\t\x20-\x7e]*\r\n)*\r\n")
# A request target of printable ASCII without spaces (Twisted refuses bytes up to 0x20).
_TARGET = re.compile(rb"/[\x21-\x7e]*")
_UPGRADE = re.compile(rb"^upgrade:[ \t]*([^\r\n]*?)[ \t]*\r\n", re.IGNORECASE | re.MULTILINE)
# A request body, which an upgrade does not have.
_BODY = re.compile(rb"^(?:content-length|transfer-encoding):", re.IGNORECASE | re.MULTILINE)


def websocket_upgrade(data: bytes) -> bytes | None:
    """The raw query string when `data` is one whole WebSocket upgrade request that daphne
    would hand to autobahn unchanged, else None (the request then goes through daphne's HTTP
    path, which also answers the malformed ones).

    daphne's path parses the request with twisted.web, checks the header names and values,
    the path and the query string, and replays the request to autobahn. This takes only
    requests that pass stricter checks: `GET <printable ASCII target> HTTP/1.1`, headers as
    `_HEADER_BLOCK` allows, no body, a first `Upgrade` header of `websocket`, nothing after
    the blank line. autobahn then reads the request's own lines rather than daphne's
    replay, which joined repeated headers into one line: a repeated `Host` is refused
    (400) here, and the values of a repeated header reach the application joined by ", ".
    """
    if len(data) > MAX_HANDSHAKE or not data.startswith(b"GET /"):
        return None
    request_line, _, _ = data.partition(b"\r\n")
    parts = request_line.split(b" ")
    if len(parts) != 3 or parts[2] != b"HTTP/1.1" or not _TARGET.fullmatch(parts[1]):
        return None
    if not _HEADER_BLOCK.fullmatch(data, len(request_line) + 2) or _BODY.search(data):
        return None
    upgrade = _UPGRADE.search(data)
    if upgrade is None or upgrade[1].lower() != b"websocket":
        return None
    return parts[1].partition(b"?")[2]


# What a Sec-WebSocket-Key may hold before its "==" (autobahn's check: 16 bytes in base64).
_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/")
# Headers autobahn reads once each in an opening handshake; any of them repeated (joined by
# parseHttpHeader) sends the request through autobahn's own checks.
_ONCE = ("host", "upgrade", "connection", "sec-websocket-version", "sec-websocket-key")
_ONCE_EACH = (1,) * len(_ONCE)
# autobahn's reading of the Origin values seen (`_url_to_origin`: a scheme, host and port, or
# "null"), a page's handful; bounded against a flood of made-up ones.
_ORIGINS: dict[str, Any] = {}
_MAX_ORIGINS = 256


@dataclass(frozen=True, slots=True)
class OrdinaryHandshake:
    """What autobahn's `processHandshake` reads from an ordinary opening handshake."""

    end: int  # the index just past the blank line
    status_line: str
    headers: dict[str, str]  # autobahn's: names lower-cased, repeated values joined
    uri: str
    path: str
    host: str  # without its port, as autobahn keeps it
    origin: str  # "" when there is none
    origin_tuple: Any  # autobahn's (scheme, host, port) or "null"; None without an Origin
    key: str
    extensions: str | None  # the Sec-WebSocket-Extensions header, if any


def ordinary_handshake(data: bytes) -> OrdinaryHandshake | None:
    """The parts of an opening handshake that autobahn would accept, read as autobahn reads
    them, when it is an ordinary one; None for anything else, which autobahn's own
    `processHandshake` then takes (and answers with its errors).

    Ordinary: a whole request (up to its blank line) of `GET <path>[?query] HTTP/1.1`, with
    Host, Upgrade (with `websocket`), Connection (with `upgrade`), Sec-WebSocket-Version 13
    and a well-formed Sec-WebSocket-Key, each once; at most one Origin (one autobahn can
    read) and one Sec-WebSocket-Extensions; no Sec-WebSocket-Protocol. The headers are
    parsed by autobahn's own `parseHttpHeader`, so the application sees the same values.
    Every check is autobahn's or stricter: this never accepts a request autobahn refuses.
    The choices that depend on the factory's options (ports, origins, limits) are made by
    `process_ordinary_handshake`.
    """
    from autobahn.websocket.protocol import _url_to_origin, parseHttpHeader

    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    end += 4
    try:
        status_line, headers, counts = parseHttpHeader(data[:end])
    except Exception:
        return None  # autobahn fails the handshake with its reason
    parts = status_line.split(" ")
    if len(parts) != 3 or parts[0] != "GET" or parts[2] != "HTTP/1.1":
        return None
    uri = parts[1]
    # urlparse would find a netloc (`//`), path parameters (`;`) or a fragment (`#`).
    if not uri.startswith("/") or uri.startswith("//") or ";" in uri or "#" in uri:
        return None
    if tuple(map(counts.get, _ONCE)) != _ONCE_EACH or "sec-websocket-protocol" in headers:
        return None
    host = headers["host"].strip()
    if ":" in host and not host.endswith("]"):
        host, port = host.rsplit(":", 1)
        if not port.strip().isdigit() or not port.isascii():
            return None
    # A browser's values first (one token each), then autobahn's reading of a list.
    upgrade = headers["upgrade"]
    if upgrade.lower() != "websocket" and "websocket" not in (
        u.strip().lower() for u in upgrade.split(",")
    ):
        return None
    connection = headers["connection"]
    if connection.lower() != "upgrade" and "upgrade" not in (
        c.strip().lower() for c in connection.split(",")
    ):
        return None
    if headers["sec-websocket-version"].strip() != "13":
        return None
    key = headers["sec-websocket-key"].strip()
    if len(key) != 24 or key[-2:] != "==" or not _KEY_CHARS.issuperset(key[:-2]):
        return None
    origin, origin_tuple = "", None
    if "origin" in headers:
        if counts["origin"] != 1:
            return None
        origin = headers["origin"].strip()
        origin_tuple = _ORIGINS.get(origin)
        if origin_tuple is None:
            try:
                origin_tuple = _url_to_origin(origin)  # type: ignore[no-untyped-call]
            except Exception:
                return None
            if len(_ORIGINS) >= _MAX_ORIGINS:
                _ORIGINS.clear()
            _ORIGINS[origin] = origin_tuple
    extensions = headers.get("sec-websocket-extensions")
    if extensions is not None and counts["sec-websocket-extensions"] != 1:
        return None
    return OrdinaryHandshake(
        end=end,
        status_line=status_line,
        headers=headers,
        uri=uri,
        path=uri.partition("?")[0],
        host=host,
        origin=origin,
        origin_tuple=origin_tuple,
        key=key,
        extensions=extensions,
    )


def process_ordinary_handshake(protocol: Any) -> bool:
    """autobahn's `processHandshake` for an ordinary handshake (`ordinary_handshake`),
    without the debug lines it formats even with debug logging off (click-coloured names)
    and without parsing the query string into `params`, which daphne never reads (it hands
    the application the raw query string). Leaves the protocol as autobahn's would, then
    calls `onConnect` as autobahn does. False, having done nothing, for anything that is not
    ordinary or that depends on an option daphne does not set: the caller runs autobahn's.
    """
    # txaio's functions are those of the framework chosen at run time (Twisted's here).
    txaio: Any = importlib.import_module("txaio")
    from autobahn.websocket.protocol import _is_same_origin
    from autobahn.websocket.types import ConnectionDeny, ConnectionRequest

    factory = protocol.factory
    if protocol.maxConnections > 0 or factory.externalPort:
        return False
    handshake = ordinary_handshake(protocol.data)
    if handshake is None:
        return False
    if protocol.trustXForwardedFor and "x-forwarded-for" in handshake.headers:
        return False
    origin_tuple = handshake.origin_tuple
    if origin_tuple is not None and not (
        (origin_tuple == "null" and factory.allowNullOrigin)
        or _is_same_origin(  # type: ignore[no-untyped-call]
            origin_tuple,
            "https" if factory.isSecure else "http",
            factory.port,
            protocol.allowedOriginsPatterns,
        )
    ):
        return False  # autobahn refuses it, with its reason
    extensions = (
        protocol._parseExtensionsHeader(handshake.extensions)
        if handshake.extensions is not None
        else []
    )
    protocol.http_request_data = protocol.data[: handshake.end]
    protocol.http_status_line = handshake.status_line
    protocol.http_headers = handshake.headers
    protocol.http_request_uri = handshake.uri
    protocol.http_request_path = handshake.path
    protocol.http_request_params = {}
    protocol.http_request_host = handshake.host
    protocol.websocket_version = 13
    protocol.websocket_protocols = []
    protocol.websocket_origin = handshake.origin
    protocol.websocket_extensions = extensions
    protocol.data = protocol.data[handshake.end :]
    protocol._wskey = handshake.key
    request = ConnectionRequest(  # type: ignore[no-untyped-call]
        protocol.peer,
        handshake.headers,
        handshake.host,
        handshake.path,
        {},
        13,
        handshake.origin,
        [],
        extensions,
    )

    def refused(failure: Any) -> Any:
        # autobahn's `forward_error`.
        if isinstance(failure.value, ConnectionDeny):
            return protocol.failHandshake(failure.value.reason, failure.value.code)
        protocol.log.warn("Unexpected exception in onConnect ['{err.value}']", err=failure)
        protocol.log.warn("{tb}", tb=txaio.failure_format_traceback(failure))
        return protocol.failHandshake(
            f"Internal server error: {failure.value}", ConnectionDeny.INTERNAL_SERVER_ERROR
        )

    txaio.add_callbacks(
        txaio.as_future(protocol.onConnect, request), protocol.succeedHandshake, refused
    )
    return True


access_logger = logging.getLogger("daphne.access")


def log_access(protocol: str, action: str, details: dict[str, Any]) -> None:
    """daphne's "action logger" interface, through logging: one INFO entry per completed
    HTTP request or WebSocket event, its fields as `extra` (a JSON log gets them as keys)."""
    if protocol == "http" and action != "complete":
        return
    fields = {
        "client": details.get("client"),
        "method": details.get("method", "WS" if protocol == "websocket" else "-"),
        "path": details.get("path"),
        "status": details.get("status"),
        "size": details.get("size"),
        "action": action,
    }
    request = (
        f"{fields['method']} {fields['path']}"
        if protocol == "http"
        else f"WS{action.upper()} {fields['path']}"
    )
    access_logger.info(
        "%s %s %s %s",
        fields["client"],
        request,
        fields["status"] or "-",
        fields["size"] or "-",
        extra=fields,
    )


def build_server_class(
    *,
    max_backlog: int,
    grace: float,
    fast_write: bool,
    access_via_logging: bool = False,
    listen_backlog: int = 0,
    fast_handshake: bool = False,
    warm_up: Callable[[], Awaitable[None]] | None = None,
) -> type:
    """The daphne Server subclass with the chat's protocol, limits and shutdown."""
    from autobahn.twisted.util import create_transport_details
    from autobahn.util import _is_tls_error, _maybe_tls_reason
    from autobahn.wamp.types import TransportDetails
    from autobahn.websocket.protocol import TrafficStats
    from autobahn.websocket.protocol import WebSocketProtocol as AutobahnProtocol
    from autobahn.websocket.utf8validator import Utf8Validator
    from daphne.http_protocol import HTTPFactory
    from daphne.server import Server
    from daphne.utils import parse_x_forwarded_for
    from daphne.ws_protocol import WebSocketProtocol
    from twisted.internet import defer, tcp
    from twisted.internet.interfaces import ITCPTransport
    from twisted.internet.protocol import Protocol, connectionDone
    from twisted.protocols.policies import ProtocolWrapper
    from twisted.web.http import HTTPChannel

    class ChatWebSocketProtocol(WebSocketProtocol):
        """daphne's protocol with bounded, immediate writes, `write_frame`, denial
        responses (ASGI `websocket.http.response`), and less memory per connection."""

        # autobahn's `_connectionMade` copies each of its ~40 options from the factory onto
        # every connection that lacks it (then pformats them all for a debug line, built even
        # with debug logging off): about a tenth of a handshake's CPU and 40 dictionary
        # entries per socket. The options are the factory's (daphne sets them once, in
        # `Server.run`, before it listens), so they become class attributes of the factory's
        # own subclass (`ChatServer.ws_factory`) at its first connection, and the list autobahn
        # walks is empty: nothing is copied or formatted per connection.
        CONFIG_ATTRS: list[str] = []  # autobahn's name and type; never changed
        # Set by `onConnect`, under daphne's names.
        clean_headers: list[tuple[bytes, bytes]]
        client_addr: list[Any] | None
        server_addr: list[Any] | None
        handshake_deferred: Any
        # The factory whose options the class holds.
        _options_of: Any = None

        def _connectionMade(self) -> None:
            """autobahn's connection setup, reading the options from the class."""
            cls = type(self)
            if cls._options_of is not self.factory:
                for name in WebSocketProtocol.CONFIG_ATTRS:
                    value = getattr(self.factory, name)
                    # A function option (perMessageCompressionAccept) must not become a
                    # method of the class.
                    if isinstance(value, types.FunctionType):
                        value = staticmethod(value)
                    setattr(cls, name, value)
                cls._options_of = self.factory
            # autobahn's `_connectionMade` (`CONSTANT_CONNECTION_STATE` is on the class),
            # without the debug line it pformats even with debug logging off; then its
            # server subclass's count.
            self.setTrackTimings(self.trackTimings)
            self.trafficStats = TrafficStats()  # type: ignore[no-untyped-call]
            self.state = self.STATE_CONNECTING
            self.data = b""
            self.send_queue = SendQueue()
            self.utf8validator = Utf8Validator()  # type: ignore[no-untyped-call]
            if self.openHandshakeTimeout > 0:
                self.openHandshakeTimeoutCall = self.factory._batched_timer.call_later(
                    self.openHandshakeTimeout, self.onOpenHandshakeTimeout
                )
            self.factory.countConnections += 1

        def onConnect(self, request: Any) -> Any:
            """daphne's `onConnect` and `applicationCreateWorked` (as pinned,
            `DAPHNE_ON_CONNECT_SHA256`) in one step: the same scope and state, the application
            started directly. daphne runs its own synchronous `create_application` through
            `maybeDeferred` with a callback and an errback (a Deferred kept for the socket's
            life), and builds an access-log entry for `connecting`, which this server leaves
            out (`QUIET_SOCKET_ACTIONS`). Should starting the application fail, the handshake
            fails (500) instead of waiting for the open-handshake timeout."""
            server = self.server = self.factory.server_class
            server.protocol_connected(self)
            self.request = request
            self.protocol_to_accept = None
            self.root_path = server.root_path
            self.socket_opened = self.last_ping = time.time()
            try:
                # Sanitize and decode headers, potentially extracting the root path.
                clean_headers: list[tuple[bytes, bytes]] = []
                self.clean_headers = clean_headers
                for name, value in request.headers.items():
                    name = name.encode("ascii")
                    if b"_" in name:  # CVE-2015-0219
                        continue
                    if name.lower() == b"daphne-root-path":
                        self.root_path = unquote(value)
                    else:
                        clean_headers.append((name.lower(), value.encode("latin1")))
                peer = self.transport.getPeer()
                host = self.transport.getHost()
                if hasattr(peer, "host") and hasattr(peer, "port"):
                    self.client_addr = [str(peer.host), peer.port]
                    self.server_addr = [str(host.host), host.port]
                else:
                    self.client_addr = None
                    self.server_addr = None
                if server.proxy_forwarded_address_header:
                    self.client_addr, self.client_scheme = parse_x_forwarded_for(
                        dict(clean_headers),
                        server.proxy_forwarded_address_header,
                        server.proxy_forwarded_port_header,
                        server.proxy_forwarded_proto_header,
                        self.client_addr,
                    )
                subprotocols = []
                for header, value in clean_headers:
                    if header == b"sec-websocket-protocol":
                        subprotocols = [
                            x.strip() for x in unquote(value.decode("ascii")).split(",")
                        ]
                self.path = request.path.encode("ascii")
                queue = server.create_application(
                    self,
                    {
                        "type": "websocket",
                        "path": unquote(self.path.decode("ascii")),
                        "raw_path": self.path,
                        "root_path": self.root_path,
                        "headers": clean_headers,
                        "query_string": self._raw_query_string,  # passed by the HTTP side
                        "client": self.client_addr,
                        "server": self.server_addr,
                        "subprotocols": subprotocols,
                    },
                )
                if queue is not None:
                    self.application_queue = queue
                    queue.put_nowait({"type": "websocket.connect"})
            except Exception:
                logger.error(traceback.format_exc())
                raise
            self.handshake_deferred = defer.Deferred()
            return self.handshake_deferred

        def onOpen(self) -> None:
            """daphne's `onOpen` logs `connected`, which this server leaves out."""

        def processHandshake(self) -> None:
            """An ordinary opening handshake with less work (`process_ordinary_handshake`);
            autobahn's for anything else, or for all with CHAT_FAST_HANDSHAKE off."""
            if not (fast_handshake and process_ordinary_handshake(self)):
                super().processHandshake()

        def _connectionLost(self, reason: Any) -> None:
            """autobahn's server `_connectionLost`, without its debug line."""
            AutobahnProtocol._connectionLost(self, reason)
            self.factory.countConnections -= 1

        # autobahn's Twisted adapter formats a debug line on every read, and on each
        # connection made and lost: its `hltype` and `hlval` colour names with click (when
        # click is installed, as it is for uvicorn), and the arguments are built even with
        # debug logging off. Four click.style calls per client frame, and a twentieth of a
        # handshake's CPU. These are autobahn's methods without those debug lines.
        def dataReceived(self, data: bytes) -> None:
            """Hand the bytes to autobahn (its adapter's method, without the debug line)."""
            self._dataReceived(data)

        def connectionLost(self, reason: Any = connectionDone) -> None:
            """autobahn's adapter method: a TLS failure is logged, then the protocol ends."""
            if _is_tls_error(reason.value):  # type: ignore[no-untyped-call]
                self.log.error(_maybe_tls_reason(reason.value))  # type: ignore[no-untyped-call]
            self._connectionLost(reason)

        # A denial response being received from the application: status, headers, body.
        _denial: tuple[int, list[tuple[bytes, bytes]], list[bytes]] | None = None
        # The complete denial response, written when the handshake fails.
        _denial_response: bytes | None = None

        def handle_reply(self, message: dict[str, Any]) -> None:
            """daphne's handling of application messages, plus denial responses."""
            kind = message.get("type")
            if kind == "websocket.http.response.start":
                if self.state != self.STATE_CONNECTING or self._denial is not None:
                    raise ValueError("A denial response can only start before the handshake")
                self._denial = (int(message["status"]), list(message.get("headers", [])), [])
            elif kind == "websocket.http.response.body":
                if self._denial is None:
                    raise ValueError("websocket.http.response.body before .start")
                self._denial[2].append(bytes(message.get("body", b"")))
                if not message.get("more_body", False):
                    self._denial_response = _http_response(*self._denial)
                    # daphne's rejection (bookkeeping, log) then autobahn's failHandshake,
                    # which writes through sendHttpErrorResponse below.
                    self.serverReject()
            else:
                super().handle_reply(message)

        def sendHttpErrorResponse(
            self, code: int, reason: str, responseHeaders: Any = None
        ) -> None:
            """autobahn's bare error response, or the application's denial response."""
            if self._denial_response is None:
                super().sendHttpErrorResponse(code, reason, responseHeaders)
            else:
                self.sendData(self._denial_response)

        def connectionMade(self) -> None:
            """Start as autobahn's adapter does (without its debug line), then drop what an
            open socket does not need."""
            transport = self.transport
            details = create_transport_details(transport, self.is_server)
            details.channel_framing = TransportDetails.CHANNEL_FRAMING_WEBSOCKET
            self._transport_details = details
            self.peer = details.peer
            # As autobahn: no Nagle delay where the transport has the option.
            with contextlib.suppress(Exception):
                transport.setTcpNoDelay(self.tcpNoDelay)
            self._connectionMade()
            # daphne hands over the upgraded request's transport with its HTTP channel still
            # registered as producer. That request never finishes, so the channel pauses
            # nothing; it only keeps itself, the request and its headers alive (~3 KiB).
            transport = self.transport
            if isinstance(getattr(transport, "producer", None), HTTPChannel):
                transport.unregisterProducer()

        def serverSend(self, content: Any, binary: bool = False) -> None:
            """Send one ASGI `websocket.send`, unless the client is over the backlog."""
            if self._over_backlog():
                return
            super().serverSend(content, binary)

        # The handshake's answer (101 Switching Protocols), held back while autobahn writes
        # it so that it leaves with the first frame (the consumer's `hello`, written in the
        # same step as `accept()`): one write, one TCP segment and one wake-up of the client
        # instead of two. Whatever happens first writes it: the next write, a drop, or the
        # next turn of the loop (`_release_held`), so it is never later than that turn.
        _holding = False
        _held: bytes | None = None

        def succeedHandshake(self, res: Any) -> None:
            """autobahn's accept of the handshake, its answer held for the first frame."""
            if not fast_write:
                super().succeedHandshake(res)
                return
            self._holding = True
            try:
                super().succeedHandshake(res)
            finally:
                self._holding = False
            if self._held is not None:
                try:
                    loop = asyncio.get_running_loop()
                except RuntimeError:  # no loop to wait for (daphne always runs one)
                    self._release_held()
                else:
                    loop.call_soon(self._release_held)

        def _release_held(self) -> None:
            """Write the held answer, if it is still waiting."""
            held = self._held
            if held is not None:
                self._held = None
                if self.transport is not None and self.transport.connected:
                    self._write(held)

        def dropConnection(self, abort: bool = False) -> None:
            """autobahn's drop, after the held answer (which a clean close still sends)."""
            if not abort:
                self._release_held()
            else:
                self._held = None
            super().dropConnection(abort)

        def sendData(self, data: bytes, sync: bool = False, chopsize: int | None = None) -> None:
            """autobahn's write path, sending at once when nothing waits before `data`."""
            if self._holding and not (sync or chopsize or self.send_queue):
                self._held = data if self._held is None else self._held + data
            elif sync or chopsize or self.send_queue or not fast_write:
                self._release_held()
                super().sendData(data, sync, chopsize)
            else:
                self._write(data)

        def write_frame(self, frame: bytes) -> bool:
            """Write a complete, pre-built WebSocket frame; False when the socket is not open.

            Frames autobahn queued (only for chopped or synchronous writes) go first, so the
            order on the socket is the order of the calls.
            """
            if self.state != self.STATE_OPEN:
                return False
            if self._held is not None:
                frame = self._held + frame
                self._held = None
            transport = self.transport
            # The hot path, once per socket per broadcast: with nothing buffered there is no
            # backlog to check and no queued frame to wait for, so write at once.
            if (
                fast_write
                and not transport._tempDataBuffer
                and len(transport.dataBuffer) == transport.offset
                and not self.send_queue
                and transport.connected
                and not transport.disconnecting
                and not transport._writeDisconnected
                and isinstance(transport, tcp.Connection)
            ):
                sent = _send_now(transport, frame)
                if sent == len(frame):
                    return True
                transport.write(frame[sent:] if sent else frame)
                return True
            if self._over_backlog():
                return False
            if self.send_queue:
                super().sendData(frame)
            else:
                self._write(frame)
            return True

        def _write(self, data: bytes) -> None:
            if self._held is not None:
                data = self._held + data
                self._held = None
            transport = self.transport
            if (
                fast_write
                and isinstance(transport, tcp.Connection)
                and transport.connected
                and not transport.disconnecting
                and not transport._writeDisconnected
                and not transport._tempDataBuffer
                and len(transport.dataBuffer) == transport.offset
            ):
                sent = _send_now(transport, data)
                if sent == len(data):
                    return
                if sent:
                    data = data[sent:]
            transport.write(data)

        def _over_backlog(self) -> bool:
            if not max_backlog or self.state != self.STATE_OPEN:
                return False
            if buffered_bytes(self.transport) <= max_backlog:
                return False
            client = self.client_addr[0] if self.client_addr else "-"
            logger.warning(
                "slow client %s: over %d bytes unsent; disconnecting",
                client,
                max_backlog,
                extra={"client": client, "max_backlog": max_backlog},
            )
            self.dropConnection(abort=True)
            metrics.SLOW_READER_DISCONNECTS.inc()
            return True

    # The state autobahn's `_connectionMade` gives every connection the same value: on the
    # class, so a connection's dictionary holds only what changed (autobahn assigns these
    # on the instance when they do).
    for name, value in CONSTANT_CONNECTION_STATE.items():
        setattr(ChatWebSocketProtocol, name, value)

    class HandshakeSniffer(Protocol):
        """The first protocol of each accepted connection: it reads the first bytes and hands
        the connection to a WebSocket protocol (a whole upgrade request, `websocket_upgrade`)
        or to daphne's HTTP channel (anything else), replaying the bytes to it.

        daphne's own path builds a twisted.web HTTP channel and request per connection,
        parses the headers into them, then rebuilds the request's bytes for autobahn, which
        parses them again: about a fifth of a handshake's CPU, spent on objects the
        WebSocket drops at once. The upgrade reaches autobahn and daphne's WebSocket protocol
        exactly as it did, with the raw query string daphne would have given it.
        """

        # The call that closes a connection that sends nothing.
        _timeout: Any = None

        def __init__(self, factory: ChatHTTPFactory, addr: Any) -> None:
            self.factory = factory
            self.addr = addr

        def connectionMade(self) -> None:
            # As twisted.web's channel: no Nagle delay, and a connection that sends nothing
            # is closed after the factory's timeout.
            transport: Any = self.transport
            if ITCPTransport.providedBy(transport):
                transport.setTcpNoDelay(True)
            if self.factory.timeOut:
                # Aborted, not closed: a TLS peer that ignores close_notify would stay.
                self._timeout = self.factory.reactor.callLater(
                    self.factory.timeOut, transport.abortConnection
                )

        def dataReceived(self, data: bytes) -> None:
            self._cancel_timeout()
            transport: Any = self.transport
            server = self.factory.server
            query = websocket_upgrade(data) if server.ws_factory is not None else None
            protocol = None
            if query is not None:
                protocol = server.ws_factory.buildProtocol(transport.getPeer())
                if protocol is not None:
                    # daphne's HTTP request passes it the same way (WebRequest.process).
                    protocol._raw_query_string = query
            if protocol is None:
                protocol = self.factory.build_http_channel(self.addr)
            if isinstance(transport, ProtocolWrapper):
                transport.wrappedProtocol = protocol  # TLS wraps the connection
            else:
                transport.protocol = protocol
            protocol.makeConnection(transport)
            protocol.dataReceived(data)

        def connectionLost(self, reason: Any = None) -> None:
            self._cancel_timeout()

        def _cancel_timeout(self) -> None:
            if self._timeout is not None:
                if self._timeout.active():
                    self._timeout.cancel()
                self._timeout = None

    class ChatHTTPFactory(HTTPFactory):
        """daphne's HTTP factory whose connections start with a `HandshakeSniffer`."""

        def buildProtocol(self, addr: Any) -> Any:
            return HandshakeSniffer(self, addr)

        def build_http_channel(self, addr: Any) -> Any:
            """daphne's HTTP channel for a connection that is not a plain upgrade."""
            return super().buildProtocol(addr)

    class ChatServer(Server):
        """daphne's Server with the chat's WebSocket protocol and a graceful shutdown."""

        websocket_protocol = ChatWebSocketProtocol
        http_factory_class = ChatHTTPFactory
        _ws_factory: Any = None
        _http_factory: Any = None
        # Set by daphne's Server.__init__: its access log (None when off), and what it listens on.
        action_logger: Any
        endpoints: list[str]

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.endpoints = with_listen_backlog(self.endpoints, listen_backlog)
            if access_via_logging and self.action_logger is not None:
                self.action_logger = log_access
            # What is loaded by now (Django, the application, daphne) lives as long as the
            # worker: no full collection needs to walk it again.
            gc.collect()
            gc.freeze()
            gc.set_threshold(*GC_THRESHOLDS)

        _warming: asyncio.Future[None] | None = None

        def run(self) -> None:
            """daphne's run, with the application's `warm_up` started as soon as the loop
            runs (before the first connection is read)."""
            if warm_up is not None:
                from twisted.internet import reactor as installed

                reactor: Any = installed  # the asyncio reactor daphne installed
                reactor.callLater(0, self._start_warm_up)
            super().run()

        def _start_warm_up(self) -> None:
            assert warm_up is not None
            self._warming = asyncio.ensure_future(warm_up())

        @property
        def http_factory(self) -> Any:
            """The HTTP factory, which `Server.run` builds: daphne's, or its subclass whose
            connections skip twisted.web for a WebSocket upgrade."""
            return self._http_factory

        @http_factory.setter
        def http_factory(self, factory: Any) -> None:
            if fast_handshake and type(factory) is HTTPFactory:
                factory = self.http_factory_class(factory.server)
            self._http_factory = factory

        @property
        def ws_factory(self) -> Any:
            """The WebSocket factory, which `Server.run` builds."""
            return self._ws_factory

        @ws_factory.setter
        def ws_factory(self, factory: Any) -> None:
            # A subclass per factory: its class attributes hold this factory's options.
            factory.protocol = type(
                self.websocket_protocol.__name__, (self.websocket_protocol,), {}
            )
            self._ws_factory = factory

        def log_action(self, protocol: str, action: str, details: dict[str, Any]) -> None:
            """daphne's access log, without the WebSocket entries that repeat the consumer's
            own log lines (`connect session=...`, `disconnect session=...`)."""
            if protocol == "websocket" and action in QUIET_SOCKET_ACTIONS:
                return
            super().log_action(protocol, action, details)

        def create_application(self, protocol: Any, scope: dict[str, Any]) -> Any:
            """Start the application of a connection; a WebSocket's gets `write_frame`, denial
            responses and a slotted input queue (daphne's own code otherwise, as of the pinned
            version)."""
            if not isinstance(protocol, ChatWebSocketProtocol):
                return super().create_application(protocol, scope)
            assert "application_instance" not in self.connections[protocol]
            extensions = scope.setdefault("extensions", {})
            extensions[EXTENSION] = {"write_frame": protocol.write_frame}
            extensions[DENIAL_EXTENSION] = {}
            scope.setdefault("asgi", ASGI_VERSION)
            queue = LightQueue()
            instance = self.application(
                scope=scope, receive=queue.get, send=partial(self.handle_reply, protocol)
            )
            if protocol not in self.connections:
                return None
            self.connections[protocol]["application_instance"] = asyncio.ensure_future(instance)
            return queue

        def kill_all_applications(self) -> Any:
            """Close open sockets with 1012, wait for their handshakes, then stop the rest."""
            closing = []
            for protocol, details in list(self.connections.items()):
                if (
                    isinstance(protocol, WebSocketProtocol)
                    and protocol.state == protocol.STATE_OPEN
                ):
                    protocol.sendCloseFrame(code=CLOSE_SERVICE_RESTART, isReply=False)
                    instance = details.get("application_instance")
                    if instance is not None and not instance.done():
                        closing.append(instance)
            logger.info("shutting down: closed %d sockets with 1012", len(closing))
            waited = defer.Deferred.fromFuture(
                asyncio.ensure_future(_wait_done(closing, max(grace, 0)))
            )
            waited.addBoth(lambda _: super(ChatServer, self).kill_all_applications())
            return waited

    return ChatServer


def _http_response(status: int, headers: list[tuple[bytes, bytes]], chunks: list[bytes]) -> bytes:
    """An HTTP/1.1 response that ends the connection, from an ASGI denial response."""
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = "Refused"
    body = b"".join(chunks)
    lines = [f"HTTP/1.1 {status} {phrase}".encode("latin-1")]
    for name, value in headers:
        name, value = bytes(name), bytes(value)
        # The length and the connection are this response's own; no header may break a line.
        if name.lower() in (b"content-length", b"connection", b"transfer-encoding"):
            continue
        if any(c in name + value for c in (b"\r", b"\n")):
            continue
        lines.append(name + b": " + value)
    lines += [b"Content-Length: " + str(len(body)).encode(), b"Connection: close"]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


async def _wait_done(instances: list[asyncio.Future[Any]], grace: float) -> None:
    """Wait for the closing handshakes, then remove this worker's presence entries and
    close the message writer's connection."""
    from chat import writer
    from chat.presence import close_worker

    if instances and grace:
        await asyncio.wait(instances, timeout=grace)
        # Let the last presence broadcasts go out.
        await asyncio.sleep(min(0.3, grace))
    try:
        await close_worker()
    except Exception as exc:
        logger.warning("shutting down: presence cleanup failed (%s)", exc)
    try:
        await writer.close()
    except Exception as exc:
        logger.warning("shutting down: closing the message writer failed (%s)", exc)
