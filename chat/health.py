"""Checks behind /healthz/ready (and /healthz): this worker's own state, not a fresh probe.

Readiness asks what this process depends on, as this process sees it:

- the database answers `SELECT 1` (through the worker's own connection settings);
- the channel layer's subscription is live: on the broadcast layer (chat.layers), the
  worker's own pattern subscription, read from memory (`status()`), because a fresh Redis
  connection that answers PING says nothing about a subscription that is down; on
  channels-redis's layers, which keep no subscription of the worker's, a PING; on the
  in-memory layer (runserver, no REDIS_URL) nothing: ready is then the database alone;
- the presence heartbeat is recent: the worker's lease in Redis was extended within
  `stale_after` seconds (two thirds of CHAT_PRESENCE_TTL: two missed beats), so the other
  workers still list its people. A worker that no socket has joined has no heartbeat.

Liveness (/healthz/live) checks nothing: an answer proves the event loop runs.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Protocol, cast

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from redis import asyncio as aioredis

from chat import presence

logger = logging.getLogger(__name__)

TIMEOUT = 2.0
# How long a worker's first probe waits for the subscription it has just started.
SUBSCRIBE_WAIT = 1.0
# The extension a layer declares when it reports its own subscription (chat.layers).
STATUS = "chat.status"


class StatusLayer(Protocol):
    """What a layer declaring `chat.status` offers (chat.layers.RedisBroadcastChannelLayer)."""

    def status(self) -> dict[str, Any]: ...

    async def wait_connected(self, timeout: float = 5) -> bool: ...


DATABASE = "database"
CHANNEL_LAYER = "channel_layer"
PRESENCE = "presence"


def _database_ok() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:200]


async def check_database() -> str | None:
    """None when the database answers, else why not."""
    try:
        await asyncio.wait_for(sync_to_async(_database_ok)(), TIMEOUT)
    except Exception as exc:
        logger.warning("health: database failed (%s)", exc, extra={"check": DATABASE})
        return _reason(exc)
    return None


async def check_channel_layer() -> str | None:
    """None when this worker's channel layer can deliver, else why not (see the module)."""
    layer = get_channel_layer()
    if layer is None:
        return "no channel layer configured"
    if STATUS in getattr(layer, "extensions", ()):
        own = cast(StatusLayer, layer)
        if own.status()["subscribed"] or await own.wait_connected(timeout=SUBSCRIBE_WAIT):
            return None
        logger.warning("health: layer subscription down", extra={"check": CHANNEL_LAYER})
        return "this worker's Redis subscription is down"
    if not settings.REDIS_URL:
        return None
    client = aioredis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT
    )
    try:
        await asyncio.wait_for(client.ping(), TIMEOUT)
    except Exception as exc:
        logger.warning("health: channel layer failed (%s)", exc, extra={"check": CHANNEL_LAYER})
        return _reason(exc)
    finally:
        await client.aclose()
    return None


def heartbeat_stale_after() -> float:
    """Seconds after which the presence heartbeat counts as stale: two missed beats (the
    worker beats every third of CHAT_PRESENCE_TTL)."""
    return float(max(settings.CHAT_PRESENCE_TTL, 3) * 2 / 3)


def readiness(
    *,
    database: str | None,
    channel_layer: str | None,
    heartbeat_age: float | None,
    stale_after: float,
) -> dict[str, str]:
    """What keeps this worker from being ready, by check name (empty: ready).

    `database` and `channel_layer` are the checks' failure reasons (None: fine);
    `heartbeat_age` is None when the worker has no heartbeat to keep.
    """
    failed: dict[str, str] = {}
    if database is not None:
        failed[DATABASE] = database
    if channel_layer is not None:
        failed[CHANNEL_LAYER] = channel_layer
    if heartbeat_age is not None and heartbeat_age > stale_after:
        failed[PRESENCE] = f"heartbeat {heartbeat_age:.0f}s old (stale after {stale_after:.0f}s)"
    return failed


async def check_ready() -> tuple[dict[str, str], float | None]:
    """Run every readiness check of this worker: (what failed, the heartbeat's age)."""
    database = await check_database()
    channel_layer = await check_channel_layer()
    age = presence.heartbeat_age()
    failed = readiness(
        database=database,
        channel_layer=channel_layer,
        heartbeat_age=age,
        stale_after=heartbeat_stale_after(),
    )
    return failed, age
