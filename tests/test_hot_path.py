"""The broadcast hot path does a fixed amount of work per message, whatever the audience.

Counts, not timings: one broadcast to N sockets costs one JSON encode, one group_send (one
Redis PUBLISH), one msgpack decode per worker, the sender's thread hops only, and the same
encoded text object goes to every socket. benchmarks/ measures the time; this guards the
shape that makes it fast (docs/performance.md).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import msgpack
import pytest
from asgiref.sync import SyncToAsync
from channels.layers import InMemoryChannelLayer, channel_layers
from channels.testing import WebsocketCommunicator

from chat import broadcast
from chat.consumers import ChatConsumer
from chat.layers import RedisBroadcastChannelLayer
from chat.publisher import Publisher
from chatproject.asgi import application
from tests.support.client import ORIGIN
from tests.support.environment import REDIS_PREFIX, use_the_broadcast_layer

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_layer")]

MESSAGE_PREFIX = '{"type":"message"'


def _is_message_text(text: Any) -> bool:
    return isinstance(text, str) and text.startswith(MESSAGE_PREFIX)


class Counts:
    """What one broadcast cost, recorded by the patches of `counting`."""

    def __init__(self) -> None:
        self.message_encodes = 0
        self.group_sends: list[str] = []
        self.hops: list[str] = []
        self.db_cleanups = 0
        self.sent_texts: list[str] = []
        self.publishes: list[bytes] = []
        self.decodes: list[Any] = []

    @property
    def message_group_sends(self) -> int:
        return sum(1 for text in self.group_sends if _is_message_text(text))

    @property
    def message_publishes(self) -> int:
        return sum(1 for data in self.publishes if MESSAGE_PREFIX.encode() in data)

    @property
    def message_decodes(self) -> int:
        return sum(
            1 for msg in self.decodes if isinstance(msg, dict) and _is_message_text(msg.get("text"))
        )


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counts]:
    """Patch the hot path's costly steps to count them (behaviour unchanged)."""
    counts = Counts()

    original_encode = json.JSONEncoder.encode

    def encode(self: json.JSONEncoder, o: Any) -> str:
        if isinstance(o, dict) and o.get("type") == "message":
            counts.message_encodes += 1
        return original_encode(self, o)

    monkeypatch.setattr(json.JSONEncoder, "encode", encode)

    original_call = SyncToAsync.__call__

    async def call(self: SyncToAsync, *args: Any, **kwargs: Any) -> Any:
        counts.hops.append(getattr(self.func, "__name__", repr(self.func)))
        return await original_call(self, *args, **kwargs)

    monkeypatch.setattr(SyncToAsync, "__call__", call)

    import channels.consumer

    original_cleanup = channels.consumer.aclose_old_connections

    async def cleanup() -> None:
        counts.db_cleanups += 1
        await original_cleanup()

    monkeypatch.setattr(channels.consumer, "aclose_old_connections", cleanup)

    for layer_class in (InMemoryChannelLayer, RedisBroadcastChannelLayer):
        original_group_send = layer_class.group_send

        def make(original: Any) -> Any:
            async def group_send(self: Any, group: str, message: dict[str, Any]) -> None:
                counts.group_sends.append(message.get("text", ""))
                await original(self, group, message)

            return group_send

        monkeypatch.setattr(layer_class, "group_send", make(original_group_send))

    original_send = ChatConsumer.send

    async def send(self: ChatConsumer, text_data: str | None = None, **kwargs: Any) -> None:
        if _is_message_text(text_data):
            counts.sent_texts.append(text_data)
        await original_send(self, text_data=text_data, **kwargs)

    monkeypatch.setattr(ChatConsumer, "send", send)

    original_send_frame = ChatConsumer._send_frame

    async def send_frame(self: ChatConsumer, text: str) -> None:
        if _is_message_text(text):
            counts.sent_texts.append(text)
        await original_send_frame(self, text)

    monkeypatch.setattr(ChatConsumer, "_send_frame", send_frame)

    original_publish = Publisher.publish

    def publish(self: Publisher, channel: str, data: bytes) -> Any:
        counts.publishes.append(data)
        return original_publish(self, channel, data)

    monkeypatch.setattr(Publisher, "publish", publish)

    original_unpackb = msgpack.unpackb

    def unpackb(data: bytes, **kwargs: Any) -> Any:
        result = original_unpackb(data, **kwargs)
        counts.decodes.append(result[1] if isinstance(result, list) else result)
        return result

    monkeypatch.setattr(msgpack, "unpackb", unpackb)

    yield counts


def reset(counts: Counts) -> None:
    counts.__init__()  # type: ignore[misc]


async def open_sockets(n: int) -> list[WebsocketCommunicator]:
    """N greeted sockets, with the presence broadcasts of their joins drained."""
    sockets = []
    for i in range(n):
        comm = WebsocketCommunicator(application, f"/ws/chat/?nick=n{i}", headers=[ORIGIN])
        connected, _ = await comm.connect()
        assert connected
        assert json.loads(await comm.receive_from())["type"] == "hello"
        sockets.append(comm)
    await drain(sockets)
    return sockets


async def drain(sockets: list[WebsocketCommunicator]) -> None:
    """Read whatever is queued (presence frames) until every socket is quiet."""
    await asyncio.sleep(0.3)
    for comm in sockets:
        while not await comm.receive_nothing(timeout=0.05):
            await comm.receive_from()


async def broadcast_once(sockets: list[WebsocketCommunicator], body: str) -> list[dict]:
    """The first socket sends one message; return the frame each socket received."""
    frame = f'{{"type":"message","body":"{body}","client_id":"{body}-id"}}'
    await sockets[0].send_to(text_data=frame)
    received = []
    for comm in sockets:
        while True:
            got = json.loads(await comm.receive_from(timeout=3))
            if got["type"] == "message":
                received.append(got)
                break
    return received


async def close_all(sockets: list[WebsocketCommunicator]) -> None:
    for comm in sockets:
        await comm.disconnect()


@pytest.mark.parametrize("n", [2, 6])
async def test_one_broadcast_encodes_the_message_once(counting: Counts, n: int) -> None:
    sockets = await open_sockets(n)
    try:
        reset(counting)
        received = await broadcast_once(sockets, "hello")
        assert [m["body"] for m in received] == ["hello"] * n
        assert counting.message_encodes == 1
    finally:
        await close_all(sockets)


@pytest.mark.parametrize("n", [2, 6])
async def test_one_broadcast_is_one_group_send(counting: Counts, n: int) -> None:
    sockets = await open_sockets(n)
    try:
        reset(counting)
        await broadcast_once(sockets, "hello")
        assert counting.message_group_sends == 1
    finally:
        await close_all(sockets)


@pytest.mark.parametrize("n", [2, 6])
async def test_recipients_cost_no_thread_hop(counting: Counts, n: int) -> None:
    """Only the sender's receive path leaves the event loop: its database cleanup and store."""
    sockets = await open_sockets(n)
    try:
        reset(counting)
        await broadcast_once(sockets, "hello")
        assert counting.db_cleanups <= 1
        assert counting.hops.count("_store_batch") == 1
        assert len(counting.hops) <= 2, counting.hops
    finally:
        await close_all(sockets)


async def test_every_socket_gets_the_same_encoded_text(counting: Counts) -> None:
    sockets = await open_sockets(4)
    try:
        reset(counting)
        await broadcast_once(sockets, "hello")
        assert len(counting.sent_texts) == 4
        assert len({id(text) for text in counting.sent_texts}) == 1
    finally:
        await close_all(sockets)


# --- the Redis broadcast layer: two workers in one event loop --------------------------------


@pytest.fixture
async def two_layers(redis_url: str) -> Any:
    """Two layer instances (two "workers") on one Redis, isolated by this run's prefix."""
    layers = [
        RedisBroadcastChannelLayer(hosts=[redis_url], prefix=f"{REDIS_PREFIX}:layer")
        for _ in range(2)
    ]
    yield layers
    for layer in layers:
        await layer.flush()


async def join(layer: RedisBroadcastChannelLayer, n: int) -> list[str]:
    channels = [await layer.new_channel() for _ in range(n)]
    for name in channels:
        await layer.group_add(broadcast.GROUP, name)
    assert await layer.wait_connected(5)
    return channels


@pytest.mark.redis
async def test_group_send_is_one_publish_and_one_decode_per_worker(
    counting: Counts, two_layers: list[RedisBroadcastChannelLayer]
) -> None:
    one, two = two_layers
    members_one = await join(one, 3)
    members_two = await join(two, 4)
    reset(counting)
    text = '{"type":"message","id":1,"body":"hi"}'
    await one.group_send(broadcast.GROUP, broadcast.frame_event(text, message_id=1))
    got_one = [await asyncio.wait_for(one.receive(ch), 3) for ch in members_one]
    got_two = [await asyncio.wait_for(two.receive(ch), 3) for ch in members_two]
    assert [m["text"] for m in got_one + got_two] == [text] * 7
    assert counting.message_publishes == 1
    assert counting.message_decodes == 2
    # Within a worker every member gets the same decoded event, not a copy each.
    assert len({id(m) for m in got_one}) == 1
    assert len({id(m) for m in got_two}) == 1


@pytest.mark.redis
async def test_the_layer_reads_redis_replies_with_the_c_parser(
    two_layers: list[RedisBroadcastChannelLayer],
) -> None:
    # Every message a worker receives goes through the subscription's reply parser: redis-py
    # uses hiredis's when it is installed (a third less CPU per message than its own).
    from redis._parsers import _AsyncHiredisParser

    layer = two_layers[0]._layer()
    for client in (layer.redis, layer.sub_redis):
        connection = client.connection_pool.make_connection()
        assert isinstance(connection._parser, _AsyncHiredisParser)


@pytest.mark.redis
async def test_consumers_on_the_redis_layer_publish_once_per_message(
    counting: Counts, redis_url: str, settings: Any
) -> None:
    use_the_broadcast_layer(settings, redis_url)
    sockets = await open_sockets(5)
    try:
        reset(counting)
        received = await broadcast_once(sockets, "hello")
        assert len(received) == 5
        assert counting.message_publishes == 1
        assert counting.message_decodes == 1
        assert counting.message_encodes == 1
        assert counting.hops.count("_store_batch") == 1
    finally:
        await close_all(sockets)
        await channel_layers["default"].flush()


class FramesInScope:
    """Offers `write_frame` in the scope, as chat.daphne_server's ChatServer does, and keeps
    what each socket was written."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.written: list[list[bytes]] = []

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        frames: list[bytes] = []
        self.written.append(frames)

        def write_frame(frame: bytes) -> bool:
            frames.append(frame)
            return True

        extensions = {**scope.get("extensions", {}), "chat.frames": {"write_frame": write_frame}}
        return await self.app({**scope, "extensions": extensions}, receive, send)


def _payload(frame: bytes) -> dict[str, Any]:
    assert frame[0] == 0x81  # FIN, text
    length, start = frame[1], 2
    if length == 126:
        length, start = int.from_bytes(frame[2:4]), 4
    return json.loads(frame[start : start + length])


@pytest.mark.redis
async def test_redis_layer_writes_one_built_frame_to_every_socket_without_dispatch(
    redis_url: str, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the server offers `write_frame`, the broadcast layer's per-worker loop writes the
    same frame bytes (built once) to every socket: no per-recipient queue, task wake-up,
    `dispatch` or encoding."""
    use_the_broadcast_layer(settings, redis_url)
    dispatched: list[str] = []
    original_dispatch = ChatConsumer.dispatch

    async def dispatch(self: ChatConsumer, message: dict[str, Any]) -> None:
        dispatched.append(message["type"])
        await original_dispatch(self, message)

    monkeypatch.setattr(ChatConsumer, "dispatch", dispatch)
    app = FramesInScope(application)
    sockets = []
    try:
        for i in range(4):
            comm = WebsocketCommunicator(app, f"/ws/chat/?nick=n{i}", headers=[ORIGIN])
            assert (await comm.connect())[0]
            sockets.append(comm)
        await asyncio.sleep(0.3)
        # The greeting too is written as a built frame, first on each socket.
        assert [_payload(w[0])["type"] for w in app.written] == ["hello"] * 4
        for frames in app.written:
            frames.clear()
        dispatched.clear()
        await sockets[0].send_to(text_data='{"type":"message","body":"once","client_id":"c1"}')
        for _ in range(100):
            if all(any(_payload(f)["type"] == "message" for f in w) for w in app.written):
                break
            await asyncio.sleep(0.02)
        messages = [[f for f in w if _payload(f)["type"] == "message"] for w in app.written]
        assert [len(m) for m in messages] == [1, 1, 1, 1]
        assert _payload(messages[0][0])["body"] == "once"
        assert len({id(m[0]) for m in messages}) == 1, "the frame was built more than once"
        assert broadcast.EVENT_TYPE not in dispatched
    finally:
        await close_all(sockets)
        await channel_layers["default"].flush()


@pytest.mark.redis
@pytest.mark.parametrize("frames", [True, False])
async def test_under_direct_delivery_a_consumer_waits_on_its_client_alone(
    redis_url: str, settings: Any, monkeypatch: pytest.MonkeyPatch, frames: bool
) -> None:
    """With `write_frame` and the broadcast layer, a consumer awaits its client's events one
    after another: no Channels loop (a task per event and an `asyncio.wait`), and its channel
    is forgotten when it ends. Without `write_frame` it keeps Channels' loop."""
    import channels.consumer

    use_the_broadcast_layer(settings, redis_url)
    loops: list[Any] = []
    original_loop = channels.consumer.await_many_dispatch

    async def await_many_dispatch(*args: Any) -> None:
        loops.append(args)
        await original_loop(*args)

    monkeypatch.setattr(channels.consumer, "await_many_dispatch", await_many_dispatch)
    app = FramesInScope(application) if frames else application
    comms = []
    try:
        for nick in ("a", "b"):
            comm = WebsocketCommunicator(app, f"/ws/chat/?nick={nick}", headers=[ORIGIN])
            assert (await comm.connect())[0]
            comms.append(comm)
        await comms[0].send_to(text_data='{"type":"message","body":"hi","client_id":"c1"}')
        await comms[0].send_to(text_data="not json")
        if frames:
            assert isinstance(app, FramesInScope)
            # Both events were handled, in order: the message went out, then the refusal.
            assert json.loads(await comms[0].receive_from())["code"] == "invalid_json"
            for _ in range(250):
                if any(_payload(f)["type"] == "message" for f in app.written[1]):
                    break
                await asyncio.sleep(0.02)
            assert [_payload(f)["type"] for f in app.written[1]].count("message") == 1
        else:
            assert json.loads(await comms[0].receive_from())["type"] == "hello"
        layer = channel_layers["default"]._layer()
        channels_before = set(layer.queues)
    finally:
        await close_all(comms)
    await asyncio.sleep(0.1)
    assert len(loops) == (0 if frames else 2)
    if frames:
        assert channels_before and not set(layer.queues) & channels_before
    await channel_layers["default"].flush()


async def test_a_guest_handshake_looks_up_no_session(counting: Counts) -> None:
    """Without a session cookie the user is a guest at once: no `get_user` thread hop."""
    sockets = await open_sockets(1)
    try:
        assert "get_user" not in counting.hops
    finally:
        await close_all(sockets)


async def test_a_disconnect_costs_no_thread_hop(counting: Counts) -> None:
    sockets = await open_sockets(1)
    reset(counting)
    await close_all(sockets)
    await asyncio.sleep(0.1)
    assert counting.hops == []
