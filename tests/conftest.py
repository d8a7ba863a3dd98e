"""Shared fixtures: real Redis, real daphne processes, the test database's URL."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.live import ROOT, Daphne, PrivateRedis, base_env, database_url

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
# Every Redis key and channel of this test process starts with this, so that test runs
# sharing one Redis do not hear each other.
REDIS_PREFIX = f"test{os.getpid()}"


def _missing(reason: str) -> None:
    """Locally a missing service skips with a reason; in CI it is a failure."""
    if IN_CI:
        pytest.fail(f"{reason} (required in CI)")
    pytest.skip(reason)


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A real Redis, with this project's keys cleared before the test."""
    import redis

    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        _missing(f"Redis not reachable at {url}: {exc}")
    for key in client.scan_iter(f"{REDIS_PREFIX}:*"):
        client.delete(key)
    yield url
    client.close()


@pytest.fixture
def live_db_url(transactional_db: None) -> str:
    """DATABASE_URL of the test database, for child processes."""
    from django.db import connection

    return database_url(connection.settings_dict)


@pytest.fixture(scope="session")
def collected_static(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A STATIC_ROOT filled by `manage.py collectstatic` with the production storage (hashed
    names, gzip and brotli copies): what the Dockerfile builds. Once per session."""
    root = tmp_path_factory.mktemp("staticfiles")
    env = base_env(db_url="sqlite:///unused.sqlite3", redis_url=None, DJANGO_STATIC_ROOT=str(root))
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=300,
    )
    return root


@pytest.fixture
def daphne_factory(live_db_url: str, collected_static: Path) -> Iterator[Callable[..., Daphne]]:
    """Start daphne processes (or another server class of tests.live); all are stopped at
    the end of the test, and a traceback in any of their logs fails it."""
    started: list[Daphne] = []

    def start(
        *,
        redis_url: str | None,
        name: str = "web",
        extra_args: list[str] | None = None,
        server_class: type[Daphne] = Daphne,
        **env: str,
    ) -> Daphne:
        env.setdefault("CHAT_REDIS_PREFIX", REDIS_PREFIX)
        env.setdefault("DJANGO_STATIC_ROOT", str(collected_static))
        proc = server_class(
            env=base_env(db_url=live_db_url, redis_url=redis_url, **env),
            name=name,
            extra_args=extra_args,
        )
        started.append(proc)
        return proc.start()

    yield start
    for proc in started:
        proc.stop()
    # An unexpected traceback in a worker is a bug even when the test's checks passed.
    for proc in started:
        log = proc.log()
        if "Traceback" in log:
            at = log.index("Traceback")
            pytest.fail(
                f"daphne {proc.name} logged a traceback:\n{log[max(0, at - 500) : at + 3000]}"
            )


@pytest.fixture(autouse=True)
def _close_async_orm_connections() -> Iterator[None]:
    """Close the connections that async code opened in asgiref's executor thread.

    Without this the test database cannot be dropped on PostgreSQL at the end of the run.
    """
    yield
    from asgiref.sync import SyncToAsync
    from django.db import connections

    SyncToAsync.single_thread_executor.submit(connections.close_all).result(timeout=10)


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    """A Redis of this test's own, which the test may stop and start again."""
    import shutil

    if shutil.which("redis-server") is None:
        _missing("redis-server is not installed")
    server = PrivateRedis().start()
    yield server
    server.stop()


# --- Moderation ----------------------------------------------------------------------------


@pytest.fixture
def moderator(django_user_model):
    """A staff account: a moderator."""
    return django_user_model.objects.create_user(
        username="mod", password="mod-password-1", is_staff=True
    )


@pytest.fixture
def member(django_user_model):
    """A plain account: not a moderator."""
    return django_user_model.objects.create_user(username="Member", password="member-pw-1")


@pytest.fixture
async def lobby_listener():
    """A channel of the test process's (in-memory) layer in the lobby group: what every
    socket would receive. Yields a coroutine function that returns the next event."""
    import asyncio

    from channels.layers import get_channel_layer

    from chat import broadcast

    layer = get_channel_layer()
    channel = await layer.new_channel()
    await layer.group_add(broadcast.GROUP, channel)

    async def receive(timeout: float = 1.0) -> dict:
        return await asyncio.wait_for(layer.receive(channel), timeout)

    yield receive
    await layer.group_discard(broadcast.GROUP, channel)
    await layer.flush()
