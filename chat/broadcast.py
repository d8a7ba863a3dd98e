"""The broadcast hot path: one layer publish per message, one frame for every socket.

The JSON text is encoded once by the sender's worker. Each receiving worker builds the
WebSocket frame bytes once (`wire_frame`) and, under daphne, writes those bytes to every
local socket (chat.daphne_server); elsewhere each consumer forwards the text.

On the broadcast layer, each worker also keeps a `Lobby`: its window of recent messages
(chat.recent), filled from the database whenever its subscription starts and extended by the
stream, which answers joins and recent resumes without the database, drops duplicates, and
after a resubscription pushes to local sockets what they missed meanwhile.

A stored message whose publish failed (Redis unreachable) is kept in this worker's memory
and published again when the layer reconnects, so that the others still get it once.

Moderation uses the same group. Events on the `lobby` group:

- `{"type": "chat.frame", "text": str, "id": int | None, "exclude": str | None}`: one
  pre-encoded frame for every socket (`id` set for a stored message).
- the same with `"retract": N` (and `id` None): `text` is the frame `{"type": "retract",
  "id": N}`; message N was deleted. Every worker's `Lobby` drops N from its window (and
  remembers it, so a late publish of N is not delivered); sockets forward the text.
- `{"type": "chat.pruned", "through": N}`: a retention prune (chat.retention) deleted every
  message up to id N. Every worker's `Lobby` drops them from its window and no socket sees
  it; on other layers each consumer gets it and ignores it (`chat_pruned`).
- the same with `"presence": 1`: `text` is a full `presence` frame (with `online`). Each
  worker's `Lobby` hands it to its presence tracker (`Lobby.on_presence`), which then knows
  the list every socket holds (chat.presence sends count-only frames while it is current).
- `{"type": "chat.sanctions"}`: mutes or bans changed in the database; every worker reloads
  its `chat.sanctions.SanctionBook`. On the broadcast layer the `Lobby` takes it (one reload
  per worker, through `Lobby.on_sanctions`) and no socket sees it; on other layers each
  consumer gets it and needs a `chat_sanctions` handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeGuard

from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import BaseChannelLayer, get_channel_layer
from django.conf import settings

from chat import metrics, protocol
from chat.recent import RecentWindow

if TYPE_CHECKING:
    from chat.layers import RedisBroadcastChannelLayer

logger = logging.getLogger(__name__)

GROUP = "lobby"
EVENT_TYPE = "chat.frame"
# Control event: the sanctions in the database changed (see the module docstring).
SANCTIONS_EVENT_TYPE = "chat.sanctions"
# Control event: messages up to an id were pruned (see the module docstring).
PRUNED_EVENT_TYPE = "chat.pruned"
MAX_DEFERRED = 1000
# Deleted ids each worker remembers, so that a message published after its retraction (a
# late or deferred publish, a window fill that raced the delete) is not shown again.
MAX_RETRACTED = 1000

# Extension a layer declares when it offers the direct delivery hooks (chat.layers).
DIRECT = "chat.direct"
# Longest wait between two tries to fill the window while the database fails.
FILL_RETRY_MAX = 5.0

# message id -> encoded frame, per event loop: messages stored but not yet published.
_deferred: dict[asyncio.AbstractEventLoop, OrderedDict[int, str]] = {}
# Per event loop: ids whose retraction could not be published yet.
_deferred_retracts: dict[asyncio.AbstractEventLoop, OrderedDict[int, None]] = {}
_lobbies: dict[asyncio.AbstractEventLoop, Lobby] = {}


def text_frame(payload: bytes) -> bytes:
    """An unmasked, unfragmented WebSocket text frame (RFC 6455 5.2), as a server sends it."""
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x81, length)
    elif length < 65536:
        header = struct.pack("!BBH", 0x81, 126, length)
    else:
        header = struct.pack("!BBQ", 0x81, 127, length)
    return header + payload


def wire_frame(event: dict[str, Any]) -> bytes:
    """The frame bytes of a broadcast event, built by the first socket that needs them and
    reused by every other socket of this worker (the layer hands them one shared dict)."""
    frame = event.get("wire")
    if frame is None:
        frame = event["wire"] = text_frame(event["text"].encode())
    return frame


def frame_event(
    text: str,
    *,
    message_id: int | None = None,
    exclude: str | None = None,
    retract: int | None = None,
    presence: bool = False,
) -> dict[str, Any]:
    """The layer event that carries one pre-encoded frame; `retract` marks a retract frame,
    `presence` a full presence frame (the fields are left out otherwise: every message event
    stays as small as before)."""
    event = {"type": EVENT_TYPE, "text": text, "id": message_id, "exclude": exclude}
    if retract is not None:
        event["retract"] = retract
    if presence:
        event["presence"] = 1
    return event


def retract_event(message_id: int) -> dict[str, Any]:
    """The layer event that retracts message `message_id` everywhere."""
    return frame_event(protocol.retract_frame(message_id), retract=message_id)


def sanctions_event() -> dict[str, Any]:
    """The control event that tells every worker to reload its sanctions."""
    return {"type": SANCTIONS_EVENT_TYPE}


async def publish(
    text: str,
    *,
    message_id: int | None = None,
    exclude: str | None = None,
    group: str = GROUP,
    presence: bool = False,
) -> None:
    """Send one encoded frame to every socket of `group` on every worker (`presence`: it is
    a full presence frame)."""
    layer = _channel_layer()
    await layer.group_send(
        group, frame_event(text, message_id=message_id, exclude=exclude, presence=presence)
    )


async def publish_retract(message_ids: Sequence[int]) -> None:
    """Retract deleted messages on every worker: one `retract` frame per id, to every socket.

    This worker's window forgets them at once. A retraction that cannot be published (Redis
    unreachable) is kept and published when the layer reconnects.
    """
    layer = _channel_layer()
    loop = asyncio.get_running_loop()
    lobby = _lobbies.get(loop)
    for message_id in message_ids:
        if lobby is not None:
            lobby.forget(message_id)
        try:
            await layer.group_send(GROUP, retract_event(message_id))
        except Exception as exc:
            logger.warning(
                "broadcast: retract %s not published (%s); deferred",
                message_id,
                exc,
                extra={"id": message_id},
            )
            pending = _deferred_retracts.setdefault(loop, OrderedDict())
            pending[message_id] = None
            while len(pending) > MAX_DEFERRED:
                dropped, _ = pending.popitem(last=False)
                logger.warning(
                    "broadcast: deferred retract %s dropped (backlog full)",
                    dropped,
                    extra={"id": dropped},
                )
            _watch_reconnect()


def pruned_event(through: int) -> dict[str, Any]:
    """The control event that tells every worker messages up to `through` were pruned."""
    return {"type": PRUNED_EVENT_TYPE, "through": through}


async def publish_pruned(through: int) -> None:
    """Tell every worker that messages up to id `through` were pruned (chat.retention)."""
    layer = get_channel_layer()
    if layer is not None:
        await layer.group_send(GROUP, pruned_event(through))


async def publish_sanctions_changed() -> None:
    """Tell every worker that sanctions changed in the database (it reloads its book)."""
    await _channel_layer().group_send(GROUP, sanctions_event())


def run_from_sync(publisher: Callable[..., Awaitable[None]], *args: Any) -> None:
    """Run one of the publishers above from sync code (a view, the admin, a service).

    Under daphne a sync view runs in a thread of the worker, and this runs `publisher` on the
    worker's own event loop. Elsewhere (a management command) it gets a loop of its own, and
    the broadcast layer's connections made for it are closed before the loop ends.
    """

    async def run() -> None:
        layer = _channel_layer()
        borrowed = has_direct_delivery(layer) and not layer.active_in_loop()
        try:
            await publisher(*args)
        finally:
            if borrowed:
                await layer.flush()

    async_to_sync(run)()


def defer(text: str, *, message_id: int) -> None:
    """Remember a stored message whose publish failed, to publish it on reconnect."""
    loop = asyncio.get_running_loop()
    pending = _deferred.setdefault(loop, OrderedDict())
    pending[message_id] = text
    while len(pending) > MAX_DEFERRED:
        dropped, _ = pending.popitem(last=False)
        logger.warning(
            "broadcast: deferred message %s dropped (backlog full)", dropped, extra={"id": dropped}
        )
    _watch_reconnect()


async def publish_deferred() -> None:
    """Publish what failed earlier, oldest first; stop at the first failure.

    Waits first until the other workers have had time to subscribe again: a message
    published before a worker is subscribed would never reach its sockets.
    """
    from chat.layers import MAX_RETRY_DELAY

    await asyncio.sleep(MAX_RETRY_DELAY + 1)
    pending = _deferred.get(asyncio.get_running_loop())
    while pending:
        message_id, text = next(iter(pending.items()))
        await publish(text, message_id=message_id)
        del pending[message_id]
        metrics.MESSAGES_PUBLISHED_LATE.inc()
    if pending is not None and not pending:
        logger.info("broadcast: deferred messages published")
    retracts = _deferred_retracts.get(asyncio.get_running_loop())
    while retracts:
        message_id = next(iter(retracts))
        await _channel_layer().group_send(GROUP, retract_event(message_id))
        del retracts[message_id]


def _channel_layer() -> BaseChannelLayer:
    """The default channel layer (the settings always configure one)."""
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer: CHANNEL_LAYERS is not set")
    return layer


def _watch_reconnect() -> None:
    layer = _channel_layer()
    if hasattr(layer, "on_reconnect"):
        layer.on_reconnect(publish_deferred)


def has_direct_delivery(layer: Any) -> TypeGuard[RedisBroadcastChannelLayer]:
    """Whether a channel layer declares the direct delivery hooks (chat.layers)."""
    return DIRECT in getattr(layer, "extensions", ())


def _window_rows(capacity: int) -> tuple[list[tuple[int, str]], int]:
    """The newest `capacity` stored messages as (id, frame text), and the window's floor."""
    from chat import selectors
    from chat.serializers import message_to_frame

    rows, _ = selectors.message_list_latest(limit=capacity)
    # Every stored message after the id just below the oldest row read is in the window,
    # whether or not the capacity cut older ones. A resume from further back reads the
    # database, which tells whether a prune cut it (chat.retention.resume_cut).
    floor = rows[0].id - 1 if rows else 0
    return [(m.id, protocol.encode(message_to_frame(m))) for m in rows], floor


class Lobby:
    """One worker's view of the lobby on the broadcast layer: its recent-message window."""

    def __init__(self, layer: Any) -> None:
        self.layer = layer
        capacity = max(settings.CHAT_HISTORY, settings.CHAT_RESUME_CAP or settings.CHAT_HISTORY)
        self.window = RecentWindow(capacity=capacity)
        self.filling: asyncio.Lock = asyncio.Lock()
        # The newest MAX_RETRACTED deleted ids (an ordered set).
        self.retracted: OrderedDict[int, None] = OrderedDict()
        # The highest id a retention prune deleted (0: none seen).
        self.pruned_through = 0
        self.sanctions_listeners: list[Callable[[dict[str, Any]], None]] = []
        self.presence_listeners: list[Callable[[str], None]] = []
        # Set once the window was first filled from the database (`wait_filled`).
        self.filled = asyncio.Event()
        layer.set_group_filter(GROUP, self.admit)
        layer.on_subscribe(self.subscribed)

    def admit(self, event: dict[str, Any]) -> bool:
        """Keep each message in the window; drop a retracted one from it; False for a message
        this worker already has or knows deleted, and for a sanctions or prune event (taken
        here)."""
        retract = event.get("retract")
        if retract is not None:
            self.forget(retract)
            return True
        message_id = event.get("id")
        if message_id is None:
            if event.get("type") == SANCTIONS_EVENT_TYPE:
                self._sanctions_changed(event)
                return False
            if event.get("type") == PRUNED_EVENT_TYPE:
                self.pruned_through = max(self.pruned_through, event["through"])
                self.window.prune(self.pruned_through)
                return False
            if event.get("presence"):
                self._presence_seen(event["text"])
            return True
        if message_id in self.retracted:
            return False
        return self.window.add(message_id, event["text"])

    def forget(self, message_id: int) -> None:
        """Remove a deleted message from the window, and remember that it is deleted."""
        self.window.remove(message_id)
        self.retracted[message_id] = None
        self.retracted.move_to_end(message_id)
        while len(self.retracted) > MAX_RETRACTED:
            self.retracted.popitem(last=False)

    def on_sanctions(self, callback: Callable[[dict[str, Any]], None]) -> None:
        """Call `callback(event)` in the receive loop when sanctions change; it must not block
        (start a task to reload)."""
        if callback not in self.sanctions_listeners:
            self.sanctions_listeners.append(callback)

    def on_presence(self, callback: Callable[[str], None]) -> None:
        """Call `callback(text)` in the receive loop with every full presence frame that
        reaches this worker's sockets, before they get it; it must not block."""
        if callback not in self.presence_listeners:
            self.presence_listeners.append(callback)

    def _presence_seen(self, text: str) -> None:
        for callback in list(self.presence_listeners):
            try:
                callback(text)
            except Exception:
                logger.exception("broadcast: presence listener failed")

    def _sanctions_changed(self, event: dict[str, Any]) -> None:
        for callback in list(self.sanctions_listeners):
            try:
                callback(event)
            except Exception:
                logger.exception("broadcast: sanctions listener failed")

    async def wait_filled(self, timeout: float) -> bool:
        """Wait (at most `timeout` seconds) until the window was first filled; whether it is."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.filled.wait(), timeout)
        return self.filled.is_set()

    async def subscribed(self, first: bool) -> None:
        """Fill the window from the database; after a resubscription, push what was missed."""
        delay = 0.2
        async with self.filling:
            while True:
                try:
                    rows, floor = await database_sync_to_async(_window_rows)(self.window.capacity)
                    break
                except Exception as exc:
                    metrics.DATABASE_ERRORS.labels(where="window").inc()
                    logger.warning("broadcast: recent messages unavailable (%r); retrying", exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, FILL_RETRY_MAX)
            # A delete that committed while the rows were read may have been retracted
            # already: keep it out.
            rows = [row for row in rows if row[0] not in self.retracted]
            missed = self.window.fill(rows, floor=floor)
            # Likewise a prune that committed while they were read.
            if self.pruned_through:
                self.window.prune(self.pruned_through)
                missed = [row for row in missed if row[0] > self.pruned_through]
        self.filled.set()
        if missed:
            logger.info(
                "broadcast: %d messages missed while unsubscribed; pushing",
                len(missed),
                extra={"count": len(missed)},
            )
        for message_id, text in missed:
            self.layer.deliver_local(GROUP, frame_event(text, message_id=message_id))


def get_lobby() -> Lobby | None:
    """This worker's lobby, or None when the layer has no direct delivery (then the
    database answers every join)."""
    loop = asyncio.get_running_loop()
    lobby = _lobbies.get(loop)
    if lobby is None:
        layer = get_channel_layer()
        if not has_direct_delivery(layer):
            return None
        for old in [key for key in _lobbies if key.is_closed()]:
            del _lobbies[old]
        lobby = _lobbies[loop] = Lobby(layer)
    return lobby
