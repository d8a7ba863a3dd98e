"""Shared fixtures: real Redis, real server processes, the test database's URL.

The helpers behind them are in tests/support/; test modules import those, not this file.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.database import database_url
from tests.support.environment import REDIS_PREFIX, delete_prefixed_keys, missing
from tests.support.servers import ROOT, Daphne, PrivateRedis, ServerProcess, base_env

REDIS_TEST_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _delete_this_runs_keys() -> None:
    """Delete the keys of this run's prefix from the shared Redis, if it is reachable."""
    import redis

    client = redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=2)
    try:
        delete_prefixed_keys(client, REDIS_PREFIX)
    except redis.RedisError:
        pass
    finally:
        client.close()


@pytest.fixture(scope="session", autouse=True)
def _redis_keys_removed_at_the_end() -> Iterator[None]:
    """Leave nothing in the shared Redis: delete this run's keys when the session ends."""
    yield
    _delete_this_runs_keys()


@pytest.fixture
def redis_url() -> Iterator[str]:
    """A real Redis, with this project's keys cleared before the test."""
    import redis

    url = REDIS_TEST_URL
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        missing(f"Redis not reachable at {url}: {exc}")
    delete_prefixed_keys(client, REDIS_PREFIX)
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
def daphne_factory(
    live_db_url: str, collected_static: Path
) -> Iterator[Callable[..., ServerProcess]]:
    """Start daphne processes (or another `server_class` of tests.support.servers); all are
    stopped at the end of the test, and a traceback in any of their logs fails it."""
    started: list[ServerProcess] = []

    def start(
        *,
        redis_url: str | None,
        name: str = "web",
        extra_args: list[str] | None = None,
        server_class: type[ServerProcess] = Daphne,
        **env: str,
    ) -> ServerProcess:
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
                f"{proc.kind} {proc.name} logged a traceback:\n{log[max(0, at - 500) : at + 3000]}"
            )


@pytest.fixture
def two_workers(
    request: pytest.FixtureRequest, daphne_factory: Callable[..., ServerProcess], redis_url: str
) -> tuple[ServerProcess, ServerProcess]:
    """Two daphne processes on one Redis: one chat served by two workers.

    Their environment comes from indirect parametrization, e.g.
    `@pytest.mark.parametrize("two_workers", [{"CHAT_PRESENCE_TTL": "6"}], indirect=True)`.
    """
    env: dict[str, str] = dict(getattr(request, "param", {}))
    tag = "-".join(env.values()) or "default"
    return (
        daphne_factory(redis_url=redis_url, name=f"a-{tag}", **env),
        daphne_factory(redis_url=redis_url, name=f"b-{tag}", **env),
    )


@pytest.fixture
def ids(db: None) -> list[int]:
    """Ten stored messages (bodies m0..m9, client ids c0..c9), their ids in order."""
    from chat.models import Message

    return [
        Message.objects.create(nick="Ana", body=f"m{n}", session="s", client_id=f"c{n}").id
        for n in range(10)
    ]


@pytest.fixture
def fresh_layer() -> Iterator[None]:
    """A new in-memory layer for the test: its queues belong to one event loop."""
    from channels.layers import channel_layers

    channel_layers.backends = {}
    yield
    channel_layers.backends = {}


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
        missing("redis-server is not installed")
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
