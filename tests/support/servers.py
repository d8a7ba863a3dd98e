"""Real server processes for live tests: daphne, uvicorn, runserver, and a private Redis."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Self

ROOT = Path(__file__).resolve().parents[2]
DAPHNE = str(Path(sys.executable).parent / "daphne")
ARTIFACTS = ROOT / "test-artifacts"


def free_port() -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """One server process serving the project on a free port; subclasses give the command."""

    # Start in a process group of its own, and signal the whole group (for servers that
    # fork children of their own).
    new_session = False

    def __init__(
        self, *, env: dict[str, str], name: str, extra_args: list[str] | None = None
    ) -> None:
        self.port = free_port()
        self.env = env
        self.name = name
        self.extra_args = extra_args or []
        self.proc: subprocess.Popen[bytes] | None = None
        ARTIFACTS.mkdir(exist_ok=True)
        self.log_path = ARTIFACTS / f"{self.kind}-{name}-{self.port}.log"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/chat/"

    @property
    def kind(self) -> str:
        """The server's name in logs and messages: `daphne`, `uvicorn`, `runserver`."""
        return type(self).__name__.lower()

    def command(self) -> list[str]:
        """The command line of the server process."""
        raise NotImplementedError

    def start(self, *, timeout: float = 30) -> Self:
        """Start the process and wait until /healthz answers 200."""
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.command(),
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=self.new_session,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.kind} {self.name} exited: {self.log_path.read_text()[-3000:]}"
                )
            with (
                contextlib.suppress(OSError, urllib.error.URLError),
                urllib.request.urlopen(f"{self.http_url}/healthz", timeout=2) as resp,
            ):
                if resp.status == 200:
                    return self
            time.sleep(0.1)
        raise RuntimeError(
            f"{self.kind} {self.name} did not become healthy: {self.log_path.read_text()[-3000:]}"
        )

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send a signal and wait for the process to end."""
        if self.proc is not None and self.proc.poll() is None:
            self._signal(sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.proc.wait(timeout=5)

    def _signal(self, sig: int) -> None:
        if self.new_session:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
        else:
            self.proc.send_signal(sig)

    def restart(self, *, timeout: float = 30) -> Self:
        """Kill the process and start a new one on the same port (clients reconnect to it)."""
        self.kill()
        return self.start(timeout=timeout)

    def stop(self) -> None:
        """Stop quietly (end of a test)."""
        self.kill(signal.SIGTERM)

    def log(self) -> str:
        """Everything the process wrote so far (stdout and stderr)."""
        return self.log_path.read_text(errors="replace")


class Daphne(ServerProcess):
    """daphne, the production server."""

    def command(self) -> list[str]:
        return [
            DAPHNE,
            "-b",
            "127.0.0.1",
            "-p",
            str(self.port),
            *self.extra_args,
            "chatproject.asgi:application",
        ]


def base_env(*, db_url: str, redis_url: str | None, **overrides: str) -> dict[str, str]:
    """The environment of a daphne child: real settings, test database, given Redis."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHAT_", "DJANGO_", "REDIS_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="chatproject.settings",
        DJANGO_SECRET_KEY="test-only-not-a-secret",
        DJANGO_DEBUG="false",
        DJANGO_ALLOWED_HOSTS="localhost,127.0.0.1",
        DATABASE_URL=db_url,
        PYTHONUNBUFFERED="1",
    )
    if redis_url:
        env["REDIS_URL"] = redis_url
    env.update(overrides)
    return env


class Runserver(ServerProcess):
    """`python manage.py runserver` (daphne's ASGI runserver) without the autoreloader."""

    def command(self) -> list[str]:
        return [
            sys.executable,
            "manage.py",
            "runserver",
            "--noreload",
            *self.extra_args,
            f"127.0.0.1:{self.port}",
        ]


class ReloadingRunserver(ServerProcess):
    """`python manage.py runserver` as `make run` starts it: a reloader parent that runs the
    server in a child process. Signals go to both (their own process group)."""

    new_session = True

    def command(self) -> list[str]:
        return [
            sys.executable,
            "manage.py",
            "runserver",
            *self.extra_args,
            f"127.0.0.1:{self.port}",
        ]


class PrivateRedis:
    """A redis-server of the test's own on a free port, to stop and restart at will."""

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        """Start (or restart) on the same port; wait until it answers."""
        import redis

        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                if client.ping():
                    client.close()
                    return self
            time.sleep(0.05)
        raise RuntimeError("private redis-server did not start")

    def stop(self) -> None:
        """Stop at once, keeping nothing (like `redis-cli shutdown nosave`)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


class Uvicorn(ServerProcess):
    """The project under uvicorn, the optional ASGI server."""

    def command(self) -> list[str]:
        return [
            str(Path(sys.executable).parent / "uvicorn"),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--lifespan",
            "off",
            "--ws",
            "websockets-sansio",
            "--ws-max-size",
            "131072",
            "chatproject.asgi:application",
        ]
