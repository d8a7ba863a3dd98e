"""A Redis broadcast channel layer: one PUBLISH per group message, one decode per worker.

Why not channels-redis (the product does not offer its layers; the benchmark runs them for
comparison through benchmarks/settings_layers.py):

- `RedisChannelLayer` ("core") pushes one Redis entry per group member and drops messages
  for a member over `capacity`; its group membership lives in Redis, so after a Redis restart
  open sockets stay connected but receive nothing.
- `RedisPubSubChannelLayer` ("pubsub") publishes once per message, but every consumer decodes
  its own copy, its receive loop polls every 0.1 s, and after a Redis restart it did not
  resubscribe here: sockets stayed open and deaf.

This layer keeps group membership in the worker's memory (the only place it is needed: a
group message is published once and every worker delivers it to its own members), holds one
pattern subscription per worker, and on any connection error reconnects with backoff and
subscribes again, so a Redis restart costs only the messages published while it was down.
`on_reconnect` callbacks let the application republish what it could not send meanwhile.

Limits: each channel's queue holds at most `capacity` messages; past that, new messages for
that channel are dropped (and logged). There is no backpressure towards Redis.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import msgpack
from channels.exceptions import ChannelFull
from channels.layers import BaseChannelLayer
from redis import asyncio as aioredis

from chat import metrics
from chat.entropy import POOL
from chat.publisher import Publisher
from chat.queues import LightQueue
from chat.subscription import Subscription

logger = logging.getLogger(__name__)

ReconnectCallback = Callable[[], Awaitable[None]]
SubscribeCallback = Callable[[bool], Awaitable[None]]
# Called in the worker's receive loop for each group message; must not block or await.
DirectHandler = Callable[[dict[str, Any]], None]
GroupFilter = Callable[[dict[str, Any]], bool]

# Longest wait between reconnection attempts: every worker is subscribed again within about
# this long after Redis returns.
MAX_RETRY_DELAY = 2.0
# Seconds of quiet before the subscription sends a PING, and again before it takes the
# connection for dead and subscribes again (chat.subscription).
IDLE_PING = 5.0


class LayerUnavailable(ConnectionError):
    """Redis cannot be reached, so the layer cannot deliver group messages now."""


def _redis_kwargs(host: str | dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if isinstance(host, str):
        return host, {}
    host = dict(host)
    return host.pop("address"), host


class _LoopLayer:
    """The layer's state for one event loop (one per worker process under daphne)."""

    def __init__(self, parent: RedisBroadcastChannelLayer) -> None:
        self.parent = parent
        self.worker = uuid.uuid4().hex[:12]
        self.queues: dict[str, LightQueue] = {}
        self.groups: dict[str, set[str]] = {}
        # Channels whose group messages are handed straight to a handler (see `attach`).
        self.direct: dict[str, DirectHandler] = {}
        # Per group: sees each group message first and may drop it (see `set_group_filter`).
        self.filters: dict[str, GroupFilter] = {}
        self.subscribe_callbacks: list[SubscribeCallback] = []
        self.subscribed_tasks: set[asyncio.Future[None]] = set()
        url, kwargs = _redis_kwargs(parent.host)
        self.redis = aioredis.Redis.from_url(url, **kwargs)
        # Every PUBLISH goes through its own connection (chat.publisher).
        self.publisher = Publisher(self.redis)
        # The subscriber blocks on reads, so it has no socket timeout; its own health checks
        # (PING when idle, chat.subscription) find a dead connection instead.
        sub_kwargs = {**kwargs, "socket_timeout": None}
        self.sub_redis = aioredis.Redis.from_url(url, **sub_kwargs)
        self.connected = asyncio.Event()
        self.callbacks: asyncio.Future[None] | None = None
        self.receiver = asyncio.ensure_future(self._receive_forever())

    @property
    def group_pattern(self) -> str:
        return f"{self.parent.prefix}:g:*"

    def group_key(self, group: str) -> str:
        return f"{self.parent.prefix}:g:{group}"

    def worker_key(self, worker: str) -> str:
        return f"{self.parent.prefix}:w:{worker}"

    async def _receive_forever(self) -> None:
        delay = 0.1
        first = True
        while True:
            subscription = Subscription(self.sub_redis, idle_ping=IDLE_PING)
            try:
                await subscription.open(
                    patterns=[self.group_pattern],
                    channels=[self.worker_key(self.worker)],
                    on_message=self._deliver,
                )
                self.connected.set()
                for callback in list(self.subscribe_callbacks):
                    self._run_subscribed(callback, first)
                if not first:
                    logger.warning(
                        "layer: reconnected to Redis; subscriptions restored",
                        extra={"worker": self.worker},
                    )
                    metrics.LAYER_RECONNECTS.inc()
                    # In a task: the callbacks may wait, and delivery must not.
                    self.callbacks = asyncio.ensure_future(self.parent.run_reconnect_callbacks())
                first = False
                delay = 0.1
                await subscription.run(self._deliver)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.connected.clear()
                metrics.REDIS_ERRORS.labels(where="subscription").inc()
                logger.warning(
                    "layer: Redis subscription lost (%s); retrying in %.1fs",
                    exc,
                    delay,
                    extra={"worker": self.worker, "retry_in": round(delay, 1)},
                )
                await asyncio.sleep(delay * random.uniform(0.5, 1.0))
                delay = min(delay * 2, MAX_RETRY_DELAY)
            finally:
                with contextlib.suppress(Exception):
                    await subscription.close()

    def _run_subscribed(self, callback: SubscribeCallback, first: bool) -> None:
        # In a task: the callbacks may wait (e.g. on the database), and delivery must not.
        task = asyncio.ensure_future(callback(first))
        self.subscribed_tasks.add(task)
        task.add_done_callback(self.subscribed_tasks.discard)

    def _deliver(self, channel_bytes: bytes, data: bytes) -> None:
        """One message of the subscription: a group's to its local members, a channel's to
        its queue."""
        channel = channel_bytes.decode()
        prefix = self.parent.prefix
        if channel.startswith(f"{prefix}:g:"):
            group = channel[len(prefix) + 3 :]
            members = self.groups.get(group)
            gate = self.filters.get(group)
            if not members and gate is None:
                return
            message = msgpack.unpackb(data)
            if gate is not None and not gate(message):
                return
            if members:
                self.fan_out(members, message)
        else:
            name, message = msgpack.unpackb(data)
            self._put(name, message)

    def fan_out(self, members: set[str], message: dict[str, Any]) -> None:
        """Hand one group message to every local member, in one loop, without awaiting."""
        started = time.perf_counter()
        direct = self.direct
        # A copy: handlers may end a consumer, which leaves the group.
        recipients = list(members)
        for name in recipients:
            handler = direct.get(name)
            if handler is None:
                self._put(name, message)
                continue
            try:
                handler(message)
            except Exception:
                logger.exception("layer: direct delivery to %s failed", name)
        # Once per message, never per member.
        metrics.fanned_out(message, sockets=len(recipients), seconds=time.perf_counter() - started)

    def _put(self, channel: str, message: dict[str, Any]) -> None:
        queue = self.queues.get(channel)
        if queue is None:
            return
        try:
            queue.put_nowait(message)
        except asyncio.QueueFull:
            logger.warning(
                "layer: channel %s over capacity; message dropped",
                channel,
                extra={"worker": self.worker, "channel": channel},
            )

    def new_queue(self, channel: str) -> LightQueue:
        queue = self.queues.get(channel)
        if queue is None:
            queue = self.queues[channel] = LightQueue(self.parent.capacity)
        return queue

    def forget(self, channel: str) -> None:
        self.queues.pop(channel, None)
        self.direct.pop(channel, None)
        for group in [g for g, members in self.groups.items() if channel in members]:
            self.group_discard(group, channel)

    def group_discard(self, group: str, channel: str) -> None:
        members = self.groups.get(group)
        if members is not None:
            members.discard(channel)
            if not members:
                del self.groups[group]

    async def close(self) -> None:
        if self.callbacks is not None:
            self.callbacks.cancel()
        for task in list(self.subscribed_tasks):
            task.cancel()
        self.receiver.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self.receiver
        await self.publisher.close()
        await self.redis.aclose()
        await self.sub_redis.aclose()


class RedisBroadcastChannelLayer(BaseChannelLayer):
    """Channel layer with worker-local groups over Redis pub/sub."""

    # "chat.direct": `attach`/`detach`, `release`, `set_group_filter`, `on_subscribe` and
    # `deliver_local` below (the chat's broadcast hot path uses them when the layer declares
    # them).
    # "chat.status": `status()`, this worker's own subscription state (chat.health reads it).
    extensions = ["groups", "flush", "chat.direct", "chat.status"]

    def __init__(
        self,
        hosts: list[str | dict[str, Any]] | None = None,
        prefix: str = "asgi",
        capacity: int = 1000,
        expiry: int = 60,
        connect_timeout: float = 2.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(expiry=expiry, capacity=capacity)
        hosts = hosts or ["redis://127.0.0.1:6379/0"]
        if len(hosts) != 1:
            raise ValueError("RedisBroadcastChannelLayer takes exactly one Redis host")
        self.host = hosts[0]
        self.prefix = prefix
        self.connect_timeout = connect_timeout
        self._loops: dict[asyncio.AbstractEventLoop, _LoopLayer] = {}
        self._reconnect_callbacks: list[ReconnectCallback] = []

    def _layer(self) -> _LoopLayer:
        loop = asyncio.get_running_loop()
        layer = self._loops.get(loop)
        if layer is None:
            for old in [key for key in self._loops if key.is_closed()]:
                del self._loops[old]
            layer = self._loops[loop] = _LoopLayer(self)
        return layer

    def active_in_loop(self) -> bool:
        """Whether the running event loop already holds this layer's state (its connections
        and subscription): a worker's loop does, a loop made for one sync call does not."""
        return asyncio.get_running_loop() in self._loops

    def on_reconnect(self, callback: ReconnectCallback) -> None:
        """Call `callback` each time the subscription is restored after a Redis failure."""
        if callback not in self._reconnect_callbacks:
            self._reconnect_callbacks.append(callback)

    async def run_reconnect_callbacks(self) -> None:
        """Run the reconnect callbacks (errors are logged, not raised)."""
        for callback in list(self._reconnect_callbacks):
            try:
                await callback()
            except Exception:
                logger.exception("layer: reconnect callback failed")

    def attach(self, channel: str, handler: DirectHandler) -> None:
        """Deliver this channel's group messages by calling `handler` in the worker's
        receive loop, instead of through the channel's queue and the consumer's dispatch.

        This is the broadcast hot path: one loop per worker over its local members, no queue,
        no task wake-up, no dispatch and no await per recipient. Messages already queued are
        handed over first, so the order is kept. The handler must not block.
        """
        layer = self._layer()
        queue = layer.queues.get(channel)
        while queue is not None and not queue.empty():
            handler(queue.get_nowait())
        layer.direct[channel] = handler

    def set_group_filter(self, group: str, gate: GroupFilter | None) -> None:
        """Let `gate` see each message for `group` on this worker before its members do; a
        False answer drops the message here. It runs even when the group has no local member.
        """
        layer = self._layer()
        if gate is None:
            layer.filters.pop(group, None)
        else:
            layer.filters[group] = gate

    def on_subscribe(self, callback: SubscribeCallback) -> None:
        """Call `callback(first)` in a task each time this worker's subscription becomes
        active: `first` is True the first time, False after a Redis failure."""
        layer = self._layer()
        if callback not in layer.subscribe_callbacks:
            layer.subscribe_callbacks.append(callback)
            if layer.connected.is_set():
                layer._run_subscribed(callback, True)

    def deliver_local(self, group: str, message: dict[str, Any]) -> None:
        """Hand a message to this worker's members of `group` only (no filter, no Redis)."""
        layer = self._layer()
        members = layer.groups.get(group)
        if members:
            layer.fan_out(members, message)

    def subscribed(self) -> bool:
        """Whether this worker's subscription is active now."""
        return self._layer().connected.is_set()

    def status(self) -> dict[str, Any]:
        """This worker's own subscription, from memory (no Redis round trip): `subscribed`
        (the pattern subscription is live now) and `worker` (this loop's worker id).

        The first call in a loop starts the subscription, so it may say False for a moment.
        """
        layer = self._layer()
        return {"subscribed": layer.connected.is_set(), "worker": layer.worker}

    def release(self, channel: str) -> None:
        """Forget a channel whose consumer has ended (its queue and groups), for a consumer
        that never waits in `receive` (Channels' loop does, and its cancellation forgets)."""
        self._layer().forget(channel)

    def detach(self, channel: str) -> None:
        """Stop direct delivery for a channel."""
        self._layer().direct.pop(channel, None)

    async def new_channel(self, prefix: str = "specific.") -> str:
        """A new channel name owned by this worker."""
        layer = self._layer()
        # 128 random bits, as uuid4's hex, without building a UUID object per socket (nor a
        # system call: chat.entropy).
        name = f"{prefix}{layer.worker}!{POOL.token_hex(16)}"
        layer.new_queue(name)
        return name

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        """Send to one channel, local or on another worker."""
        assert self.require_valid_channel_name(channel)
        layer = self._layer()
        worker = channel.split("!", 1)[0].rsplit(".", 1)[-1] if "!" in channel else None
        if worker == layer.worker:
            queue = layer.queues.get(channel)
            if queue is not None:
                try:
                    queue.put_nowait(message)
                except asyncio.QueueFull:
                    raise ChannelFull(channel) from None
            return
        if worker is None:
            raise ValueError(f"{channel!r} is not a channel of this layer")
        await layer.publisher.publish(layer.worker_key(worker), msgpack.packb([channel, message]))

    async def receive(self, channel: str) -> dict[str, Any]:
        """The next message for a channel of this worker."""
        layer = self._layer()
        queue = layer.new_queue(channel)
        try:
            return await queue.get()
        except asyncio.CancelledError:
            # Channels cancels receive() when the consumer ends: forget the channel.
            layer.forget(channel)
            raise

    async def group_add(self, group: str, channel: str) -> None:
        """Add a local channel to a group (no Redis round trip)."""
        layer = self._layer()
        # Checked once: a group with members here and a channel made here have passed.
        assert group in layer.groups or self.require_valid_group_name(group)
        assert channel in layer.queues or self.require_valid_channel_name(channel)
        if not layer.connected.is_set():
            # Until the subscription is active, group messages would be lost silently:
            # wait for it briefly, then fail fast so the client retries.
            try:
                await asyncio.wait_for(layer.connected.wait(), self.connect_timeout)
            except TimeoutError:
                raise LayerUnavailable("the channel layer is not connected to Redis") from None
        layer.new_queue(channel)
        layer.groups.setdefault(group, set()).add(channel)

    async def group_discard(self, group: str, channel: str) -> None:
        """Remove a channel from a group."""
        self._layer().group_discard(group, channel)

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        """Publish once; every worker delivers to its own members.

        Raises redis' ConnectionError when Redis is unreachable, so the caller can tell the
        sender that the message was not broadcast.
        """
        layer = self._layer()
        assert group in layer.groups or self.require_valid_group_name(group)
        await layer.publisher.publish(layer.group_key(group), msgpack.packb(message))

    async def flush(self) -> None:
        """Forget every channel and group of this loop and close its connections."""
        loop = asyncio.get_running_loop()
        layer = self._loops.pop(loop, None)
        if layer is not None:
            await layer.close()

    async def wait_connected(self, timeout: float = 5) -> bool:
        """Wait until this worker's subscription is active (for tests and health checks)."""
        layer = self._layer()
        try:
            await asyncio.wait_for(layer.connected.wait(), timeout)
        except TimeoutError:
            return False
        return True
