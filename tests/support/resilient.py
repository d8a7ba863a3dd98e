"""A test client that behaves like the page: outbox, reconnect with `after`, gap repair.

It is the reference for what the guarantees promise a well-behaved client.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import urllib.request
from typing import Any
from urllib.parse import urlencode

import websockets

GAP_GRACE = 0.5


def fetch_after(http_url: str, after: int, limit: int = 500) -> list[dict[str, Any]]:
    """GET /api/messages?after=...: the server's history after an id."""
    query = urlencode({"after": after, "limit": limit})
    with urllib.request.urlopen(f"{http_url}/api/messages?{query}", timeout=5) as resp:
        return json.loads(resp.read())["messages"]


class ResilientClient:
    """Sends `count` messages, survives worker deaths, ends with a complete transcript."""

    def __init__(self, name: str, servers: list[tuple[str, str]], *, start: int = 0) -> None:
        self.name = name
        self.servers = servers  # (ws_url, http_url) pairs, tried in turn
        self.index = start
        self.seen: dict[int, dict[str, Any]] = {}
        self.raw_ids: list[int] = []  # every id as it arrived on a socket, duplicates included
        self.pending: dict[str, str] = {}  # client_id -> body, not yet acknowledged
        self.acked: dict[str, int] = {}  # client_id -> id
        self.reconnects = 0
        self.gap_checks: dict[int, int] = {}
        self.connected = asyncio.Event()

    @property
    def http_url(self) -> str:
        return self.servers[self.index][1]

    def last_contiguous(self) -> int:
        """The highest id below which nothing is missing (or was checked and never existed)."""
        if not self.seen:
            return 0
        ids = sorted(self.seen)
        last = ids[0] - 1 if ids[0] > 1 else 0
        for ident in ids:
            if ident == last + 1 or self.gap_checks.get(last + 1, 0) >= 2:
                last = ident
            else:
                break
        return last

    def _record(self, message: dict[str, Any]) -> None:
        self.raw_ids.append(message["id"])
        self.seen.setdefault(message["id"], message)
        cid = message.get("client_id")
        if cid in self.pending:
            del self.pending[cid]
            self.acked[cid] = message["id"]

    async def repair(self) -> None:
        """Fill holes between the ids seen, from the HTTP API."""
        if not self.seen:
            return
        top = max(self.seen)
        holes = [i for i in range(1, top) if i not in self.seen and self.gap_checks.get(i, 0) < 2]
        if not holes:
            return
        after = holes[0] - 1
        with contextlib.suppress(OSError):
            messages = await asyncio.to_thread(fetch_after, self.http_url, after)
            for hole in holes:
                self.gap_checks[hole] = self.gap_checks.get(hole, 0) + 1
            for message in messages:
                if message["id"] not in self.seen:
                    self.seen[message["id"]] = message
                cid = message.get("client_id")
                if cid in self.pending:
                    del self.pending[cid]
                    self.acked[cid] = message["id"]

    async def _session(self, outbox: asyncio.Queue[tuple[str, str]]) -> None:
        ws_url, _ = self.servers[self.index]
        query = urlencode({"nick": self.name, "after": self.last_contiguous()})
        origin = ws_url.split("/ws/")[0].replace("ws://", "http://")
        async with websockets.connect(f"{ws_url}?{query}", origin=origin, open_timeout=5) as ws:
            hello = json.loads(await ws.recv())
            for message in hello["history"]:
                self._record(message)
            self.connected.set()
            for cid, body in list(self.pending.items()):
                await ws.send(json.dumps({"type": "message", "body": body, "client_id": cid}))

            async def pump() -> None:
                while True:
                    cid, body = await outbox.get()
                    await ws.send(json.dumps({"type": "message", "body": body, "client_id": cid}))

            sender = asyncio.ensure_future(pump())
            try:
                async for raw in ws:
                    frame = json.loads(raw)
                    if frame["type"] == "message":
                        self._record(frame)
            finally:
                sender.cancel()

    async def run(self, stop: asyncio.Event, outbox: asyncio.Queue[tuple[str, str]]) -> None:
        """Stay connected until `stop`, moving to the next server when one fails."""
        delay = 0.1
        while not stop.is_set():
            session = asyncio.ensure_future(self._session(outbox))
            stopper = asyncio.ensure_future(stop.wait())
            done, _ = await asyncio.wait({session, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if stopper in done:
                session.cancel()
                with contextlib.suppress(BaseException):
                    await session
                return
            stopper.cancel()
            self.connected.clear()
            with contextlib.suppress(Exception):
                session.result()
            self.reconnects += 1
            self.index = (self.index + 1) % len(self.servers)
            await asyncio.sleep(delay * random.uniform(0.5, 1.5))
            delay = min(delay * 2, 2)

    def submit(self, outbox: asyncio.Queue[tuple[str, str]], cid: str, body: str) -> None:
        """Queue a message; it stays pending until its echo or the API shows it stored."""
        self.pending[cid] = body
        outbox.put_nowait((cid, body))
