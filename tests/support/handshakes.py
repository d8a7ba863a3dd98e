"""Opening handshakes run through autobahn's `processHandshake` and through the chat's
ordinary-handshake path (chat.daphne_server.process_ordinary_handshake, falling back to
autobahn's), side by side on protocol stubs, to show that both leave the same state.

Run in a process where daphne's command line (so Twisted's txaio) is imported:

    python -c "import daphne.cli; from tests.support.handshakes import report; report()"

prints one JSON object per request: its name, whether the ordinary path took it, and the
fields in which the two runs differ (none expected but `params`, which the ordinary path
does not parse: daphne never reads them).
"""

from __future__ import annotations

import json
import sys
from typing import Any

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
BASE = [
    ("Host", "127.0.0.1:8000"),
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", KEY),
    ("Sec-WebSocket-Version", "13"),
]
CHROMIUM = [
    ("Host", "localhost:8000"),
    ("Connection", "Upgrade"),
    ("Pragma", "no-cache"),
    ("Cache-Control", "no-cache"),
    ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0.0.0 Safari/537.36"),
    ("Upgrade", "websocket"),
    ("Origin", "http://localhost:8000"),
    ("Sec-WebSocket-Version", "13"),
    ("Accept-Encoding", "gzip, deflate, br, zstd"),
    ("Accept-Language", "pt-BR,pt;q=0.9"),
    ("Cookie", "sessionid=abc; csrftoken=def"),
    ("Sec-WebSocket-Key", KEY),
    ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"),
]


def request(
    headers: list[tuple[str, str]], *, line: str = "GET /ws/chat/?nick=Ana HTTP/1.1"
) -> bytes:
    text = line + "\r\n" + "".join(f"{name}: {value}\r\n" for name, value in headers) + "\r\n"
    return text.encode("latin-1")


def replace(name: str, value: str | None, headers: list[tuple[str, str]] = BASE) -> list:
    """`headers` with `name` set to `value` (None: removed), or added at the end."""
    out = [(n, v) for n, v in headers if n != name]
    return [*out, (name, value)] if value is not None else out


# (name, request bytes, whether the ordinary path takes it)
CASES: list[tuple[str, bytes, bool]] = [
    ("a plain client", request(BASE), True),
    ("Chromium", request(CHROMIUM), True),
    (
        "websockets with an extension offer",
        request(
            [
                *BASE,
                ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"),
                ("User-Agent", "Python/3.12 websockets/15.0.1"),
            ]
        ),
        True,
    ),
    ("a null origin", request(replace("Origin", "null")), True),
    ("another site's origin", request(replace("Origin", "https://evil.example")), True),
    ("an IPv6 host", request(replace("Host", "[::1]:8000")), True),
    ("a host without a port", request(replace("Host", "chat.example.com")), True),
    (
        "lower-case names, listed tokens",
        request([(n.lower(), v) for n, v in replace("Connection", "keep-alive, Upgrade")]),
        True,
    ),
    ("mixed-case values", request(replace("Upgrade", "WebSocket")), True),
    ("a frame right behind the request", request(BASE) + b"\x81\x85abcd", True),
    (
        "an escaped query",
        request(BASE, line="GET /ws/chat/?nick=Ana%20Clara&x=%C3%A9 HTTP/1.1"),
        True,
    ),
    ("no query", request(BASE, line="GET /ws/chat/ HTTP/1.1"), True),
    ("spaces around values", request([(n, f"  {v}\t") for n, v in BASE]), True),
    ("a forwarded-for header", request([*BASE, ("X-Forwarded-For", "10.0.0.1")]), True),
    # Anything else: autobahn's own checks.
    ("an unfinished request", request(BASE)[:-2], False),
    ("POST", request(BASE, line="POST /ws/chat/ HTTP/1.1"), False),
    ("HTTP/1.0", request(BASE, line="GET /ws/chat/ HTTP/1.0"), False),
    ("a netloc-like path", request(BASE, line="GET //evil/ws/chat/ HTTP/1.1"), False),
    ("path parameters", request(BASE, line="GET /ws/chat/;x=1 HTTP/1.1"), False),
    ("a fragment", request(BASE, line="GET /ws/chat/#top HTTP/1.1"), False),
    ("an absolute URI", request(BASE, line="GET http://h/ws/chat/ HTTP/1.1"), False),
    ("two Host headers", request([*BASE, ("Host", "other")]), False),
    ("no Host", request(replace("Host", None)), False),
    ("a bad port", request(replace("Host", "localhost:http")), False),
    ("an empty port", request(replace("Host", "localhost:")), False),
    ("no Upgrade", request(replace("Upgrade", None)), False),
    ("an upgrade to h2c", request(replace("Upgrade", "h2c")), False),
    ("two Upgrade headers", request([*BASE, ("Upgrade", "websocket")]), False),
    ("Connection without upgrade", request(replace("Connection", "keep-alive")), False),
    ("no Connection", request(replace("Connection", None)), False),
    ("version 8", request(replace("Sec-WebSocket-Version", "8")), False),
    ("version 12", request(replace("Sec-WebSocket-Version", "12")), False),
    ("two versions", request([*BASE, ("Sec-WebSocket-Version", "13")]), False),
    ("no version", request(replace("Sec-WebSocket-Version", None)), False),
    ("a short key", request(replace("Sec-WebSocket-Key", "c2hvcnQ=")), False),
    (
        "a key without padding",
        request(replace("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQAA")),
        False,
    ),
    (
        "a key with a bad character",
        request(replace("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZ!==")),
        False,
    ),
    ("no key", request(replace("Sec-WebSocket-Key", None)), False),
    ("two keys", request([*BASE, ("Sec-WebSocket-Key", KEY)]), False),
    ("a subprotocol", request([*BASE, ("Sec-WebSocket-Protocol", "chat, chat2")]), False),
    ("a duplicate subprotocol", request([*BASE, ("Sec-WebSocket-Protocol", "a, a")]), False),
    ("two origins", request([*replace("Origin", "http://a"), ("Origin", "http://b")]), False),
    ("an origin without a host", request(replace("Origin", "http://")), False),
    (
        "two extension headers",
        request([*BASE, ("Sec-WebSocket-Extensions", "a"), ("Sec-WebSocket-Extensions", "b")]),
        False,
    ),
]

# Fields of the protocol that autobahn's processHandshake sets.
STATE = (
    "http_request_data",
    "http_status_line",
    "http_headers",
    "http_request_uri",
    "http_request_path",
    "http_request_host",
    "websocket_version",
    "websocket_protocols",
    "websocket_origin",
    "websocket_extensions",
    "data",
    "_wskey",
)
REQUEST = ("peer", "headers", "host", "path", "version", "origin", "protocols", "extensions")


def make_stub(data: bytes, *, allowed: list[str] | None = None) -> Any:
    """An autobahn server protocol with daphne's options, that records what it is asked."""
    import txaio
    from autobahn.util import wildcards2patterns
    from autobahn.websocket.protocol import WebSocketServerProtocol

    class Factory:
        externalPort = None
        port = 8000
        isSecure = False
        allowNullOrigin = True  # daphne's
        countConnections = 1
        server = "daphne"
        headers: dict[str, str] = {}

    class Stub(WebSocketServerProtocol):
        log = txaio.make_logger()

        def __init__(self) -> None:
            self.data = data
            self.factory = Factory()
            self.versions = [8, 13]
            self.allowedOriginsPatterns = wildcards2patterns(allowed or ["*"])
            self.maxConnections = 0
            self.trustXForwardedFor = 0
            self.webStatus = False
            self.serveFlashSocketPolicy = False
            self.peer = "tcp:127.0.0.1:50000"
            self.events: list[Any] = []

        def onConnect(self, request: Any) -> None:
            self.events.append(("connect", {name: getattr(request, name) for name in REQUEST}))

        def succeedHandshake(self, res: Any) -> None:
            self.events.append(("accepted", res))

        def failHandshake(self, reason: str, code: int = 400, responseHeaders: Any = None) -> None:
            self.events.append(("failed", reason, code))

    return Stub()


def _snapshot(stub: Any) -> dict[str, Any]:
    state = {name: repr(getattr(stub, name, None)) for name in STATE}
    return {"state": state, "events": repr(stub.events)}


def compare(data: bytes, *, allowed: list[str] | None = None) -> tuple[bool, list[str]]:
    """(whether the ordinary path took `data`, the fields where the two runs differ)."""
    from chat.daphne_server import process_ordinary_handshake

    theirs = make_stub(data, allowed=allowed)
    theirs.processHandshake()
    ours = make_stub(data, allowed=allowed)
    taken = process_ordinary_handshake(ours)
    if not taken:
        ours.processHandshake()
    a, b = _snapshot(theirs), _snapshot(ours)
    differ = [name for name in STATE if a["state"][name] != b["state"][name]]
    if a["events"] != b["events"]:
        differ.append("events")
    return taken, differ


def report() -> None:
    for name, data, _ in CASES:
        taken, differ = compare(data)
        sys.stdout.write(json.dumps({"name": name, "taken": taken, "differ": differ}) + "\n")
    # An origin policy of daphne's (--allowed-origins style): autobahn refuses the others.
    for origin in ("http://chat.example", "http://evil.example"):
        data = request(replace("Origin", origin))
        taken, differ = compare(data, allowed=["http://chat.example:*"])
        line = {"name": f"policy, {origin}", "taken": taken, "differ": differ}
        sys.stdout.write(json.dumps(line) + "\n")
