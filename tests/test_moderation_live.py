"""A deletion reaches every worker: real daphne processes on real Redis, the retract published
by this test process through the broadcast layer, as the admin would publish it."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async

from chat import broadcast
from chat.layers import RedisBroadcastChannelLayer
from chat.moderation import message_delete
from tests.support.client import ChatClient
from tests.support.environment import REDIS_PREFIX

pytestmark = [pytest.mark.live, pytest.mark.redis]


@pytest.fixture
def redis_layer(redis_url, monkeypatch):
    """This process publishes through the same Redis layer as the workers."""
    layer = RedisBroadcastChannelLayer(hosts=[redis_url], prefix=f"{REDIS_PREFIX}:layer")
    monkeypatch.setattr(broadcast, "get_channel_layer", lambda: layer)
    return layer


@pytest.fixture
def workers(daphne_factory, redis_url):
    return [daphne_factory(redis_url=redis_url, name=f"w{n}", CHAT_RATE="0") for n in (1, 2)]


async def test_a_deletion_is_retracted_on_every_worker_within_a_second(workers, redis_layer):
    ana = await ChatClient.connect(workers[0].ws_url, nick="Ana")
    bia = await ChatClient.connect(workers[1].ws_url, nick="Bia")
    try:
        await ana.say("to be deleted", client_id="d1")
        message_id = (await ana.recv_type("message", body="to be deleted"))["id"]
        await bia.recv_type("message", id=message_id)
        await sync_to_async(message_delete)(ids=[message_id], by=None, via="admin")
        for client in (ana, bia):
            await client.recv_type("retract", timeout=1, id=message_id)
    finally:
        await ana.close()
        await bia.close()


async def test_a_join_after_a_deletion_gets_no_such_message(workers, redis_layer):
    ana = await ChatClient.connect(workers[0].ws_url, nick="Ana")
    bia = await ChatClient.connect(workers[1].ws_url, nick="Bia")
    try:
        for body in ("keep", "drop"):
            await ana.say(body, client_id=body)
        await bia.recv_type("message", body="keep")
        dropped = (await bia.recv_type("message", body="drop"))["id"]
        await sync_to_async(message_delete)(ids=[dropped], by=None, via="admin")
        # Both workers have heard the retract once their sockets have it.
        for client in (ana, bia):
            await client.recv_type("retract", timeout=1, id=dropped)
        for worker in workers:
            late = await ChatClient.connect(worker.ws_url, nick="Late")
            assert [m["body"] for m in late.hello["history"]] == ["keep"]
            await late.close()
    finally:
        await ana.close()
        await bia.close()


def _session_cookie(user) -> str:
    from django.test import Client

    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}"


@pytest.fixture
def proxied(daphne_factory, redis_url):
    """Two workers that take the client address from X-Forwarded-For, so that each test
    client can come from an address of its own."""
    return [
        daphne_factory(
            redis_url=redis_url,
            name=f"p{n}",
            extra_args=["--proxy-headers"],
            CHAT_RATE="0",
            CHAT_MAX_SOCKETS_PER_IP="0",
        )
        for n in (1, 2)
    ]


async def _as(worker, *, address: str, nick: str | None = None, cookie: str | None = None):
    headers = {"X-Forwarded-For": address}
    if cookie:
        headers["Cookie"] = cookie
    return await ChatClient.connect(worker.ws_url, nick=nick, headers=headers)


async def _open(worker, *, address: str) -> bool:
    """Whether a handshake from `address` is accepted."""
    import websockets

    try:
        conn = await websockets.connect(
            worker.ws_url,
            origin=worker.http_url,
            additional_headers={"X-Forwarded-For": address},
            open_timeout=5,
        )
    except websockets.InvalidStatus as exc:
        assert exc.response.status_code == 403
        assert b"banned" in bytes(exc.response.body)
        return False
    await conn.close()
    return True


async def test_a_page_delete_on_one_worker_vanishes_on_the_other(proxied, moderator):
    cookie = await sync_to_async(_session_cookie)(moderator)
    mod = await _as(proxied[0], address="10.9.0.1", cookie=cookie)
    guest = await _as(proxied[1], address="10.9.0.2", nick="Spammer")
    try:
        await guest.say("buy now", client_id="spam-1")
        spam = await mod.recv_type("message", body="buy now")
        await mod.send({"type": "delete", "id": spam["id"]})
        await guest.recv_type("retract", timeout=1, id=spam["id"])
        await mod.recv_type("retract", timeout=1, id=spam["id"])
    finally:
        await mod.close()
        await guest.close()


async def test_a_mute_given_on_one_worker_holds_on_the_other_within_a_second(proxied, moderator):
    cookie = await sync_to_async(_session_cookie)(moderator)
    mod = await _as(proxied[0], address="10.9.1.1", cookie=cookie)
    guest = await _as(proxied[1], address="10.9.1.2", nick="Loud")
    try:
        await guest.say("first", client_id="loud-1")
        first = await mod.recv_type("message", body="first")
        await mod.send({"type": "mute", "session": first["session"], "seconds": 600})
        # The other worker reloads asynchronously: probe until a message is refused (probes
        # sent before that are stored, which is what "within a second" allows).
        loop = asyncio.get_running_loop()
        sent_at = loop.time()
        for n in range(200):
            await guest.say(f"probe {n}", client_id=f"loud-p{n}")
            frame = await guest.recv(timeout=10)
            while frame["type"] not in ("message", "error") or (
                frame["type"] == "message" and frame.get("client_id") != f"loud-p{n}"
            ):
                frame = await guest.recv(timeout=10)
            if frame["type"] == "error":
                break
            await asyncio.sleep(0.05)
        assert frame["code"] == "muted" and frame["retry_after"] > 590
        assert loop.time() - sent_at < 10
    finally:
        await mod.close()
        await guest.close()


async def test_a_ban_closes_the_guests_sockets_on_both_workers_and_refuses_handshakes(
    proxied, moderator
):
    import websockets

    cookie = await sync_to_async(_session_cookie)(moderator)
    mod = await _as(proxied[0], address="10.9.2.1", cookie=cookie)
    here = await _as(proxied[0], address="10.9.2.2", nick="Troll")
    there = await _as(proxied[1], address="10.9.2.2", nick="Troll2")
    bystander = await _as(proxied[1], address="10.9.2.3", nick="Calm")
    try:
        await here.say("trolling", client_id="troll-1")
        troll = await mod.recv_type("message", body="trolling")
        await mod.send({"type": "ban", "session": troll["session"], "seconds": 600})
        for client in (here, there):
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await client.recv(timeout=5)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4008
        for worker in proxied:
            assert not await _open(worker, address="10.9.2.2")
            assert await _open(worker, address="10.9.2.4")
        await bystander.say("still here", client_id="calm-1")
        await bystander.recv_type("message", body="still here")
    finally:
        for client in (mod, bystander):
            await client.close()


async def test_a_guest_on_a_fresh_worker_cannot_take_an_account_name(live_db_url, member, proxied):
    # The account exists before the workers start: a worker loads the account names as it
    # starts (chat.warmup), and names made later reach it at its next reload.
    guest = await _as(proxied[1], address="10.9.3.1", nick="member")
    try:
        assert guest.hello["nick"].casefold() != "member"
        assert (await guest.recv_type("error"))["code"] == "invalid_nick"
    finally:
        await guest.close()
