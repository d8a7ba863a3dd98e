"""The chat WebSocket: parse, validate, call a service, broadcast. Nothing else."""

from __future__ import annotations

import asyncio
import bisect
import functools
import logging
from operator import itemgetter
from typing import Any
from urllib.parse import parse_qs

from asgiref.typing import WebSocketConnectEvent, WebSocketDisconnectEvent
from channels.consumer import get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.signals import setting_changed
from django.db import DatabaseError
from django.dispatch import receiver

from chat import (
    address_limits,
    broadcast,
    metrics,
    moderation,
    protocol,
    retention,
    selectors,
    writer,
)
from chat.daphne_server import EXTENSION as FRAMES_EXTENSION
from chat.guard import Guard, get_guard
from chat.limits import RateLimiter, Throttle
from chat.middleware import DATABASE_DOWN, REFUSAL
from chat.naming import guest_nick, new_session_id
from chat.presence import get_tracker
from chat.serializers import message_to_frame

logger = logging.getLogger(__name__)

UNCAPPED = 10**9
# How long a worker's first handshake waits for the sanctions to load from the database
# (after that the worker knows them; if the database does not answer, it goes on without).
GUARD_WAIT = 2.0
# The reason a handshake is refused when Redis does not answer (chat.middleware says it).
LAYER_DOWN = "the chat server cannot reach Redis (its channel layer); try again shortly"


History = tuple[list[tuple[int, str]], bool]


def _history_from_db(*, after: int | None) -> History:
    """Recent history for `hello` as (id, frame text): the last CHAT_HISTORY, or everything
    after `after` (capped), and whether the cap cut it."""
    if after is None:
        rows, _ = selectors.message_list_latest(limit=settings.CHAT_HISTORY)
        truncated = False
    else:
        rows, truncated = selectors.message_list_latest(limit=_resume_cap(), after=after)
        truncated = truncated or retention.resume_cut(
            after=after, oldest=selectors.message_oldest_id()
        )
    return [(m.id, protocol.encode(message_to_frame(m))) for m in rows], truncated


def _history_from_window(lobby: broadcast.Lobby | None, *, after: int | None) -> History | None:
    """The same from this worker's memory, or None when it does not cover the request."""
    if lobby is None or not lobby.window.ready:
        return None
    if after is None:
        return lobby.window.latest(settings.CHAT_HISTORY), False
    return lobby.window.after(after, limit=_resume_cap())


def _newest_from_window(lobby: broadcast.Lobby | None) -> int | None:
    """The newest message id this worker's memory knows of, or None when it has none."""
    return None if lobby is None else lobby.window.newest()


def _resume_cap() -> int:
    # CHAT_RESUME_CAP 0 switches the cap off.
    return settings.CHAT_RESUME_CAP or UNCAPPED


def parse_query(query_string: bytes) -> tuple[str | None, int | None]:
    """The `nick` and `after` query parameters (each None when absent or unusable)."""
    params = parse_qs(query_string.decode("latin-1"))
    nick = params.get("nick", [None])[0]
    after_raw = params.get("after", [None])[0]
    after = (
        int(after_raw)
        if after_raw is not None and after_raw.isascii() and after_raw.isdigit()
        else None
    )
    return nick, after


class ChatConsumer(AsyncWebsocketConsumer):
    """One browser tab in the lobby."""

    groups = [broadcast.GROUP]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.session = "-"
        self.nick = ""
        # Until `connect()` has greeted the client, broadcast frames are not forwarded.
        self.joined = False
        # The ids sent in `hello`, sorted (a tuple: a set would cost kilobytes per socket);
        # a live copy of one of them is skipped.
        self.seen_in_history: tuple[int, ...] = ()
        self.history_max = 0
        self.tracker: Any = None
        # A signed-in account (None for a guest), whether it may moderate, and the client.
        self.user: Any = None
        self.user_id: int | None = None
        self.moderator = False
        self.address = "-"
        self.guard: Guard | None = None
        # Under daphne (chat.daphne_server): writes pre-built frame bytes, never blocks.
        self.write_frame: Any = None
        self.server_send: Any = None
        self.direct = False

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Channels' consumer loop; under a server and layer that deliver broadcast frames
        straight to `deliver` (see `connect()`), a lighter one.

        Channels waits on two tasks, the client's `receive()` and the channel layer's, with
        `asyncio.wait`, and makes a new task for every event: per client frame, a task and a
        wait's callbacks (a tenth of a handshake's CPU, and more of a message's). With direct
        delivery nothing needs the channel's own queue after `connect()` (it holds only the
        group messages that came before `attach`, which hands them over first, in order), so
        this loop awaits `receive()` alone, one event after another, as Channels dispatches
        them. Other servers and layers keep Channels' loop."""
        layer = get_channel_layer(self.channel_layer_alias)
        if _frames_of(scope) is None or not broadcast.has_direct_delivery(layer):
            await super().__call__(scope, receive, send)
            return
        self.scope = scope
        self.channel_layer = layer
        self.channel_name = await layer.new_channel()
        self.base_send = send
        try:
            while True:
                await self.dispatch(await receive())
        except StopConsumer:
            pass
        finally:
            # What the cancelled `receive` of Channels' loop does: the channel is gone.
            layer.release(self.channel_name)

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Route events without Channels' per-event thread hop (`aclose_old_connections`):
        every database call here goes through `database_sync_to_async`, which cleans up old
        connections itself."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def websocket_connect(self, message: WebSocketConnectEvent) -> None:
        """Join the groups, then `connect()`; refuse the handshake fast if the layer is down."""
        try:
            await super().websocket_connect(message)
        except ConnectionError as exc:
            # chat.middleware.RefusedHandshakeLogger logs the refusal with its reason.
            logger.debug("channel layer unavailable at handshake (%s)", exc)
            metrics.HANDSHAKES_REFUSED.labels(reason=metrics.REFUSED_LAYER).inc()
            await self.close(reason=LAYER_DOWN)

    async def websocket_disconnect(self, message: WebSocketDisconnectEvent) -> None:
        """Leave the groups, run `disconnect()`, stop; without Channels' thread hop to clean
        up database connections (none is used outside `database_sync_to_async`)."""
        for group in self.groups:
            await self.channel_layer.group_discard(group, self.channel_name)
        await self.disconnect(message["code"])
        raise StopConsumer()

    async def connect(self) -> None:
        """Accept, then greet with session, history, who is online and the limits."""
        refusal = str(self.scope.get(REFUSAL) or "")
        if refusal:
            metrics.HANDSHAKES_REFUSED.labels(reason=metrics.REFUSED_DATABASE).inc()
            await self.close(reason=refusal)
            return
        self.session = new_session_id()
        nick_param, after = parse_query(self.scope.get("query_string", b""))
        nick_error: protocol.ProtocolError | None = None
        self.address = address = self._client_addr()
        user = self.scope.get("user")
        if user is not None and user.is_authenticated:
            self.user, self.user_id = user, user.pk
        self.guard = get_guard(on_first=wire_guard)
        if not await self.guard.ready(timeout=GUARD_WAIT):
            logger.warning("sanctions not loaded yet; accepting without them")
        if self.user is not None:
            try:
                self.moderator = await database_sync_to_async(selectors.can_moderate)(self.user)
            except DatabaseError:
                metrics.DATABASE_ERRORS.labels(where="handshake").inc()
                metrics.HANDSHAKES_REFUSED.labels(reason=metrics.REFUSED_DATABASE).inc()
                await self.close(reason=DATABASE_DOWN)
                return
        if self._banned(session=None):
            metrics.HANDSHAKES_REFUSED.labels(reason=metrics.REFUSED_BANNED).inc()
            await self.close(reason="banned from this chat")
            return
        if self.user is not None:
            # Signed in: the account's name, marked on every message (`account`).
            self.nick = self.user.get_username()[: protocol.MAX_NICK]
        else:
            if nick_param is not None:
                try:
                    self.nick = self._guest_nick(nick_param)
                except protocol.ProtocolError as exc:
                    nick_error = exc
            if not self.nick:
                self.nick = guest_nick()
        self.rate = RateLimiter(rate=settings.CHAT_RATE, period=settings.CHAT_RATE_PERIOD)
        self.typing = Throttle(interval=settings.CHAT_TYPING_INTERVAL)
        self.tracker = get_tracker()
        cap = settings.CHAT_MAX_SOCKETS_PER_IP
        if cap and await self.tracker.address_count(address) >= cap:
            metrics.HANDSHAKES_REFUSED.labels(reason=metrics.REFUSED_PER_ADDRESS).inc()
            await self.close(
                reason=f"too many open sockets from this address (the limit is {cap}); "
                "close one and try again"
            )
            return
        await self.channel_layer.group_add(self.tracker.local_group, self.channel_name)
        await self.accept()
        # The group is joined: whatever is published from now on is queued for this socket.
        # Messages that are also in the history are skipped when they arrive.
        history = _history_from_window(broadcast.get_lobby(), after=after)
        if history is None:
            try:
                history = await database_sync_to_async(_history_from_db)(after=after)
            except Exception as exc:
                logger.error(
                    "history unavailable; closing so the client retries (%r)",
                    exc,
                    extra=self._log_fields(),
                )
                metrics.DATABASE_ERRORS.labels(where="history").inc()
                metrics.HANDSHAKES_REFUSED.labels(reason=metrics.REFUSED_DATABASE).inc()
                await self.close(code=protocol.CLOSE_TRY_AGAIN_LATER)
                return
        rows, truncated = history
        self.seen_in_history = tuple(map(itemgetter(0), rows))
        self.history_max = rows[-1][0] if rows else 0
        # Where the page's sequence starts when it got no history (CHAT_HISTORY=0, or an empty
        # chat whose ids do not start at 1): the ids up to here are not "missing".
        last_id = self.history_max
        if not rows:
            newest = _newest_from_window(broadcast.get_lobby())
            if newest is None:
                try:
                    newest = await database_sync_to_async(selectors.message_newest_id)()
                except Exception as exc:
                    logger.warning("newest id unavailable (%r)", exc, extra=self._log_fields())
                    newest = 0
            last_id = newest
        online = await self.tracker.join(self.session, self.nick, address=address)
        self.joined = True
        hello = protocol.hello_frame(
            history=list(map(itemgetter(1), rows)),
            session=self.session,
            nick=self.nick,
            truncated=truncated,
            last_id=last_id,
            user=(
                {"name": self.nick, "moderator": self.moderator} if self.user is not None else None
            ),
            **protocol.online_fields(online, limit=settings.CHAT_PRESENCE_LIST),
            limits=_limits(),
        )
        frames = _frames_of(self.scope)
        # Under daphne the frame is written at once, past the middleware wrappers and
        # autobahn's framing (the socket is open: `accept()` wrote the handshake's answer).
        if frames is None or not frames["write_frame"](broadcast.text_frame(hello.encode())):
            await self.send(text_data=hello)
        # Broadcast frames skip the middleware wrappers from here on (chat.middleware).
        self.server_send = self.scope.get("chat.server_send")
        if frames is not None and broadcast.has_direct_delivery(self.channel_layer):
            # The server writes pre-built frames and bounds slow readers, so a send never
            # waits: the layer may hand broadcast frames straight to `deliver`, in one loop
            # per worker. Elsewhere each socket keeps its own queue and task.
            self.write_frame = frames["write_frame"]
            self.channel_layer.attach(self.channel_name, self.deliver)
            self.direct = True
        self.guard.watchers.add(self)
        metrics.HANDSHAKES_ACCEPTED.inc()
        if nick_error is not None:
            await self._refuse(nick_error)
        logger.info(
            "connect session=%s client=%s", self.session, self.address, extra=self._log_fields()
        )

    async def disconnect(self, code: int) -> None:
        """Leave the online list."""
        logger.info(
            "disconnect session=%s code=%s", self.session, code, extra=self._log_fields(code=code)
        )
        if self.direct:
            assert broadcast.has_direct_delivery(self.channel_layer)  # as `connect()` found
            self.channel_layer.detach(self.channel_name)
        if self.guard is not None:
            self.guard.watchers.discard(self)
        if self.joined:
            await self.tracker.leave(self.session)
        if self.tracker is not None:
            await self.channel_layer.group_discard(self.tracker.local_group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Handle one client frame; every bad frame gets an `error` frame."""
        metrics.FRAMES_RECEIVED.inc()
        if text_data is None:
            await self._refuse(
                protocol.ProtocolError(
                    protocol.BINARY_UNSUPPORTED, "Binary frames are not supported; send JSON text."
                )
            )
            return
        if settings.CHAT_MAX_FRAME and (size := protocol.frame_size(text_data)) > (
            settings.CHAT_MAX_FRAME
        ):
            logger.warning(
                "frame over the cap session=%s size=%d",
                self.session,
                size,
                extra=self._log_fields(size=size),
            )
            metrics.FRAMES_REFUSED.labels(code=metrics.FRAME_TOO_BIG).inc()
            await self.close(code=protocol.CLOSE_TOO_BIG)
            return
        try:
            frame = protocol.parse_client_frame(text_data, max_body=settings.CHAT_MAX_BODY)
        except protocol.ProtocolError as exc:
            await self._refuse(exc)
            return
        if isinstance(frame, protocol.SendMessage):
            await self._send_message(frame)
        elif isinstance(frame, protocol.Rename):
            await self._rename(frame)
        elif isinstance(frame, protocol.Delete | protocol.Sanction):
            await self._moderate(frame)
        elif isinstance(frame, protocol.Typing) and self.typing.allow():
            try:
                await broadcast.publish(
                    protocol.typing_frame(session=self.session, nick=self.nick),
                    exclude=self.session,
                )
            except Exception as exc:
                logger.warning(
                    "layer error on typing session=%s (%s)",
                    self.session,
                    exc,
                    extra=self._log_fields(),
                )
                metrics.REDIS_ERRORS.labels(where="publish").inc()

    async def _rename(self, frame: protocol.Rename) -> None:
        if self.user is not None:
            await self._refuse(
                protocol.ProtocolError(
                    protocol.INVALID_NICK, "Signed-in accounts chat under their account's name."
                )
            )
            return
        try:
            self.nick = self._guest_nick(frame.nick)
        except protocol.ProtocolError as exc:
            await self._refuse(exc)
            return
        await self.tracker.rename(self.session, self.nick)

    def _guest_nick(self, nick: object) -> str:
        """A valid nickname that is not an account's name, or ProtocolError(invalid_nick)."""
        nick = protocol.validate_nick(nick)
        assert self.guard is not None
        if self.guard.is_account_name(protocol.nick_key(nick)):
            raise protocol.ProtocolError(
                protocol.INVALID_NICK,
                "That name belongs to a signed-in account; choose another nickname.",
            )
        return nick

    async def _moderate(self, frame: protocol.Delete | protocol.Sanction) -> None:
        """A moderator's delete, mute or ban; anyone else gets `forbidden`."""
        if not self.moderator:
            await self._refuse(
                protocol.ProtocolError(protocol.FORBIDDEN, "Only moderators can do that.")
            )
            return
        try:
            if isinstance(frame, protocol.Delete):
                deleted = await database_sync_to_async(moderation.message_delete)(
                    ids=[frame.id], by=self.user, via="page"
                )
                logger.info(
                    "moderator %s deleted messages %s",
                    self.nick,
                    deleted,
                    extra=self._log_fields(moderator=self.nick, ids=deleted),
                )
            else:
                made = await database_sync_to_async(moderation.sanction_sender)(
                    kind=frame.kind,
                    session=frame.session,
                    seconds=frame.seconds,
                    by=self.user,
                    own_session=self.session,
                )
                # This worker enforces it at once; the others on the layer event.
                assert self.guard is not None
                await self.guard.reload()
                logger.info(
                    "moderator %s: %s of session %s for %ss (%d sanctions)",
                    self.nick,
                    frame.kind,
                    frame.session,
                    frame.seconds,
                    len(made),
                    extra=self._log_fields(
                        moderator=self.nick,
                        kind=frame.kind,
                        target_session=frame.session,
                        seconds=frame.seconds,
                    ),
                )
        except moderation.SanctionRefused as exc:
            await self._refuse(protocol.ProtocolError(protocol.FORBIDDEN, str(exc)))
        except Exception as exc:
            logger.error(
                "moderation failed session=%s (%r)", self.session, exc, extra=self._log_fields()
            )
            metrics.DATABASE_ERRORS.labels(where="moderation").inc()
            await self._refuse(
                protocol.ProtocolError(
                    protocol.UNAVAILABLE, "That could not be done now; try again later."
                )
            )

    def _banned(self, *, session: str | None) -> bool:
        """Whether this client is banned now; never a moderator (an address ban may cover
        their network too)."""
        assert self.guard is not None
        if self.moderator:
            return False
        found = self.guard.banned(user_id=self.user_id, session=session, address=self.address)
        return found is not None

    def check_sanctions(self) -> None:
        """Called by the worker's guard after sanctions changed: end this socket if banned."""
        assert self.guard is not None
        if not self.joined:
            return
        if self._banned(session=self.session):
            logger.warning(
                "closing banned socket session=%s", self.session, extra=self._log_fields()
            )
            asyncio.ensure_future(self.close(code=protocol.CLOSE_POLICY_VIOLATION))

    async def chat_pruned(self, event: dict[str, Any]) -> None:
        """Messages were pruned (layers without the worker's `Lobby`): nothing to do here;
        pages keep what they show, and resumes read the database."""

    async def chat_sanctions(self, event: dict[str, Any]) -> None:
        """Sanctions changed (layers without the worker's `Lobby`): reload, once per burst."""
        if self.guard is not None:
            self.guard.request_reload()

    async def _send_message(self, frame: protocol.SendMessage) -> None:
        assert self.guard is not None
        # Moderators are never muted (an address sanction may cover their network too).
        muted = (
            None
            if self.moderator
            else self.guard.muted(user_id=self.user_id, session=self.session, address=self.address)
        )
        if muted is not None:
            metrics.FRAMES_REFUSED.labels(code=protocol.MUTED).inc()
            await self.send(
                text_data=protocol.error_frame(
                    protocol.MUTED,
                    f"A moderator muted you; you can write again in {_duration(muted)}.",
                    client_id=frame.client_id,
                    retry_after=round(muted, 3),
                )
            )
            return
        retry_after = self.rate.check()
        if retry_after is not None:
            logger.warning("rate limited session=%s", self.session, extra=self._log_fields())
            metrics.FRAMES_REFUSED.labels(code=protocol.RATE_LIMITED).inc()
            if self.rate.abusive:
                await self.close(code=protocol.CLOSE_POLICY_VIOLATION)
                return
            await self.send(
                text_data=protocol.error_frame(
                    protocol.RATE_LIMITED,
                    f"Too many messages; try again in {retry_after:.1f} seconds.",
                    client_id=frame.client_id,
                    retry_after=round(retry_after, 3),
                )
            )
            return
        # Every socket and worker of this client address together (one Redis round trip).
        retry_after = await address_limits.messages_limit().check(self.address)
        if retry_after is not None:
            logger.warning("rate limited per address session=%s", self.session)
            # Not sent, so it does not count against this socket's own rate either.
            self.rate.refund()
            await self.send(
                text_data=protocol.error_frame(
                    protocol.RATE_LIMITED,
                    "Too many messages from your address (all its tabs and devices "
                    f"together); try again in {retry_after:.1f} seconds.",
                    client_id=frame.client_id,
                    retry_after=round(retry_after, 3),
                )
            )
            return
        try:
            # Group commit: stored with whatever else this worker's sockets sent meanwhile.
            stored, created = await writer.store(
                nick=self.nick,
                body=frame.body,
                client_id=frame.client_id,
                session=self.session,
                user_id=self.user_id,
                address=self.address,
            )
        except Exception as exc:
            # An operational failure (locked or unreachable database): no traceback.
            logger.error(
                "storing a message failed session=%s (%r)",
                self.session,
                exc,
                extra=self._log_fields(),
            )
            metrics.FRAMES_REFUSED.labels(code=protocol.UNAVAILABLE).inc()
            await self.send(
                text_data=protocol.error_frame(
                    protocol.UNAVAILABLE,
                    "The message could not be stored; it was not sent. Try again later.",
                    client_id=frame.client_id,
                )
            )
            return
        text = protocol.encode(stored)
        if created:
            try:
                await broadcast.publish(text, message_id=stored["id"])
            except Exception as exc:
                # Stored but not broadcast: publish it when the layer is back; the sender
                # keeps it pending and its resend is acknowledged once.
                logger.warning(
                    "layer error on publish session=%s (%s)",
                    self.session,
                    exc,
                    extra=self._log_fields(id=stored["id"]),
                )
                metrics.REDIS_ERRORS.labels(where="publish").inc()
                metrics.FRAMES_REFUSED.labels(code=protocol.UNAVAILABLE).inc()
                broadcast.defer(text, message_id=stored["id"])
                await self.send(
                    text_data=protocol.error_frame(
                        protocol.UNAVAILABLE,
                        "The chat server is reconnecting; the message will be delivered "
                        "when it is back. Try again shortly.",
                        client_id=frame.client_id,
                    )
                )
        else:
            # A resend of a stored message: acknowledge to the sender only.
            await self.send(text_data=text)

    async def _refuse(self, exc: protocol.ProtocolError) -> None:
        logger.warning(
            "refused frame session=%s code=%s",
            self.session,
            exc.code,
            extra=self._log_fields(code=exc.code),
        )
        metrics.FRAMES_REFUSED.labels(code=exc.code).inc()
        await self.send(
            text_data=protocol.error_frame(exc.code, exc.detail, client_id=exc.client_id)
        )

    def deliver(self, event: dict[str, Any]) -> None:
        """Write a broadcast frame's bytes, built once per worker (the hot path under daphne:
        called by the layer's receive loop for every local socket; no await, no JSON)."""
        if event.get("exclude") == self.session:
            return
        message_id = event.get("id")
        if (
            message_id is not None
            and message_id <= self.history_max
            and self._in_history(message_id)
        ):
            return
        frame = event.get("wire")
        if frame is None:
            frame = broadcast.wire_frame(event)
        self.write_frame(frame)

    async def chat_frame(self, event: dict[str, Any]) -> None:
        """Forward a pre-encoded broadcast frame (other servers: no parsing, no database)."""
        if not self.joined or event.get("exclude") == self.session:
            return
        message_id = event.get("id")
        if message_id is not None and self._in_history(message_id):
            return
        try:
            await self._send_frame(event["text"])
        except Exception as exc:
            # The connection went away (e.g. dropped as a slow reader) with frames still
            # queued; `disconnect()` follows.
            logger.info(
                "frame not sent session=%s (%s)", self.session, exc, extra=self._log_fields()
            )

    async def _send_frame(self, text: str) -> None:
        """Send one broadcast frame, straight to the server when it can."""
        if self.server_send is not None:
            await self.server_send({"type": "websocket.send", "text": text})
        else:
            await self.send(text_data=text)

    def _in_history(self, message_id: int) -> bool:
        # Live messages are almost always newer than the history: one comparison.
        if message_id > self.history_max:
            return False
        seen = self.seen_in_history
        index = bisect.bisect_left(seen, message_id)
        return index < len(seen) and seen[index] == message_id

    def _log_fields(self, **more: Any) -> dict[str, Any]:
        """`extra` for a log call: this socket's session and client (keys in JSON logs; the
        text of the message says the same). Never a message body."""
        return {"session": self.session, "client": self.address, **more}

    def _client_addr(self) -> str:
        client = self.scope.get("client")
        return client[0] if client else "-"


def _frames_of(scope: Any) -> dict[str, Any] | None:
    """The server's frame writer (chat.daphne_server), or None under other servers."""
    frames: dict[str, Any] | None = (scope.get("extensions") or {}).get(FRAMES_EXTENSION)
    return frames


@functools.cache
def _limits() -> dict[str, int]:
    """The limits a page is told in `hello` (read once; again when a test changes settings).
    Nothing changes the dict: `hello_frame` only encodes it."""
    return {
        "max_body": settings.CHAT_MAX_BODY,
        "max_frame": settings.CHAT_MAX_FRAME,
        "rate": settings.CHAT_RATE,
        "rate_period": settings.CHAT_RATE_PERIOD,
        "rate_per_address": settings.CHAT_RATE_PER_ADDRESS,
        "api_rate": settings.CHAT_API_RATE,
        "api_period": settings.CHAT_API_PERIOD,
        "typing_interval": settings.CHAT_TYPING_INTERVAL,
        "history": settings.CHAT_HISTORY,
        "resume_cap": settings.CHAT_RESUME_CAP,
    }


@receiver(setting_changed)
def _settings_changed(**kwargs: Any) -> None:
    _limits.cache_clear()


def wire_guard(guard: Guard) -> None:
    """Keep a new worker guard current: on the broadcast layer the worker's `Lobby` hands it
    each sanctions event once, and a resubscription reloads it (an event may have been lost).
    Elsewhere each consumer's `chat_sanctions` passes the event on."""
    lobby = broadcast.get_lobby()
    if lobby is not None:
        lobby.on_sanctions(guard.request_reload)
        lobby.layer.on_subscribe(guard.subscribed)


def _duration(seconds: float) -> str:
    """A wait, for a person: seconds under two minutes, else minutes, else hours."""
    if seconds < 120:
        return f"{max(1, round(seconds))} seconds"
    if seconds < 7200:
        return f"{round(seconds / 60)} minutes"
    return f"{round(seconds / 3600)} hours"
