"""Who is online, the same on every worker.

Each worker (one tracker per event loop) keeps its own sessions in memory and mirrors them
into Redis as one hash per worker, plus one hash of open sockets per client address, with a
lease (`CHAT_PRESENCE_TTL` seconds) extended on every write and by a heartbeat. The online
list is the union of the hashes of live workers, so the people of a worker killed with
SIGKILL drop out when its lease runs out. Without Redis the list is process-local.

A handshake costs no Redis round trip. Each worker keeps a merged view, sorted by nickname
(case-insensitive) then session: its own sessions exactly, the other workers' as of the last
refresh. A join or a leave is O(log N), and `hello` reads only the first CHAT_PRESENCE_LIST
entries and the count. The other workers' part is read in the background every
REFRESH_INTERVAL while this worker has sockets, and before a handshake only when it is older
than VIEW_MAX_AGE (an idle worker's first handshake; concurrent handshakes share that read).
This worker's changes reach Redis in one pipeline per FLUSH_DELAY, however many sockets
joined or left in between.

What that costs, plainly:

- A `hello` can miss people who joined another worker, or still list people who left it,
  within the last FLUSH_DELAY + REFRESH_INTERVAL seconds. The `presence` broadcast that
  follows every change has the writer's fresh list and corrects it.
- CHAT_MAX_SOCKETS_PER_IP counts this worker's sockets exactly and the other workers' as of
  the last refresh. A burst from one address spread over several workers can therefore
  exceed the cap, for up to FLUSH_DELAY + REFRESH_INTERVAL seconds, by as many sockets as
  the other workers accepted from it since the last refresh.
- A SIGKILLed worker's people drop out within the TTL plus one REFRESH_INTERVAL.

Presence broadcasts are coalesced: many changes within FLUSH_DELAY (CROWD_FLUSH_DELAY in a
crowd, where each broadcast goes to everyone) produce one `presence` broadcast. It carries
the first page of the list only when that page changed (`protocol.presence_update`):
otherwise it is `{"type": "presence", "count": N}`, the same few bytes for every socket, so
the 1,001st person joining a crowd costs the others one short write each. For that the
tracker keeps `held`, the first page that every socket is known to hold: the page of the
last full frame (its own, or another worker's, seen through the broadcast layer's `Lobby`),
forgotten (None, so the next broadcast carries the page) when a `hello` hands out a
different page or the worker tells only its own sockets a list. On layers where a worker
does not see the others' frames (channels-redis's), every broadcast carries the page, as a
worker cannot know what the others sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import time
from collections import Counter
from typing import Any, cast

from django.conf import settings
from redis import asyncio as aioredis
from sortedcontainers import SortedList

from chat import broadcast, metrics, protocol

logger = logging.getLogger(__name__)

# This worker's changes are written to Redis at most this long after they happen.
FLUSH_DELAY = 0.15
# In a crowd, coalesce presence broadcasts for longer: each one goes to everyone.
CROWD = 100
CROWD_FLUSH_DELAY = 1.0
# How often the other workers' sessions and address counts are read while there are sockets.
REFRESH_INTERVAL = 1.0
# A view older than this (the background refresh is not running) is read before a handshake.
VIEW_MAX_AGE = 2 * REFRESH_INTERVAL


def _order(entry: dict[str, str]) -> tuple[str, str]:
    return entry["nick"].casefold(), entry["session"]


def sort_online(entries: dict[str, str]) -> list[dict[str, str]]:
    """The online list in a stable order: by nickname (case-insensitive), then session."""
    return sorted(
        ({"session": session, "nick": nick} for session, nick in entries.items()), key=_order
    )


class OnlineView:
    """Everyone online, in the order of `sort_online`, with O(log N) changes.

    `page` builds the first entries once and hands out the same tuple until a change falls
    inside it, so a crowd joining after the first page costs no copy per join.
    """

    def __init__(self) -> None:
        # session -> its entry, made once per join or rename and shared by every page.
        self._entries: dict[str, protocol.OnlineEntry] = {}
        self._order: SortedList[tuple[str, str]] = SortedList()  # (nick.casefold(), session)
        self._page: tuple[dict[str, str], ...] | None = None
        self._page_limit = 0

    def __len__(self) -> int:
        return len(self._entries)

    def put(self, session: str, nick: str) -> None:
        """Add a session, or change its nickname."""
        old = self._entries.get(session)
        if old is not None:
            if old["nick"] == nick:
                return
            self._discard((old["nick"].casefold(), session))
        key = (nick.casefold(), session)
        self._order.add(key)
        entry = self._entries[session] = protocol.OnlineEntry(session, nick)
        index = self._order.bisect_left(key)
        if old is None and self._page is not None:
            self._added_at(index, entry)
        else:
            self._changed_at(index)

    def remove(self, session: str) -> None:
        """Remove a session (nothing if it is not there)."""
        entry = self._entries.pop(session, None)
        if entry is not None:
            self._discard((entry["nick"].casefold(), session))

    def page(self, limit: int) -> protocol.OnlinePage:
        """The first `limit` entries (0: all of them) and the count."""
        if self._page is None or limit != self._page_limit:
            entries = self._entries
            self._page = tuple(
                entries[session] for _, session in self._order.islice(0, limit or None)
            )
            self._page_limit = limit
        return protocol.OnlinePage(entries=self._page, count=len(self._entries))

    def entries(self) -> list[dict[str, str]]:
        """Every entry, in order: O(N), for tests and diagnostics."""
        return [dict(self._entries[session]) for _, session in self._order]

    def _discard(self, key: tuple[str, str]) -> None:
        self._changed_at(self._order.bisect_left(key))
        self._order.remove(key)

    def _added_at(self, index: int, entry: protocol.OnlineEntry) -> None:
        # A join inside the cached page is spliced into it (a reconnect storm's joins land
        # in the first page often, and rebuilding it from the sorted keys cost a Python step
        # per entry); it enters the page encoded, so the page encodes as a join of texts.
        assert self._page is not None
        limit = self._page_limit
        if limit and index >= limit:
            return
        protocol.entry_text(entry)
        page = self._page[:index] + (entry,) + self._page[index:]
        self._page = page[:limit] if limit else page

    def _changed_at(self, index: int) -> None:
        # A change past the cached page leaves it as it is; one inside it (or anywhere while
        # the page is not full, or when it holds everyone) shifts its entries.
        if self._page_limit == 0 or index < self._page_limit:
            self._page = None


class PresenceTracker:
    """One worker's view of who is online."""

    def __init__(self, *, redis_url: str, ttl: int) -> None:
        self.worker_id = f"{os.getpid()}-{secrets.token_hex(4)}"
        self.local_group = f"chat.worker.{self.worker_id}"
        self.ttl = max(ttl, 3)
        # 0 (everyone) makes every `hello` copy the whole list: O(N) per join again.
        self.list_limit = settings.CHAT_PRESENCE_LIST
        self.prefix = f"{settings.CHAT_REDIS_PREFIX}:presence"
        # This worker's sessions and open sockets per client address: exact.
        self.local: dict[str, str] = {}
        self.addresses: Counter[str] = Counter()
        self.session_address: dict[str, str] = {}
        # Everyone: this worker's sessions and the others' as of the last refresh.
        self.view = OnlineView()
        self._others: dict[str, str] = {}
        self._other_addresses: Counter[str] = Counter()
        self._other_workers: frozenset[str] = frozenset()
        self._view_at = float("-inf")
        # Changes not yet written to Redis: session -> nickname (None: left); addresses.
        self._pending: dict[str, str | None] = {}
        self._pending_addresses: set[str] = set()
        self._rewrite = False
        self._write_lock = asyncio.Lock()
        self._reachable = True
        # Monotonic time of the last lease write that reached Redis (creation until then):
        # what `heartbeat_age` reads for /healthz/ready.
        self.lease_at = time.monotonic()
        # A worker appeared or vanished since local sockets were last told.
        self._tell_pending = False
        self._last_sent: str | None = None
        # The first page every socket holds (None: not known; the next broadcast sends it),
        # and whether this worker can know it: alone (no Redis), or seeing every worker's
        # full frames (`watch`).
        self._held: tuple[dict[str, str], ...] | None = None
        self.knows_pages = not redis_url
        self._redis = (
            aioredis.Redis.from_url(
                redis_url, socket_timeout=3, socket_connect_timeout=2, decode_responses=True
            )
            if redis_url
            else None
        )
        # A change not yet in a broadcast page (see `schedule_flush`).
        self._changed = False
        self._flush_task: asyncio.Task[None] | None = None
        self._write_task: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._refreshing: asyncio.Future[None] | None = None

    @property
    def _key(self) -> str:
        return f"{self.prefix}:w:{self.worker_id}"

    @property
    def _addr_key(self) -> str:
        return f"{self.prefix}:a:{self.worker_id}"

    @property
    def _workers_key(self) -> str:
        return f"{self.prefix}:workers"

    # --- what the consumer calls ---------------------------------------------------------

    async def address_count(self, address: str) -> int:
        """Open sockets from one client address: this worker's exactly, the other workers'
        as of the last refresh (see the module docstring for how far the cap can be
        exceeded in a burst). No Redis round trip unless the view is older than
        VIEW_MAX_AGE."""
        await self._ensure_fresh()
        return self.addresses.get(address, 0) + self._other_addresses.get(address, 0)

    async def join(
        self, session: str, nick: str, *, address: str | None = None
    ) -> protocol.OnlinePage:
        """Add (or rename) a session; return the first page of the online list with it."""
        await self._ensure_fresh()
        if address is not None and session not in self.local:
            self.addresses[address] += 1
            self.session_address[session] = address
            self._pending_addresses.add(address)
        self.local[session] = nick
        self._pending[session] = nick
        self.view.put(session, nick)
        self._ensure_background()
        self.schedule_flush()
        page = self.page()
        if page.entries is not self._held:
            # This socket's `hello` (or a rename's list) is not the page the others hold.
            self._held = None
        return page

    async def rename(self, session: str, nick: str) -> None:
        """Change a session's nickname."""
        await self.join(session, nick)

    async def leave(self, session: str) -> None:
        """Remove a session."""
        address = self.session_address.pop(session, None)
        if address is not None:
            self.addresses[address] -= 1
            if self.addresses[address] <= 0:
                del self.addresses[address]
            self._pending_addresses.add(address)
        if self.local.pop(session, None) is not None:
            self._pending[session] = None
            self.view.remove(session)
        self.schedule_flush()

    async def aclose(self) -> None:
        """Stop the background tasks, remove this worker's keys and close the connection."""
        for task in (
            self._heartbeat,
            self._refresher,
            self._flush_task,
            self._write_task,
            self._refreshing,
        ):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        redis, self._redis = self._redis, None
        if redis is None:
            return
        try:
            async with redis.pipeline(transaction=True) as pipe:
                pipe.delete(self._key, self._addr_key)
                pipe.zrem(self._workers_key, self.worker_id)
                await pipe.execute()
        except Exception as exc:
            logger.warning(
                "presence: keys of worker %s left to expire within %ss (%s)",
                self.worker_id,
                self.ttl,
                exc,
            )
        await redis.aclose()

    def watch(self, lobby: broadcast.Lobby) -> None:
        """See every full presence frame that reaches this worker's sockets (any worker's),
        so that broadcasts can leave the list out while it is unchanged."""
        lobby.on_presence(self.saw_page)
        self.knows_pages = True

    def saw_page(self, text: str) -> None:
        """A full presence frame reaches this worker's sockets: they hold its list now."""
        try:
            online = json.loads(text)["online"]
        except (ValueError, KeyError, TypeError):
            self._held = None
            return
        page = self.page()
        # The view's own tuple when equal, so later checks are identity checks.
        held = tuple(online)
        self._held = page.entries if held == page.entries else held

    # --- reading the view ----------------------------------------------------------------

    def page(self) -> protocol.OnlinePage:
        """The first CHAT_PRESENCE_LIST entries of the online list, and the count."""
        return self.view.page(self.list_limit)

    def online(self) -> list[dict[str, str]]:
        """Everyone in this worker's view, in order: O(N), for tests and diagnostics."""
        return self.view.entries()

    async def refresh(self) -> None:
        """Read the other live workers' sessions and address counts into the view.

        If Redis fails, the view keeps this worker's sessions only (logged once per outage).
        """
        if self._redis is None:
            return
        sessions: dict[str, str] = {}
        addresses: Counter[str] = Counter()
        workers: list[str] = []
        try:
            live = await self._redis.zrangebyscore(self._workers_key, time.time(), "+inf")
            # decode_responses=True: the members are str.
            workers = [worker for worker in cast("list[str]", live) if worker != self.worker_id]
            if workers:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for worker in workers:
                        pipe.hgetall(f"{self.prefix}:w:{worker}")
                        pipe.hgetall(f"{self.prefix}:a:{worker}")
                    replies = await pipe.execute()
                for entries in replies[0::2]:
                    sessions.update(entries)
                for counts in replies[1::2]:
                    addresses.update({address: int(n) for address, n in counts.items()})
            if not self._reachable:
                logger.info("presence: Redis reachable again")
                self._reachable = True
        except Exception as exc:
            metrics.REDIS_ERRORS.labels(where="presence").inc()
            sessions, addresses, workers = {}, Counter(), []
            if self._reachable:
                logger.warning("presence: Redis unavailable, listing this worker only (%s)", exc)
                self._reachable = False
        self._apply_others(sessions, addresses, frozenset(workers))
        self._view_at = asyncio.get_running_loop().time()

    def _apply_others(
        self, sessions: dict[str, str], addresses: Counter[str], workers: frozenset[str]
    ) -> None:
        """Bring the other workers' part of the view up to date: O(changes log N)."""
        old = self._others
        if sessions != old:
            for session, _ in old.items() - sessions.items():
                if session not in sessions and session not in self.local:
                    self.view.remove(session)
            for session, nick in sessions.items() - old.items():
                if session not in self.local:
                    self.view.put(session, nick)
            self._others = sessions
        self._other_addresses = addresses
        if workers != self._other_workers:
            # A worker died, stopped or came back: no flush of ours will tell our sockets.
            self._tell_pending = True
            self._other_workers = workers

    async def _ensure_fresh(self) -> None:
        """Read the others first when the view is stale; handshakes share one read."""
        if self._redis is None:
            return
        if asyncio.get_running_loop().time() - self._view_at <= VIEW_MAX_AGE:
            return
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.ensure_future(self.refresh())
        # Shielded: a handshake that goes away must not cancel the others' read.
        await asyncio.shield(self._refreshing)

    # --- writing to Redis ----------------------------------------------------------------

    async def sync(self) -> None:
        """Write this worker's pending changes now, then refresh the view of the others."""
        await self._write()
        await self.refresh()

    async def _write(self, *, full: bool = False) -> None:
        """Send the pending changes in one pipeline (`full`: rewrite from memory) and
        extend this worker's lease."""
        if self._redis is None:
            return
        async with self._write_lock:
            full = full or self._rewrite
            changes, self._pending = self._pending, {}
            addresses, self._pending_addresses = self._pending_addresses, set()
            if not (full or changes or addresses):
                return
            try:
                async with self._redis.pipeline(transaction=True) as pipe:
                    if full:
                        pipe.delete(self._key, self._addr_key)
                        # redis-py's `mapping` has an invariant key type: dict[str, ...] is refused.
                        if self.local:
                            pipe.hset(self._key, mapping=self.local)  # type: ignore[arg-type]
                        if self.addresses:
                            pipe.hset(self._addr_key, mapping=dict(self.addresses))  # type: ignore[arg-type]
                    else:
                        self._queue_changes(pipe, changes, addresses)
                    self._queue_lease(pipe)
                    await pipe.execute()
                self.lease_at = time.monotonic()
                if full:
                    self._rewrite = False
            except Exception as exc:
                # The changes are in memory: the next write sends all of it again.
                metrics.REDIS_ERRORS.labels(where="presence").inc()
                self._rewrite = True
                logger.warning("presence: Redis write failed (%s)", exc)

    def _queue_changes(
        self, pipe: Any, changes: dict[str, str | None], addresses: set[str]
    ) -> None:
        gone = [session for session, nick in changes.items() if nick is None]
        kept = {session: nick for session, nick in changes.items() if nick is not None}
        if gone:
            pipe.hdel(self._key, *gone)
        if kept:
            pipe.hset(self._key, mapping=kept)
        closed = [address for address in addresses if address not in self.addresses]
        counts = {address: self.addresses[address] for address in addresses - set(closed)}
        if closed:
            pipe.hdel(self._addr_key, *closed)
        if counts:
            pipe.hset(self._addr_key, mapping=counts)

    def _queue_lease(self, pipe: Any) -> None:
        now = time.time()
        pipe.expire(self._key, self.ttl)
        pipe.expire(self._addr_key, self.ttl)
        pipe.zadd(self._workers_key, {self.worker_id: now + self.ttl})
        pipe.zremrangebyscore(self._workers_key, "-inf", now)
        # The set is shared: NX gives a new key its expiry, GT lets only a longer lease
        # extend it. It outlives the last live worker's lease by nothing.
        pipe.expire(self._workers_key, self.ttl, nx=True)
        pipe.expire(self._workers_key, self.ttl, gt=True)

    # --- background work -----------------------------------------------------------------

    def schedule_flush(self) -> None:
        """Write the changes soon, and broadcast the online list once for a burst.

        A change made while a flush is already past reading the list (writing to Redis or
        publishing) makes that flush go round once more: the running task would otherwise
        end without it, and nothing else would tell the sockets (without Redis, nothing
        ever)."""
        self._changed = True
        if self._redis is not None and (self._write_task is None or self._write_task.done()):
            self._write_task = asyncio.ensure_future(self._write_soon())
        if self._flush_task is None or self._flush_task.done():
            self._flush_task = asyncio.ensure_future(self._flush())

    async def _write_soon(self) -> None:
        # Not lengthened in a crowd: other workers count this worker's sockets from Redis.
        await asyncio.sleep(FLUSH_DELAY)
        await self._write()
        # Changes made during the pipeline are written by the flush that follows them.

    async def _flush(self) -> None:
        while self._changed:
            crowded = len(self.view) >= CROWD
            await asyncio.sleep(CROWD_FLUSH_DELAY if crowded else FLUSH_DELAY)
            # From here on a change is not in this round's page: it asks for another round.
            self._changed = False
            await self.sync()
            await self._broadcast_page()

    async def _broadcast_page(self) -> None:
        # Every socket on every worker gets this frame, so no worker needs to tell its own.
        self._tell_pending = False
        page = self.page()
        held = self._held if self.knows_pages else None
        full = not protocol.first_page_unchanged(page, held=held)
        self._last_sent = protocol.presence_update(page, held=held)
        if full:
            self._held = page.entries
        try:
            await broadcast.publish(self._last_sent, presence=full)
        except Exception as exc:
            # Who got the page is not known now.
            self._held = None
            logger.warning("presence: broadcast failed (%s)", exc)

    async def _tell_local(self) -> None:
        """Send this worker's sockets the list (or the count) if it changed since they last
        had it."""
        self._tell_pending = False
        page = self.page()
        held = self._held if self.knows_pages else None
        frame = protocol.presence_update(page, held=held)
        if frame == self._last_sent or not self.local:
            return
        self._last_sent = frame
        if not protocol.first_page_unchanged(page, held=held):
            # Only this worker's sockets get this page: the others may hold another.
            self._held = None
        try:
            await broadcast.publish(frame, group=self.local_group)
        except Exception as exc:
            logger.warning("presence: local broadcast failed (%s)", exc)

    def _ensure_background(self) -> None:
        if self._redis is None:
            return
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = asyncio.ensure_future(self._beat())
        if self._refresher is None or self._refresher.done():
            self._refresher = asyncio.ensure_future(self._refresh_loop())

    async def _refresh_loop(self) -> None:
        """Keep the other workers' part fresh while this worker has sockets."""
        while True:
            await asyncio.sleep(REFRESH_INTERVAL)
            if not self.local:
                # Idle: the next handshake reads the others itself (VIEW_MAX_AGE).
                return
            await self.refresh()
            if self._tell_pending:
                await self._tell_local()

    async def _beat(self) -> None:
        """Rewrite this worker's hashes (they may be gone after a Redis restart) and extend
        the lease; tell local sockets when the list changed behind their back."""
        while True:
            await asyncio.sleep(self.ttl / 3)
            await self._write(full=True)
            await self._tell_local()


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
        lobby = broadcast.get_lobby()
        if lobby is not None:
            tracker.watch(lobby)
        _trackers[loop] = tracker
    return tracker


def open_sockets() -> int:
    """This worker's greeted sockets (its sessions in the online list), for metrics."""
    return sum(len(tracker.local) for tracker in list(_trackers.values()))


def presence_size() -> int:
    """Everyone in this worker's online list, for metrics."""
    return max((len(tracker.view) for tracker in list(_trackers.values())), default=0)


# Read when Prometheus scrapes: nothing is counted per join or leave.
metrics.OPEN_SOCKETS.set_function(open_sockets)
metrics.PRESENCE_SIZE.set_function(presence_size)


def heartbeat_age() -> float | None:
    """Seconds since this worker's presence lease last reached Redis; None when it has no
    heartbeat to keep (no Redis, or no socket has joined this worker yet)."""
    tracker = _trackers.get(asyncio.get_running_loop())
    if tracker is None or tracker._redis is None or tracker._heartbeat is None:
        return None
    return time.monotonic() - tracker.lease_at


async def close_worker() -> None:
    """On a clean stop: remove this worker's presence keys now (if it has a tracker), so
    the others drop its people at their next refresh instead of after the TTL."""
    tracker = _trackers.pop(asyncio.get_running_loop(), None)
    if tracker is not None:
        await tracker.aclose()
