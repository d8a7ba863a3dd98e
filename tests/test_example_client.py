"""examples/client.py, the README's client other than the page, against a live daphne."""

from __future__ import annotations

import asyncio
import sys

import pytest

from tests.support import readme
from tests.support.client import ChatClient
from tests.support.servers import ROOT

pytestmark = [pytest.mark.live]

CLIENT = str(ROOT / "examples" / "client.py")


async def _start(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        CLIENT,
        *args,
        cwd=ROOT,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )


async def _line_with(proc: asyncio.subprocess.Process, text: str, timeout: float = 10) -> str:
    """The next output line that contains `text`."""
    assert proc.stdout is not None
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), timeout)).decode()
        if not line:
            raise AssertionError(f"the client ended before printing {text!r}")
        if text in line:
            return line


@pytest.fixture
def server(daphne_factory):
    return daphne_factory(redis_url=None, name="example")


async def test_the_readmes_command_sends_lines_from_stdin_and_prints_them_acknowledged(server):
    # The README's line as pasted, with this server's address for the one it shows.
    program, script, url, *args = readme.command("examples/client.py")
    assert (program, script) == (".venv/bin/python", "examples/client.py")
    assert url.startswith("ws://127.0.0.1:") and url.endswith("/ws/chat/")
    assert args == ["--nick", "Ana"]
    other = await ChatClient.connect(server.ws_url, nick="Other")
    try:
        proc = await _start(server.ws_url, *args)
        out, _ = await asyncio.wait_for(proc.communicate(b"hello from a terminal\n"), 20)
        assert proc.returncode == 0, out.decode()
        assert "Ana: hello from a terminal" in out.decode()
        got = await other.recv_type("message", timeout=5)
        assert (got["nick"], got["body"]) == ("Ana", "hello from a terminal")
    finally:
        await other.close()


async def test_history_and_live_messages_are_printed(server):
    other = await ChatClient.connect(server.ws_url, nick="Other")
    try:
        await other.say("before")
        await other.recv_type("message")
        proc = await _start(server.ws_url, "--nick", "Bia")
        assert "Other: before" in await _line_with(proc, "before")
        await _line_with(proc, "connected as Bia")
        await other.say("while you watch")
        assert "Other: while you watch" in await _line_with(proc, "while you watch")
        assert proc.stdin is not None
        proc.stdin.close()
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        await other.close()


async def test_a_refused_line_prints_the_error_and_exits_2(server):
    proc = await _start(server.ws_url)
    out, _ = await asyncio.wait_for(proc.communicate(b"y" * 3000 + b"\n"), 20)
    assert proc.returncode == 2
    assert "refused: too_long" in out.decode()


async def test_a_refused_handshake_prints_the_servers_reason(server):
    proc = await _start(server.ws_url, "--origin", "http://evil.example")
    out, _ = await asyncio.wait_for(proc.communicate(b""), 20)
    assert proc.returncode == 1
    assert "HTTP 403" in out.decode()
    assert "origin 'http://evil.example' is not allowed" in out.decode()
