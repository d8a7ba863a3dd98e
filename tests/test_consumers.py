"""The consumer through Channels' WebsocketCommunicator (in-memory layer, real database)."""

from __future__ import annotations

import json
import logging

import pytest
from channels.testing import WebsocketCommunicator

from chat import broadcast
from chat.models import Message
from chatproject.asgi import application
from tests.support.client import ChatClient

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_layer")]


async def open_socket(query: str = "") -> ChatClient:
    return await ChatClient.communicate(query)


@pytest.fixture
async def pair():
    a = await open_socket("?nick=Ana")
    b = await open_socket("?nick=Bia")
    yield a, b
    await a.close()
    await b.close()


async def test_hello_has_session_nick_history_online_and_limits():
    sock = await open_socket("?nick=Ana")
    try:
        hello = sock.hello
        assert hello["nick"] == "Ana"
        assert hello["session"]
        assert hello["history"] == []
        assert {"session": hello["session"], "nick": "Ana"} in hello["online"]
        assert hello["limits"]["max_body"] == 2000
    finally:
        await sock.close()


async def test_guest_nick_when_none_given():
    sock = await open_socket()
    try:
        assert 1 <= len(sock.hello["nick"]) <= 32
    finally:
        await sock.close()


async def test_message_reaches_both_sockets_as_the_same_stored_message(pair):
    a, b = pair
    await a.send({"type": "message", "body": "  hello  ", "client_id": "c-1"})
    got_a = await a.recv_type("message")
    got_b = await b.recv_type("message")
    assert got_a == got_b
    stored = await Message.objects.aget(client_id="c-1")
    assert got_a["id"] == stored.id
    assert got_a["body"] == "hello"
    assert got_a["nick"] == "Ana"
    assert got_a["session"] == a.hello["session"]
    assert got_a["sent_at"].endswith("Z")


async def test_resend_with_known_client_id_is_acknowledged_once(pair):
    a, b = pair
    await a.send({"type": "message", "body": "once", "client_id": "dup"})
    first = await a.recv_type("message")
    await b.recv_type("message")
    await a.send({"type": "message", "body": "once", "client_id": "dup"})
    again = await a.recv_type("message")
    assert again == first
    assert await Message.objects.filter(client_id="dup").acount() == 1
    await b.assert_no_message()


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "invalid_json"),
        ("[1, 2]", "invalid_type"),
        ({"type": "shout", "body": "x"}, "invalid_type"),
        ({"type": "message"}, "invalid_body"),
        ({"type": "message", "body": 42}, "invalid_body"),
        ({"type": "message", "body": "   "}, "invalid_body"),
        ({"type": "message", "body": "x" * 2001}, "too_long"),
        ({"type": "nick", "nick": ""}, "invalid_nick"),
        ({"type": "nick", "nick": "x" * 33}, "invalid_nick"),
        ({"type": "nick", "nick": "bad\x07bell"}, "invalid_nick"),
    ],
)
async def test_bad_frame_gets_error_code_and_socket_stays_open(pair, frame, code):
    a, b = pair
    await a.send(frame)
    error = await a.recv_type("error")
    assert error["code"] == code
    assert error["detail"]
    # Still open and working; nothing was stored or broadcast for the bad frame.
    await a.send({"type": "message", "body": "after the error"})
    assert (await a.recv_type("message"))["body"] == "after the error"
    assert (await b.recv_type("message"))["body"] == "after the error"
    assert await Message.objects.acount() == 1


async def test_binary_frame_gets_binary_unsupported(pair):
    a, _ = pair
    await a.comm.send_to(bytes_data=b"\x00\x01")
    error = await a.recv_type("error")
    assert error["code"] == "binary_unsupported"


async def test_error_echoes_client_id(pair):
    a, _ = pair
    await a.send({"type": "message", "body": "", "client_id": "c-9"})
    error = await a.recv_type("error")
    assert error["client_id"] == "c-9"


async def test_frame_over_hard_cap_closes_with_4009(pair, settings):
    settings.CHAT_MAX_FRAME = 100
    a, _ = pair
    await a.send({"type": "message", "body": "x" * 200})
    closed = await a.comm.receive_output(timeout=2)
    assert closed == {"type": "websocket.close", "code": 4009}
    assert await Message.objects.acount() == 0


async def test_the_frame_cap_counts_utf8_bytes_not_characters(pair, settings):
    # 60 characters of "é" are 120 bytes: over a cap of 100 that 60 ASCII characters are not.
    settings.CHAT_MAX_FRAME = 100
    a, _ = pair
    await a.send('{"type":"message","body":"' + "é" * 60 + '"}')
    closed = await a.comm.receive_output(timeout=2)
    assert closed == {"type": "websocket.close", "code": 4009}
    assert await Message.objects.acount() == 0


async def test_rename_updates_presence_for_everyone(pair):
    a, b = pair
    await a.send({"type": "nick", "nick": "Ana Maria"})
    for sock in (a, b):
        while True:
            presence = await sock.recv_type("presence")
            if {"session": a.hello["session"], "nick": "Ana Maria"} in presence["online"]:
                break
    await a.send({"type": "message", "body": "renamed"})
    assert (await b.recv_type("message"))["nick"] == "Ana Maria"


async def test_leave_updates_presence():
    a = await open_socket("?nick=Ana")
    b = await open_socket("?nick=Bia")
    try:
        await a.close()
        while True:
            presence = await b.recv_type("presence")
            if presence["count"] == 1:
                break
        assert presence["online"] == [{"session": b.hello["session"], "nick": "Bia"}]
    finally:
        await b.close()


async def test_typing_reaches_others_not_the_typist_and_is_not_stored(pair):
    a, b = pair
    await a.send({"type": "typing"})
    typing = await b.recv_type("typing")
    assert typing == {"type": "typing", "session": a.hello["session"], "nick": "Ana"}
    await a.send({"type": "message", "body": "marker"})
    # The typist's next frames skip any typing notice of its own.
    while True:
        frame = await a.recv()
        assert frame["type"] != "typing"
        if frame["type"] == "message":
            break
    assert await Message.objects.acount() == 1


async def test_typing_is_throttled(pair):
    a, b = pair
    for _ in range(5):
        await a.send({"type": "typing"})
    await b.recv_type("typing")
    await a.send({"type": "message", "body": "marker"})
    while True:
        frame = await b.recv()
        assert frame["type"] != "typing", "a second typing notice got through the throttle"
        if frame["type"] == "message":
            break


async def test_history_on_join_is_the_latest_messages_oldest_first(settings):
    settings.CHAT_HISTORY = 3
    ids = [
        (await Message.objects.acreate(nick="n", body=f"m{i}", session="s")).id for i in range(5)
    ]
    sock = await open_socket()
    try:
        assert [m["id"] for m in sock.hello["history"]] == ids[-3:]
        assert sock.hello["truncated"] is False
    finally:
        await sock.close()


async def test_hello_last_id_is_the_newest_message_with_history_or_without(settings):
    ids = [
        (await Message.objects.acreate(nick="n", body=f"m{i}", session="s")).id for i in range(3)
    ]
    sock = await open_socket()
    try:
        assert sock.hello["last_id"] == ids[-1] == sock.hello["history"][-1]["id"]
    finally:
        await sock.close()
    # No history on a fresh join: last_id still says where the sequence stands.
    settings.CHAT_HISTORY = 0
    sock = await open_socket()
    try:
        assert sock.hello["history"] == []
        assert sock.hello["last_id"] == ids[-1]
    finally:
        await sock.close()


async def test_hello_last_id_in_an_empty_chat_is_zero():
    sock = await open_socket()
    try:
        assert (sock.hello["history"], sock.hello["last_id"]) == ([], 0)
    finally:
        await sock.close()


async def test_resume_after_sends_every_missed_message(settings):
    ids = [
        (await Message.objects.acreate(nick="n", body=f"m{i}", session="s")).id for i in range(6)
    ]
    sock = await open_socket(f"?after={ids[1]}")
    try:
        assert [m["id"] for m in sock.hello["history"]] == ids[2:]
        assert sock.hello["truncated"] is False
    finally:
        await sock.close()


async def test_resume_from_a_pruned_id_is_truncated_and_starts_at_the_oldest_kept():
    ids = [
        (await Message.objects.acreate(nick="n", body=f"m{i}", session="s")).id for i in range(6)
    ]
    await Message.objects.filter(id__lte=ids[2]).adelete()
    sock = await open_socket(f"?after={ids[0]}")
    try:
        assert [m["id"] for m in sock.hello["history"]] == ids[3:]
        assert sock.hello["truncated"] is True
    finally:
        await sock.close()


async def test_resume_from_the_newest_pruned_id_lost_nothing():
    ids = [
        (await Message.objects.acreate(nick="n", body=f"m{i}", session="s")).id for i in range(6)
    ]
    await Message.objects.filter(id__lte=ids[2]).adelete()
    sock = await open_socket(f"?after={ids[2]}")
    try:
        assert [m["id"] for m in sock.hello["history"]] == ids[3:]
        assert sock.hello["truncated"] is False
    finally:
        await sock.close()


async def test_pruned_events_reach_consumers_harmlessly(pair):
    a, _ = pair
    await broadcast.publish_pruned(1)
    await a.send({"type": "message", "body": "still here"})
    assert (await a.recv_type("message"))["body"] == "still here"


async def test_resume_cap_keeps_newest_and_flags_truncation(settings):
    settings.CHAT_RESUME_CAP = 2
    ids = [
        (await Message.objects.acreate(nick="n", body=f"m{i}", session="s")).id for i in range(6)
    ]
    sock = await open_socket(f"?after={ids[0]}")
    try:
        assert [m["id"] for m in sock.hello["history"]] == ids[-2:]
        assert sock.hello["truncated"] is True
    finally:
        await sock.close()


async def test_storage_failure_gets_unavailable_and_nothing_is_broadcast(pair, monkeypatch):
    a, b = pair

    def broken(**kwargs):
        raise RuntimeError("database is locked")

    monkeypatch.setattr("chat.services.message_create_many", broken)
    await a.send({"type": "message", "body": "lost?", "client_id": "c-u"})
    error = await a.recv_type("error")
    assert error["code"] == "unavailable"
    assert error["client_id"] == "c-u"
    await b.assert_no_message()


async def test_rate_limited_past_the_rate(pair, settings):
    settings.CHAT_RATE = 2
    settings.CHAT_RATE_PERIOD = 60
    a = await open_socket("?nick=Fast")
    try:
        for i in range(3):
            await a.send({"type": "message", "body": f"m{i}", "client_id": f"r{i}"})
        codes = []
        for _ in range(3):
            frame = await a.recv()
            while frame["type"] == "presence":
                frame = await a.recv()
            codes.append(frame.get("code") or frame["type"])
        assert codes == ["message", "message", "rate_limited"]
        assert await Message.objects.acount() == 2
    finally:
        await a.close()


async def test_foreign_origin_is_refused():
    comm = WebsocketCommunicator(
        application, "/ws/chat/", headers=[(b"origin", b"http://localhost.evil.example")]
    )
    connected, _ = await comm.connect()
    assert not connected
    await comm.disconnect()


@pytest.mark.parametrize(
    "body",
    [
        "emoji 😀👩‍👩‍👧‍👦 and 𝄞",
        "right-to-left \u200fשלום\u200f mark",
        "zero\u200bwidth\u200cjoiner\u200dchars\ufeff",
    ],
    ids=["emoji", "rtl", "zero-width"],
)
async def test_unicode_bodies_round_trip_exactly(pair, body):
    a, b = pair
    await a.send({"type": "message", "body": body})
    assert (await b.recv_type("message"))["body"] == body
    stored = await Message.objects.aget()
    assert stored.body == body


async def test_body_limit_counts_code_points_like_the_database(pair, settings):
    settings.CHAT_MAX_BODY = 10
    a, _ = pair
    await a.send({"type": "message", "body": "😀" * 10})
    assert (await a.recv_type("message"))["body"] == "😀" * 10
    await a.send({"type": "message", "body": "😀" * 11})
    assert (await a.recv_type("error"))["code"] == "too_long"


def json_lines(records: list[logging.LogRecord]) -> list[dict]:
    """The records as DJANGO_LOG_FORMAT=json writes them (the settings' formatter), parsed."""
    from django.conf import settings
    from pythonjsonlogger.json import JsonFormatter

    options = {k: v for k, v in settings.LOGGING["formatters"]["json"].items() if k != "()"}
    formatter = JsonFormatter(**options)
    return [json.loads(formatter.format(record)) for record in records]


async def test_refused_frames_are_logged_as_warnings_without_the_body(pair, caplog):
    a, _ = pair
    secret = "my-private-words-" * 200
    with caplog.at_level("INFO"):
        await a.send({"type": "message", "body": secret})
        await a.recv_type("error")
    refusals = [r for r in caplog.records if "refused frame" in r.getMessage()]
    assert refusals and all(r.levelname == "WARNING" for r in refusals)
    assert "too_long" in refusals[0].getMessage()
    assert all("my-private-words" not in r.getMessage() for r in caplog.records)


async def test_refused_frames_in_json_logs_have_keys_and_no_body(pair, caplog):
    a, _ = pair
    secret = "my-private-words-" * 200
    with caplog.at_level("INFO"):
        await a.send({"type": "message", "body": secret})
        await a.recv_type("error")
    lines = json_lines(caplog.records)
    refusal = next(line for line in lines if line["message"].startswith("refused frame"))
    assert (refusal["level"], refusal["code"], refusal["session"]) == (
        "WARNING",
        "too_long",
        a.hello["session"],
    )
    assert all("my-private-words" not in json.dumps(line) for line in lines)


async def test_stored_messages_are_not_logged(pair, caplog):
    a, _ = pair
    with caplog.at_level("DEBUG"):
        await a.send({"type": "message", "body": "a private note"})
        await a.recv_type("message")
    assert all("a private note" not in r.getMessage() for r in caplog.records)


async def test_stored_messages_are_not_in_json_logs(pair, caplog):
    a, _ = pair
    with caplog.at_level("DEBUG"):
        await a.send({"type": "message", "body": "a private note"})
        await a.recv_type("message")
    assert all("a private note" not in json.dumps(line) for line in json_lines(caplog.records))


async def test_online_list_is_capped_but_count_is_everyone(settings):
    settings.CHAT_PRESENCE_LIST = 2
    socks = [await open_socket(f"?nick=P{i}") for i in range(3)]
    try:
        last = socks[-1].hello
        assert last["count"] == 3
        assert len(last["online"]) == 2
        # The third join falls after the full first page: its frame may carry the count only.
        pages = []
        presence = await socks[0].recv_type("presence")
        pages.append(presence.get("online"))
        while presence["count"] != 3:
            presence = await socks[0].recv_type("presence")
            pages.append(presence.get("online"))
        assert [len(page) for page in pages if page is not None][-1] == 2
    finally:
        for sock in socks:
            await sock.close()


async def settled_presence(sock: ChatClient, count: int) -> dict:
    """The first presence frame with `count`, after which nothing else arrives for a while."""
    frame = await sock.recv_type("presence")
    while frame["count"] != count:
        frame = await sock.recv_type("presence")
    assert sock.comm is not None and await sock.comm.receive_nothing(timeout=0.5)
    return frame


async def test_in_a_crowd_a_join_beyond_the_first_page_sends_the_others_the_count_only(
    settings,
):
    settings.CHAT_PRESENCE_LIST = 3
    socks = [await open_socket(f"?nick=b{i}") for i in range(5)]
    late = None
    try:
        for sock in socks:
            await settled_presence(sock, 5)
        late = await open_socket("?nick=zed")
        assert [entry["nick"] for entry in late.hello["online"]] == ["b0", "b1", "b2"]
        for sock in socks:
            assert await sock.recv_type("presence") == {"type": "presence", "count": 6}
    finally:
        for sock in [*socks, *([late] if late else [])]:
            await sock.close()


async def test_in_a_crowd_a_join_inside_the_first_page_sends_the_others_the_list(settings):
    settings.CHAT_PRESENCE_LIST = 3
    socks = [await open_socket(f"?nick=b{i}") for i in range(5)]
    early = None
    try:
        for sock in socks:
            await settled_presence(sock, 5)
        early = await open_socket("?nick=aaron")
        for sock in socks:
            frame = await sock.recv_type("presence")
            assert [entry["nick"] for entry in frame["online"]] == ["aaron", "b0", "b1"]
            assert frame["count"] == 6
    finally:
        for sock in [*socks, *([early] if early else [])]:
            await sock.close()


async def test_resume_cap_zero_switches_the_cap_off(settings):
    settings.CHAT_RESUME_CAP = 0
    ids = [
        (await Message.objects.acreate(nick="n", body=f"m{i}", session="s")).id for i in range(6)
    ]
    sock = await open_socket(f"?after={ids[0]}")
    try:
        assert [m["id"] for m in sock.hello["history"]] == ids[1:]
        assert sock.hello["truncated"] is False
    finally:
        await sock.close()


async def test_rate_limited_per_address_across_sockets(settings):
    """Two sockets of one address share CHAT_RATE_PER_ADDRESS; each has room of its own."""
    settings.CHAT_RATE = 3
    settings.CHAT_RATE_PER_ADDRESS = 4
    settings.CHAT_RATE_PERIOD = 60
    a = await open_socket("?nick=Ana")
    b = await open_socket("?nick=Bia")
    try:
        for sock, name in ((a, "a"), (b, "b")):
            for i in range(3):
                await sock.send(
                    {"type": "message", "body": f"{name}{i}", "client_id": f"{name}{i}"}
                )
        error = await b.recv_type("error")
        assert error["code"] == "rate_limited"
        assert error["client_id"] == "b2"
        assert 0 < error["retry_after"] <= 120
        assert "address" in error["detail"]
        assert await Message.objects.acount() == 4
    finally:
        await a.close()
        await b.close()


async def test_refused_per_address_message_does_not_use_the_socket_rate(settings):
    settings.CHAT_RATE = 2
    settings.CHAT_RATE_PER_ADDRESS = 1
    settings.CHAT_RATE_PERIOD = 60
    a = await open_socket("?nick=Ana")
    try:
        await a.send({"type": "message", "body": "one", "client_id": "r1"})
        await a.recv_type("message")
        await a.send({"type": "message", "body": "two", "client_id": "r2"})
        assert (await a.recv_type("error"))["code"] == "rate_limited"
        settings.CHAT_RATE_PER_ADDRESS = 0
        await a.send({"type": "message", "body": "three", "client_id": "r3"})
        assert (await a.recv_type("message"))["body"] == "three"
    finally:
        await a.close()


async def test_hello_lists_the_address_limits(settings):
    settings.CHAT_RATE_PER_ADDRESS = 25
    sock = await open_socket("?nick=Ana")
    try:
        limits = sock.hello["limits"]
        assert limits["rate_per_address"] == 25
        assert limits["api_rate"] == settings.CHAT_API_RATE
        assert limits["api_period"] == settings.CHAT_API_PERIOD
    finally:
        await sock.close()
