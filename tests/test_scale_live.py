"""The README's scale-out recipe as written: `make scale` (deploy/scale-local.sh) starts two
daphne workers behind Debian's nginx; a page and a WebSocket work through nginx, a message
crosses from one worker to the other, and Ctrl-C stops everything."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.client import ChatClient
from tests.support.environment import REDIS_PREFIX, missing
from tests.support.polling import wait_for
from tests.support.servers import ARTIFACTS, ROOT, base_env, free_port

pytestmark = [pytest.mark.live, pytest.mark.redis]

SCRIPT = ROOT / "deploy" / "scale-local.sh"


@dataclass
class Scaled:
    """A running `make scale`."""

    proc: subprocess.Popen[bytes]
    http_port: int
    worker_ports: tuple[int, int]
    log_path: Path

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.http_port}/ws/chat/"

    def ctrl_c(self) -> int:
        """What Ctrl-C at the terminal does: SIGINT to the whole process group."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGINT)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=5)
            raise

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _nginx() -> str:
    found = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(found).exists():
        missing("nginx is not installed (apt-get install nginx)")
    return found


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


@pytest.fixture
def scaled(live_db_url: str, redis_url: str, tmp_path: Path) -> Iterator[Scaled]:
    """`deploy/scale-local.sh` (what `make scale` runs) on free ports, up and healthy."""
    nginx = _nginx()
    http_port, one, two = free_port(), free_port(), free_port()
    env = base_env(
        db_url=live_db_url,
        redis_url=redis_url,
        CHAT_REDIS_PREFIX=REDIS_PREFIX,
        BIN=str(Path(sys.executable).parent),
        NGINX=nginx,
        HTTP_PORT=str(http_port),
        WORKER_PORTS=f"{one} {two}",
        SCALE_DIR=str(tmp_path / "scale"),
    )
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / f"scale-{http_port}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [str(SCRIPT)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    running = Scaled(proc, http_port, (one, two), log_path)
    deadline = time.monotonic() + 60
    try:
        while "the chat is at" not in running.log() or not _listening(http_port):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"make scale did not start:\n{running.log()[-3000:]}")
            time.sleep(0.2)
        yield running
    finally:
        if proc.poll() is None:
            running.ctrl_c()
    assert "Traceback" not in running.log(), running.log()[-3000:]


def test_make_scale_runs_the_script() -> None:
    done = subprocess.run(
        ["make", "-n", "scale"], cwd=ROOT, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    assert "deploy/scale-local.sh" in done.stdout


def test_the_page_is_served_through_nginx(scaled: Scaled) -> None:
    with urllib.request.urlopen(f"{scaled.http_url}/", timeout=5) as resp:
        assert resp.status == 200
        assert "text/html" in resp.headers["Content-Type"]


async def _worker_of(sessions: set[str], redis_url: str) -> dict[str, str]:
    """Which worker holds each session, from the presence hashes in Redis."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    found: dict[str, str] = {}
    try:
        async for key in client.scan_iter(f"{REDIS_PREFIX}:presence:w:*"):
            worker = key.decode().rsplit(":", 1)[1]
            for session in await client.hkeys(key):
                if session.decode() in sessions:
                    found[session.decode()] = worker
    finally:
        await client.aclose()
    return found


async def test_a_message_crosses_from_one_worker_to_the_other_through_nginx(
    scaled: Scaled, redis_url: str
) -> None:
    clients = [await ChatClient.connect(scaled.ws_url, nick=f"P{i}") for i in range(2)]
    try:
        # nginx balances by open connections (least_conn): find two sockets on two workers.
        workers: dict[str, str] = {}
        for _ in range(6):
            await asyncio.sleep(0.5)  # presence reaches Redis within FLUSH_DELAY
            workers = await _worker_of({c.session for c in clients}, redis_url)
            if len(set(workers.values())) == 2:
                break
            clients.append(await ChatClient.connect(scaled.ws_url, nick=f"P{len(clients)}"))
        by_worker = {worker: session for session, worker in workers.items()}
        assert len(by_worker) == 2, f"every socket landed on one worker: {workers}"
        sender, receiver = (
            next(c for c in clients if c.session == session) for session in by_worker.values()
        )
        await sender.say("across nginx")
        got = await receiver.recv_type("message", body="across nginx", timeout=10)
        assert got["session"] == sender.session
    finally:
        for client in clients:
            await client.close()


def test_ctrl_c_stops_nginx_and_both_workers(scaled: Scaled) -> None:
    scaled.ctrl_c()
    assert "scale: stopping" in scaled.log()
    for port in (scaled.http_port, *scaled.worker_ports):
        assert not _listening(port), f"port {port} still open after Ctrl-C"


def test_the_workers_trust_nginxs_forwarded_address(scaled: Scaled) -> None:
    # --proxy-headers: daphne's access log shows the address from X-Forwarded-For, with no
    # port (nginx sends none), rather than nginx's own connection's port.
    with urllib.request.urlopen(f"{scaled.http_url}/healthz", timeout=5):
        pass
    # The access log line is written after the response: wait for it rather than a fixed time.
    wait_for(lambda: re.search(r'127\.0\.0\.1:0 - - \[.*\] "GET /healthz"', scaled.log()))
