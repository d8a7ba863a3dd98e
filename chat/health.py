"""Checks behind /healthz."""

from __future__ import annotations

import asyncio
import logging

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from redis import asyncio as aioredis

logger = logging.getLogger(__name__)

TIMEOUT = 2.0


def _database_ok() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


async def check_database() -> str | None:
    """None when the database answers, else why not."""
    try:
        await asyncio.wait_for(sync_to_async(_database_ok)(), TIMEOUT)
    except Exception as exc:
        logger.warning("health: database failed (%s)", exc)
        return f"{type(exc).__name__}: {exc}"[:200]
    return None


async def check_channel_layer() -> str | None:
    """None when the channel layer answers (Redis PING), else why not."""
    if get_channel_layer() is None:
        return "no channel layer configured"
    if not settings.REDIS_URL:
        return None
    client = aioredis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=TIMEOUT, socket_connect_timeout=TIMEOUT
    )
    try:
        await asyncio.wait_for(client.ping(), TIMEOUT)
    except Exception as exc:
        logger.warning("health: channel layer failed (%s)", exc)
        return f"{type(exc).__name__}: {exc}"[:200]
    finally:
        await client.aclose()
    return None
