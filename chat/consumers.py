"""The chat WebSocket: parse, validate, call a service, broadcast. Nothing else."""

from __future__ import annotations

import asyncio
import logging
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from chat import backpressure, broadcast, protocol, selectors, services
from chat.limits import RateLimiter, Throttle
from chat.naming import guest_nick, new_session_id
from chat.presence import get_tracker
from chat.serializers import message_to_frame

logger = logging.getLogger(__name__)

UNCAPPED = 10**9


def _history(*, after: int | None) -> tuple[list[dict[str, Any]], bool]:
    """Recent history for `hello`: the last CHAT_HISTORY, or everything after `after` (capped)."""
    if after is None:
        rows, _ = selectors.message_list_latest(limit=settings.CHAT_HISTORY)
        return [message_to_frame(m) for m in rows], False
    # CHAT_RESUME_CAP 0 switches the cap off.
    cap = settings.CHAT_RESUME_CAP or UNCAPPED
    rows, truncated = selectors.message_list_latest(limit=cap, after=after)
    return [message_to_frame(m) for m in rows], truncated


def _store(
    *, nick: str, body: str, client_id: str | None, session: str
) -> tuple[dict[str, Any], bool]:
    message, created = services.message_create(
        nick=nick, body=body, client_id=client_id, session=session
    )
    return message_to_frame(message), created


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
    # Until `connect()` has greeted the client, broadcast frames are not forwarded.
    joined = False
    seen_in_history: frozenset[int] | set[int] = frozenset()
    server_send: Any = None

    async def dispatch(self, message: dict[str, Any]) -> None:
        """Route events; broadcast frames skip Channels' per-event database cleanup hop."""
        if message["type"] == broadcast.EVENT_TYPE:
            await self.chat_frame(message)
        else:
            await super().dispatch(message)

    async def websocket_connect(self, message: dict[str, Any]) -> None:
        """Join the groups, then `connect()`; refuse the handshake fast if the layer is down."""
        try:
            await super().websocket_connect(message)
        except ConnectionError as exc:
            logger.warning("handshake refused: channel layer unavailable (%s)", exc)
            await self.close()

    async def connect(self) -> None:
        """Accept, then greet with session, history, who is online and the limits."""
        self.session = new_session_id()
        nick_param, after = parse_query(self.scope.get("query_string", b""))
        nick_error: protocol.ProtocolError | None = None
        self.nick = guest_nick()
        if nick_param is not None:
            try:
                self.nick = protocol.validate_nick(nick_param)
            except protocol.ProtocolError as exc:
                nick_error = exc
        self.rate = RateLimiter(rate=settings.CHAT_RATE, period=settings.CHAT_RATE_PERIOD)
        self.typing = Throttle(interval=settings.CHAT_TYPING_INTERVAL)
        self.tracker = get_tracker()
        address = self._client_addr()
        cap = settings.CHAT_MAX_SOCKETS_PER_IP
        if cap and await self.tracker.address_count(address) >= cap:
            logger.warning("handshake refused: %s has %d sockets open (cap)", address, cap)
            await self.close()
            return
        await self.channel_layer.group_add(self.tracker.local_group, self.channel_name)
        await self.accept()
        try:
            history, truncated = await database_sync_to_async(_history)(after=after)
        except Exception as exc:
            logger.error("history unavailable; closing so the client retries (%r)", exc)
            await self.close(code=protocol.CLOSE_TRY_AGAIN_LATER)
            return
        # Live messages that raced with the history query arrive after `hello`; skip them.
        self.seen_in_history = {m["id"] for m in history}
        online = await self.tracker.join(self.session, self.nick, address=address)
        self.joined = True
        hello = {
            "type": "hello",
            "session": self.session,
            "nick": self.nick,
            "history": history,
            "truncated": truncated,
            **protocol.online_fields(online, limit=settings.CHAT_PRESENCE_LIST),
            "limits": {
                "max_body": settings.CHAT_MAX_BODY,
                "max_frame": settings.CHAT_MAX_FRAME,
                "rate": settings.CHAT_RATE,
                "rate_period": settings.CHAT_RATE_PERIOD,
                "typing_interval": settings.CHAT_TYPING_INTERVAL,
                "history": settings.CHAT_HISTORY,
                "resume_cap": settings.CHAT_RESUME_CAP,
            },
        }
        await self.send(text_data=protocol.encode(hello))
        # Broadcast frames skip the middleware wrappers from here on (chat.middleware).
        self.server_send = self.scope.get("chat.server_send")
        attach = getattr(self.channel_layer, "attach", None)
        if attach is not None and backpressure.sends_never_block():
            # From now on the layer hands broadcast frames straight to `chat_frame`, in one
            # loop per worker. Only where a send cannot wait on a slow client (daphne with
            # chat.backpressure): elsewhere each socket keeps its own queue and task.
            await attach(self.channel_name, self.chat_frame)
        if settings.CHAT_GROUP_REFRESH:
            self.refresher = asyncio.ensure_future(self._refresh_groups())
        if nick_error is not None:
            await self._refuse(nick_error)
        logger.info("connect session=%s client=%s", self.session, self._client_addr())

    async def disconnect(self, code: int) -> None:
        """Leave the online list."""
        logger.info("disconnect session=%s code=%s", getattr(self, "session", "-"), code)
        detach = getattr(self.channel_layer, "detach", None)
        if detach is not None:
            detach(self.channel_name)
        refresher = getattr(self, "refresher", None)
        if refresher is not None:
            refresher.cancel()
        if getattr(self, "joined", False):
            await self.tracker.leave(self.session)
        if hasattr(self, "tracker"):
            await self.channel_layer.group_discard(self.tracker.local_group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Handle one client frame; every bad frame gets an `error` frame."""
        if text_data is None:
            await self._refuse(
                protocol.ProtocolError(
                    protocol.BINARY_UNSUPPORTED, "Binary frames are not supported; send JSON text."
                )
            )
            return
        if settings.CHAT_MAX_FRAME and len(text_data) > settings.CHAT_MAX_FRAME:
            logger.warning("frame over the cap session=%s size=%d", self.session, len(text_data))
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
            self.nick = frame.nick
            await self.tracker.rename(self.session, self.nick)
        elif isinstance(frame, protocol.Typing) and self.typing.allow():
            try:
                await broadcast.publish(
                    protocol.typing_frame(session=self.session, nick=self.nick),
                    exclude=self.session,
                )
            except Exception as exc:
                logger.warning("layer error on typing session=%s (%s)", self.session, exc)

    async def _send_message(self, frame: protocol.SendMessage) -> None:
        retry_after = self.rate.check()
        if retry_after is not None:
            logger.warning("rate limited session=%s", self.session)
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
        try:
            stored, created = await database_sync_to_async(_store)(
                nick=self.nick, body=frame.body, client_id=frame.client_id, session=self.session
            )
        except Exception as exc:
            # An operational failure (locked or unreachable database): no traceback.
            logger.error("storing a message failed session=%s (%r)", self.session, exc)
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
                logger.warning("layer error on publish session=%s (%s)", self.session, exc)
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

    async def _refresh_groups(self) -> None:
        """Re-join the groups before the layer's group expiry forgets this socket."""
        while True:
            await asyncio.sleep(settings.CHAT_GROUP_REFRESH)
            try:
                for group in self.groups:
                    await self.channel_layer.group_add(group, self.channel_name)
            except Exception as exc:
                logger.warning("group refresh failed session=%s (%s)", self.session, exc)

    async def _refuse(self, exc: protocol.ProtocolError) -> None:
        logger.warning("refused frame session=%s code=%s", self.session, exc.code)
        await self.send(
            text_data=protocol.error_frame(exc.code, exc.detail, client_id=exc.client_id)
        )

    async def chat_frame(self, event: dict[str, Any]) -> None:
        """Forward a pre-encoded broadcast frame (hot path: no parsing, no database)."""
        if not self.joined or event.get("exclude") == self.session:
            return
        message_id = event.get("id")
        if message_id is not None and message_id in self.seen_in_history:
            return
        try:
            await self._send_frame(event["text"])
        except Exception as exc:
            # The connection went away (e.g. dropped as a slow reader) with frames still
            # queued; `disconnect()` follows.
            logger.info("frame not sent session=%s (%s)", self.session, exc)

    async def _send_frame(self, text: str) -> None:
        """Send one broadcast frame, straight to the server when it can."""
        if self.server_send is not None:
            await self.server_send({"type": "websocket.send", "text": text})
        else:
            await self.send(text_data=text)

    def _client_addr(self) -> str:
        client = self.scope.get("client")
        return client[0] if client else "-"
