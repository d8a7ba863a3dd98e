"""The one chat client of the tests: over a real socket (`websockets`, live tests) or through
Channels' `WebsocketCommunicator` (in-process consumer tests). Both keep every frame they
received, in order, and speak the same methods."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlencode

import websockets
from channels.testing import WebsocketCommunicator

# The origin the in-process tests present (the test settings allow localhost).
ORIGIN = (b"origin", b"http://localhost")


class ChatClient:
    """One greeted connection: `conn` is a real socket, or `comm` a communicator."""

    def __init__(
        self,
        hello: dict[str, Any],
        *,
        conn: websockets.ClientConnection | None = None,
        comm: WebsocketCommunicator | None = None,
    ) -> None:
        self.conn = conn
        self.comm = comm
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
        """Open a real socket to a server and wait for `hello`."""
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
        return cls(hello, conn=conn)

    @classmethod
    async def communicate(
        cls,
        query: str = "",
        *,
        headers: list[tuple[bytes, bytes]] | None = None,
        address: str | None = None,
        timeout: float = 3,
    ) -> ChatClient:
        """Connect to the project's ASGI application in this process and wait for `hello`."""
        from chatproject.asgi import application

        comm = WebsocketCommunicator(
            application, f"/ws/chat/{query}", headers=[ORIGIN, *(headers or [])]
        )
        if address is not None:
            comm.scope["client"] = (address, 40000)
        connected, _ = await comm.connect(timeout=timeout)
        assert connected, "the handshake was refused"
        hello = json.loads(await comm.receive_from(timeout=timeout))
        assert hello["type"] == "hello", hello
        return cls(hello, comm=comm)

    async def send(self, frame: dict[str, Any] | str) -> None:
        """Send a frame (a dict is encoded as JSON; a string goes as it is)."""
        text = frame if isinstance(frame, str) else json.dumps(frame)
        if self.comm is not None:
            await self.comm.send_to(text_data=text)
        else:
            await self.conn.send(text)

    async def say(self, body: str, client_id: str | None = None) -> None:
        """Send a chat message."""
        frame: dict[str, Any] = {"type": "message", "body": body}
        if client_id is not None:
            frame["client_id"] = client_id
        await self.send(frame)

    async def recv(self, timeout: float = 5) -> dict[str, Any]:
        """The next frame; TimeoutError if none comes within `timeout` (through a communicator
        that also ends the application: use `assert_no_message` to check for silence)."""
        if self.comm is not None:
            text = await self.comm.receive_from(timeout=timeout)
        else:
            text = await asyncio.wait_for(self.conn.recv(), timeout)
        frame = json.loads(text)
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

    async def assert_no_message(self, timeout: float = 0.3) -> None:
        """No `message` frame arrives within `timeout` (other frames, e.g. presence, may)."""
        if self.comm is not None:
            # A communicator's receive timeout cancels the application: ask, don't wait.
            while not await self.comm.receive_nothing(timeout=timeout):
                frame = await self.recv()
                assert frame["type"] != "message", frame
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (remaining := deadline - loop.time()) > 0:
            try:
                frame = await self.recv(remaining)
            except TimeoutError:
                return
            assert frame["type"] != "message", frame

    def messages(self) -> list[dict[str, Any]]:
        """History from hello plus every live message frame, in arrival order."""
        return list(self.hello["history"]) + [f for f in self.frames if f["type"] == "message"]

    async def close(self) -> None:
        """Close the connection (for a communicator: disconnect the application)."""
        if self.comm is not None:
            await self.comm.disconnect()
        else:
            await self.conn.close()


def nicks(frame: dict[str, Any]) -> list[str] | None:
    """The sorted nicknames of a `hello` or `presence` frame (None: a count-only `presence`
    frame, sent when the first page of the list did not change)."""
    if "online" not in frame:
        return None
    return sorted(entry["nick"] for entry in frame["online"])


async def wait_presence(client: ChatClient, expected: list[str], timeout: float = 10) -> dict:
    """The first presence frame whose nicknames are `expected`."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        frame = await client.recv_type("presence", timeout=max(0.1, deadline - loop.time()))
        if nicks(frame) == sorted(expected):
            return frame
