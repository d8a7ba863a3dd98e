"""A small real WebSocket chat client for tests (the `websockets` library)."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlencode

import websockets


class ChatClient:
    """One connection; keeps every frame it received, in order."""

    def __init__(self, conn: websockets.ClientConnection, hello: dict[str, Any]) -> None:
        self.conn = conn
        self.hello = hello
        self.frames: list[dict[str, Any]] = []
        self.session = hello["session"]

    @classmethod
    async def connect(
        cls,
        ws_url: str,
        *,
        nick: str | None = None,
        after: int | None = None,
        origin: str | None = None,
        timeout: float = 10,
        headers: dict[str, str] | None = None,
    ) -> ChatClient:
        """Open the socket and wait for `hello`."""
        params = {}
        if nick is not None:
            params["nick"] = nick
        if after is not None:
            params["after"] = str(after)
        url = ws_url + ("?" + urlencode(params) if params else "")
        if origin is None:
            origin = ws_url.split("/ws/")[0].replace("ws://", "http://")
        conn = await websockets.connect(
            url, origin=origin, open_timeout=timeout, additional_headers=headers
        )
        hello = json.loads(await asyncio.wait_for(conn.recv(), timeout))
        assert hello["type"] == "hello", hello
        return cls(conn, hello)

    async def send(self, frame: dict[str, Any] | str) -> None:
        await self.conn.send(frame if isinstance(frame, str) else json.dumps(frame))

    async def say(self, body: str, client_id: str | None = None) -> None:
        frame: dict[str, Any] = {"type": "message", "body": body}
        if client_id is not None:
            frame["client_id"] = client_id
        await self.send(frame)

    async def recv(self, timeout: float = 5) -> dict[str, Any]:
        frame = json.loads(await asyncio.wait_for(self.conn.recv(), timeout))
        self.frames.append(frame)
        return frame

    async def recv_type(self, kind: str, timeout: float = 5, **match: Any) -> dict[str, Any]:
        """The next frame of type `kind` (matching `match`), skipping others."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"no {kind} frame matching {match} within {timeout}s")
            frame = await self.recv(remaining)
            if frame["type"] == kind and all(frame.get(k) == v for k, v in match.items()):
                return frame

    def messages(self) -> list[dict[str, Any]]:
        """History from hello plus every live message frame, in arrival order."""
        return list(self.hello["history"]) + [f for f in self.frames if f["type"] == "message"]

    async def close(self) -> None:
        await self.conn.close()
