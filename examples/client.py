"""A terminal client for the lobby chat: the page's WebSocket protocol, without the page.

    .venv/bin/python examples/client.py ws://127.0.0.1:8000/ws/chat/ --nick Ana

Prints the history and then every message as it arrives; sends each line typed on stdin as
a message. At the end of stdin (Ctrl-D, or the end of a pipe) it waits until the server has
echoed every line it sent (the echo is the acknowledgement), then exits. It sends an `Origin`
header (by default the server's own http:// or https:// address), as the server refuses a
handshake without an allowed one; a refused handshake prints the server's reason. It does not
reconnect: see the README ("Clients other than the page") for what a long-lived client adds.

Exit status: 0 when every line was acknowledged, 1 when the handshake was refused or the
connection closed first, 2 when a line was refused with an `error` frame.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
import uuid
from datetime import datetime
from typing import Any, TextIO
from urllib.parse import urlencode, urlsplit

import websockets
from websockets.typing import Origin


def origin_of(url: str) -> str:
    """The Origin a page served by the same host would send: ws -> http, wss -> https."""
    parts = urlsplit(url)
    scheme = "https" if parts.scheme == "wss" else "http"
    return f"{scheme}://{parts.netloc}"


def describe(frame: dict[str, Any]) -> str | None:
    """One line for a server frame, or None for frames not shown (typing)."""
    kind = frame.get("type")
    if kind == "message":
        sent_at = datetime.fromisoformat(frame["sent_at"].replace("Z", "+00:00"))
        mark = " [account]" if frame.get("account") else ""
        return f"[{sent_at:%H:%M:%S}] {frame['nick']}{mark}: {frame['body']}"
    if kind == "presence":
        return f"* {frame['count']} online"
    if kind == "retract":
        return f"* message {frame['id']} was deleted"
    if kind == "error":
        retry = f" (retry after {frame['retry_after']} s)" if "retry_after" in frame else ""
        return f"* refused: {frame['code']}: {frame['detail']}{retry}"
    return None


def _lines(stream: TextIO) -> asyncio.Queue[str | None]:
    """Lines of `stream`, then None at its end; read in a daemon thread, which a blocked
    terminal read cannot keep alive at exit."""
    queue: asyncio.Queue[str | None] = asyncio.Queue()
    loop = asyncio.get_running_loop()

    def read() -> None:
        for line in stream:
            loop.call_soon_threadsafe(queue.put_nowait, line.rstrip("\n"))
        loop.call_soon_threadsafe(queue.put_nowait, None)

    threading.Thread(target=read, daemon=True).start()
    return queue


async def run(url: str, *, nick: str | None, origin: str | None, stdin: TextIO, out: TextIO) -> int:
    """Chat until stdin ends and every line is acknowledged; the exit status."""
    target = url + ("?" + urlencode({"nick": nick}) if nick else "")
    try:
        conn = await websockets.connect(
            target, origin=Origin(origin or origin_of(url)), open_timeout=10
        )
    except websockets.InvalidStatus as exc:
        reason = bytes(exc.response.body or b"").decode(errors="replace").strip()
        out.write(f"* handshake refused: HTTP {exc.response.status_code} {reason}\n")
        return 1
    pending: set[str] = set()
    refused = False
    async with conn:
        hello = json.loads(await conn.recv())
        for message in hello["history"]:
            out.write(f"{describe(message)}\n")
        out.write(f"* connected as {hello['nick']}; {hello['count']} online\n")
        out.flush()
        lines = _lines(stdin)
        reading = True
        receiving = asyncio.ensure_future(conn.recv())
        typing = asyncio.ensure_future(lines.get())
        while reading or pending:
            done, _ = await asyncio.wait(
                {receiving, typing} if reading else {receiving},
                return_when=asyncio.FIRST_COMPLETED,
            )
            if typing in done:
                line = typing.result()
                if line is None:
                    reading = False
                else:
                    if line.strip():
                        client_id = uuid.uuid4().hex
                        pending.add(client_id)
                        await conn.send(
                            json.dumps({"type": "message", "body": line, "client_id": client_id})
                        )
                    typing = asyncio.ensure_future(lines.get())
            if receiving in done:
                try:
                    frame = json.loads(receiving.result())
                except websockets.ConnectionClosed as exc:
                    out.write(f"* connection closed: {exc}\n")
                    return 1
                if frame.get("client_id") in pending:
                    pending.discard(frame["client_id"])
                    refused = refused or frame.get("type") == "error"
                shown = describe(frame)
                if shown is not None:
                    out.write(shown + "\n")
                    out.flush()
                receiving = asyncio.ensure_future(conn.recv())
        receiving.cancel()
        typing.cancel()
    return 2 if refused else 0


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and chat."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url", help="the chat's socket, e.g. ws://127.0.0.1:8000/ws/chat/")
    parser.add_argument("--nick", help="nickname (a guest gets a random one without it)")
    parser.add_argument("--origin", help="Origin header (default: the server's own address)")
    args = parser.parse_args(argv)
    return asyncio.run(
        run(args.url, nick=args.nick, origin=args.origin, stdin=sys.stdin, out=sys.stdout)
    )


if __name__ == "__main__":
    sys.exit(main())
