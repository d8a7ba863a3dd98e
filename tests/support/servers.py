"""Real daphne processes for cross-process tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DAPHNE = str(Path(sys.executable).parent / "daphne")
ARTIFACTS = ROOT / "test-artifacts"


def free_port() -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url(settings_dict: dict) -> str:
    """A DATABASE_URL for the database the test process is using."""
    engine = settings_dict["ENGINE"]
    if engine.endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    if engine.endswith("postgresql"):
        user = settings_dict.get("USER") or ""
        password = settings_dict.get("PASSWORD") or ""
        auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = settings_dict.get("HOST") or "127.0.0.1"
        port = settings_dict.get("PORT") or "5432"
        return f"postgres://{auth}{host}:{port}/{settings_dict['NAME']}"
    raise RuntimeError(f"unsupported engine for live tests: {engine}")


class Daphne:
    """One daphne process serving the project on a free port."""

    def __init__(
        self, *, env: dict[str, str], name: str, extra_args: list[str] | None = None
    ) -> None:
        self.port = free_port()
        self.env = env
        self.name = name
        self.extra_args = extra_args or []
        self.proc: subprocess.Popen[bytes] | None = None
        ARTIFACTS.mkdir(exist_ok=True)
        self.log_path = ARTIFACTS / f"daphne-{name}-{self.port}.log"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/chat/"

    def command(self) -> list[str]:
        """The command line of the server process."""
        return [
            DAPHNE,
            "-b",
            "127.0.0.1",
            "-p",
            str(self.port),
            *self.extra_args,
            "chatproject.asgi:application",
        ]

    def start(self, *, timeout: float = 30) -> Daphne:
        """Start the process and wait until /healthz answers 200."""
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.command(),
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"daphne {self.name} exited: {self.log_path.read_text()[-3000:]}"
                )
            with (
                contextlib.suppress(OSError, urllib.error.URLError),
                urllib.request.urlopen(f"{self.http_url}/healthz", timeout=2) as resp,
            ):
                if resp.status == 200:
                    return self
            time.sleep(0.1)
        raise RuntimeError(
            f"daphne {self.name} did not become healthy: {self.log_path.read_text()[-3000:]}"
        )

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send a signal and wait for the process to end."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)

    def restart(self, *, timeout: float = 30) -> Daphne:
        """Kill the process and start a new one on the same port (clients reconnect to it)."""
        self.kill()
        return self.start(timeout=timeout)

    def stop(self) -> None:
        """Stop quietly (end of a test)."""
        self.kill(signal.SIGTERM)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


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


class Runserver(Daphne):
    """`python manage.py runserver` (daphne's ASGI runserver) on a free port."""

    def command(self) -> list[str]:
        return [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{self.port}"]


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


class Uvicorn(Daphne):
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


@contextlib.contextmanager
def table_locked(*, reads: bool = False) -> Iterator[None]:
    """Lock the messages table of the test database from another connection: against
    writes, or with `reads` against reads too (PostgreSQL only: SQLite in WAL mode never
    blocks readers)."""
    from django.db import connection

    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        assert not reads, "SQLite in WAL mode cannot block readers"
        other = sqlite3.connect(settings["NAME"], isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            other.execute("ROLLBACK")
            other.close()
    else:
        import psycopg

        other = psycopg.connect(
            host=settings["HOST"] or "127.0.0.1",
            port=settings["PORT"] or 5432,
            user=settings["USER"],
            password=settings["PASSWORD"] or None,
            dbname=settings["NAME"],
        )
        mode = "ACCESS EXCLUSIVE" if reads else "EXCLUSIVE"
        other.execute(f"LOCK TABLE chat_message IN {mode} MODE")
        try:
            yield
        finally:
            other.rollback()
            other.close()
