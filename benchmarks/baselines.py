"""The two single-process baselines, speaking enough of the chat protocol for the generator.

- `bare`: the shape of the demo the product replaces: a set of sockets and a loop of
  `await ws.send(text)` over them, the frame encoded once per message.
- `broadcast`: the same with `websockets.broadcast()` (writes to every socket without
  awaiting; the practical limit of a Python server).

Neither stores anything, has history, presence or limits: they are the floor, not a chat.

    python -m benchmarks.baselines --mode bare --port 8765
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import signal
import uuid
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

LISTEN_BACKLOG = 2048
_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Room:
    """Every connected socket, one process."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.clients: set[ServerConnection] = set()
        self.ids = itertools.count(1)

    async def handler(self, ws: ServerConnection) -> None:
        query = parse_qs(urlsplit(ws.request.path).query if ws.request else "")
        nick = query.get("nick", ["guest"])[0][:32]
        session = uuid.uuid4().hex[:12]
        self.clients.add(ws)
        try:
            await ws.send(
                _encoder.encode(
                    {
                        "type": "hello",
                        "session": session,
                        "nick": nick,
                        "history": [],
                        "online": [],
                        "count": len(self.clients),
                    }
                )
            )
            async for text in ws:
                try:
                    data = json.loads(text)
                except ValueError:
                    continue
                if not isinstance(data, dict) or data.get("type") != "message":
                    continue
                frame = _encoder.encode(
                    {
                        "type": "message",
                        "id": next(self.ids),
                        "nick": nick,
                        "body": str(data.get("body", "")),
                        "sent_at": _now_iso(),
                        "client_id": data.get("client_id"),
                        "session": session,
                    }
                )
                if self.mode == "bare":
                    for other in list(self.clients):
                        with contextlib.suppress(ConnectionClosed):
                            await other.send(frame)
                else:
                    broadcast(self.clients, frame)
        except ConnectionClosed:
            pass
        finally:
            self.clients.discard(ws)


async def main(mode: str, host: str, port: int) -> None:
    room = Room(mode)
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set_result, None)
    # The listen queue of uvicorn's default (the demo ran under uvicorn) and of the product's
    # CHAT_LISTEN_BACKLOG: with asyncio's default of 100, a connect storm loses SYNs that
    # are retried a second later, and the connect time measures that instead of the server.
    async with serve(room.handler, host, port, compression=None, backlog=LISTEN_BACKLOG):
        await stop


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", choices=["bare", "broadcast"], required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(main(args.mode, args.host, args.port))
