"""Who is online, the same on every worker.

Each worker (one tracker per event loop) keeps its own sessions in memory and mirrors them
into Redis as one hash per worker with a time-to-live, refreshed by a heartbeat. The online
list is the union of the hashes of live workers, so the people of a worker killed with
SIGKILL drop out when its hash expires (within `CHAT_PRESENCE_TTL` seconds). Without Redis
the list is process-local.

Changes are coalesced: many joins within `FLUSH_DELAY` produce one `presence` broadcast.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import os
import secrets
import time
from collections import Counter
from typing import Any

from django.conf import settings
from redis import asyncio as aioredis

from chat import broadcast, protocol

logger = logging.getLogger(__name__)

FLUSH_DELAY = 0.15
# In a crowd, coalesce presence broadcasts for longer: each one goes to everyone.
CROWD = 100
CROWD_FLUSH_DELAY = 1.0
# How old the online list may be when a joining socket's `hello` is built.
SNAPSHOT_MAX_AGE = 0.5


def _order(entry: dict[str, str]) -> tuple[str, str]:
    return entry["nick"].casefold(), entry["session"]


def sort_online(entries: dict[str, str]) -> list[dict[str, str]]:
    """The online list in a stable order: by nickname (case-insensitive), then session."""
    return sorted(
        ({"session": session, "nick": nick} for session, nick in entries.items()), key=_order
    )


class PresenceTracker:
    """One worker's view of who is online."""

    def __init__(self, *, redis_url: str, ttl: int) -> None:
        self.worker_id = f"{os.getpid()}-{secrets.token_hex(4)}"
        self.local_group = f"chat.worker.{self.worker_id}"
        self.ttl = max(ttl, 3)
        self.list_limit = settings.CHAT_PRESENCE_LIST
        self.local: dict[str, str] = {}
        # Open sockets per client address on this worker (for CHAT_MAX_SOCKETS_PER_IP).
        self.addresses: Counter[str] = Counter()
        self.session_address: dict[str, str] = {}
        self.prefix = f"{settings.CHAT_REDIS_PREFIX}:presence"
        self._redis = (
            aioredis.Redis.from_url(
                redis_url, socket_timeout=3, socket_connect_timeout=2, decode_responses=True
            )
            if redis_url
            else None
        )
        self._last_sent: list[dict[str, str]] | None = None
        self._snapshot: list[dict[str, str]] = []
        self._snapshot_at = float("-inf")
        self._flush_handle: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None

    @property
    def _key(self) -> str:
        return f"{self.prefix}:w:{self.worker_id}"

    @property
    def _addr_key(self) -> str:
        return f"{self.prefix}:a:{self.worker_id}"

    async def join(
        self, session: str, nick: str, *, address: str | None = None
    ) -> list[dict[str, str]]:
        """Add (or rename) a session; return the online list including it."""
        if address is not None and session not in self.local:
            self.addresses[address] += 1
            self.session_address[session] = address
        self.local[session] = nick
        self._ensure_heartbeat()
        if self._redis is not None:
            try:
                async with self._redis.pipeline(transaction=True) as pipe:
                    pipe.hset(self._key, session, nick)
                    pipe.expire(self._key, self.ttl)
                    if address is not None:
                        pipe.hset(self._addr_key, address, self.addresses[address])
                        pipe.expire(self._addr_key, self.ttl)
                    pipe.zadd(f"{self.prefix}:workers", {self.worker_id: time.time() + self.ttl})
                    await pipe.execute()
            except Exception as exc:
                logger.warning("presence: Redis unavailable on join (%s)", exc)
        self.schedule_flush()
        return await self.snapshot(session, nick)

    async def snapshot(self, session: str, nick: str) -> list[dict[str, str]]:
        """The online list for a `hello`: other workers' part at most SNAPSHOT_MAX_AGE old,
        this worker's part exact. A burst of joins reads Redis twice a second, not per join.
        """
        loop = asyncio.get_running_loop()
        if loop.time() - self._snapshot_at > SNAPSHOT_MAX_AGE:
            self._snapshot = await self.online()
            self._snapshot_at = loop.time()
        else:
            self._snapshot_put(session, nick)
        return self._snapshot

    def _snapshot_put(self, session: str, nick: str | None) -> None:
        """Replace (copy-on-write) one session's entry in the cached list; None removes it."""
        online = [e for e in self._snapshot if e["session"] != session]
        if nick is not None:
            bisect.insort(online, {"session": session, "nick": nick}, key=_order)
        self._snapshot = online

    async def rename(self, session: str, nick: str) -> None:
        """Change a session's nickname."""
        await self.join(session, nick)

    async def leave(self, session: str) -> None:
        """Remove a session."""
        self.local.pop(session, None)
        address = self.session_address.pop(session, None)
        if address is not None:
            self.addresses[address] -= 1
            if self.addresses[address] <= 0:
                del self.addresses[address]
        if self._redis is not None:
            try:
                async with self._redis.pipeline(transaction=True) as pipe:
                    pipe.hdel(self._key, session)
                    if address is not None:
                        if address in self.addresses:
                            pipe.hset(self._addr_key, address, self.addresses[address])
                        else:
                            pipe.hdel(self._addr_key, address)
                    await pipe.execute()
            except Exception as exc:
                logger.warning("presence: Redis unavailable on leave (%s)", exc)
        self._snapshot_put(session, None)
        self.schedule_flush()

    async def address_count(self, address: str) -> int:
        """Open sockets from one client address on every live worker."""
        count = self.addresses.get(address, 0)
        if self._redis is None:
            return count
        try:
            others = [w for w in await self._live_workers() if w != self.worker_id]
            if others:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for worker in others:
                        pipe.hget(f"{self.prefix}:a:{worker}", address)
                    count += sum(int(n or 0) for n in await pipe.execute())
        except Exception as exc:
            logger.warning("presence: Redis unavailable, counting this worker only (%s)", exc)
        return count

    async def _live_workers(self) -> list[str]:
        """Workers whose lease has not run out."""
        assert self._redis is not None
        return await self._redis.zrangebyscore(f"{self.prefix}:workers", time.time(), "+inf")

    async def online(self) -> list[dict[str, str]]:
        """Everyone online on every live worker (this worker's list alone if Redis fails)."""
        if self._redis is None:
            return sort_online(self.local)
        try:
            workers = await self._live_workers()
            merged: dict[str, str] = {}
            if workers:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for worker in workers:
                        pipe.hgetall(f"{self.prefix}:w:{worker}")
                    for entries in await pipe.execute():
                        merged.update(entries)
            merged.update(self.local)
            return sort_online(merged)
        except Exception as exc:
            logger.warning("presence: Redis unavailable, listing this worker only (%s)", exc)
            return sort_online(self.local)

    async def _touch(self) -> None:
        """Rewrite this worker's hash from memory and extend its lease."""
        assert self._redis is not None
        expires = time.time() + self.ttl
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(self._key, self._addr_key)
            if self.local:
                pipe.hset(self._key, mapping=self.local)
                pipe.expire(self._key, self.ttl)
            if self.addresses:
                pipe.hset(self._addr_key, mapping=dict(self.addresses))
                pipe.expire(self._addr_key, self.ttl)
            pipe.zadd(f"{self.prefix}:workers", {self.worker_id: expires})
            pipe.zremrangebyscore(f"{self.prefix}:workers", "-inf", time.time())
            await pipe.execute()

    async def aclose(self) -> None:
        """Stop the background tasks and close the Redis connection."""
        for task in (self._heartbeat, self._flush_handle):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if self._redis is not None:
            await self._redis.aclose()

    def schedule_flush(self) -> None:
        """Broadcast the online list soon, once for a burst of changes."""
        if self._flush_handle is None or self._flush_handle.done():
            self._flush_handle = asyncio.ensure_future(self._flush())

    async def _flush(self) -> None:
        crowded = len(self._snapshot) >= CROWD or len(self.local) >= CROWD
        await asyncio.sleep(CROWD_FLUSH_DELAY if crowded else FLUSH_DELAY)
        online = await self.online()
        self._last_sent = online
        self._snapshot = online
        self._snapshot_at = asyncio.get_running_loop().time()
        try:
            await broadcast.publish(protocol.presence_frame(online, limit=self.list_limit))
        except Exception as exc:
            logger.warning("presence: broadcast failed (%s)", exc)

    def _ensure_heartbeat(self) -> None:
        if self._redis is not None and (self._heartbeat is None or self._heartbeat.done()):
            self._heartbeat = asyncio.ensure_future(self._beat())

    async def _beat(self) -> None:
        """Refresh the lease; tell local sockets when the list changed behind our back."""
        interval = self.ttl / 3
        while True:
            await asyncio.sleep(interval)
            try:
                await self._touch()
            except Exception as exc:
                logger.warning("presence: heartbeat failed (%s)", exc)
                continue
            online = await self.online()
            if online != self._last_sent and self.local:
                self._last_sent = online
                try:
                    await broadcast.publish(protocol.presence_frame(online), group=self.local_group)
                except Exception as exc:
                    logger.warning("presence: local broadcast failed (%s)", exc)


_trackers: dict[Any, PresenceTracker] = {}


def get_tracker() -> PresenceTracker:
    """The tracker of the running event loop (one per worker)."""
    loop = asyncio.get_running_loop()
    tracker = _trackers.get(loop)
    if tracker is None:
        # Drop trackers of closed loops (tests run one loop per test).
        for old in [key for key in _trackers if key.is_closed()]:
            del _trackers[old]
        tracker = PresenceTracker(redis_url=settings.REDIS_URL, ttl=settings.CHAT_PRESENCE_TTL)
        _trackers[loop] = tracker
    return tracker
