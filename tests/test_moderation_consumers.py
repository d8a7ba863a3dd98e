"""Accounts and moderation through the socket (Channels' WebsocketCommunicator, in-memory
layer, real database, real sessions)."""

from __future__ import annotations

import asyncio
import json

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import Client

from chat.models import Message, Sanction
from chatproject.asgi import application
from tests.support.client import ORIGIN, ChatClient

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("fresh_layer")]


def _cookie(user) -> bytes:
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def connect(query: str = "", *, user=None, address: str = "10.0.0.9") -> ChatClient:
    """A greeted socket from `address`, signed in as `user` if given."""
    headers = [] if user is None else [(b"cookie", await sync_to_async(_cookie)(user))]
    return await ChatClient.communicate(query, headers=headers, address=address)


async def refused(query: str = "", *, address: str) -> bool:
    comm = WebsocketCommunicator(application, f"/ws/chat/{query}", headers=[ORIGIN])
    comm.scope["client"] = (address, 40001)
    connected, _ = await comm.connect()
    await comm.disconnect()
    return not connected


async def until_guard(condition, timeout: float = 10) -> None:
    """Wait until the worker's guard (this test's event loop) satisfies `condition`: its
    reload after a sanction is asynchronous."""
    from chat.guard import get_guard

    guard = get_guard()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition(guard):
        assert loop.time() < deadline, "the guard did not reload in time"
        await asyncio.sleep(0.02)


def _muted(sock: ChatClient, address: str):
    session = sock.hello["session"]
    return lambda guard: guard.muted(user_id=None, session=session, address=address)


async def say(sock: ChatClient, body: str) -> dict:
    await sock.send({"type": "message", "body": body, "client_id": body})
    return await sock.recv_type("message")


async def test_a_signed_in_member_chats_under_the_account_name_with_the_mark(member):
    sock = await connect("?nick=Other", user=member)
    try:
        assert sock.hello["user"] == {"name": "Member", "moderator": False}
        assert sock.hello["nick"] == "Member"
        echo = await say(sock, "hi")
        assert (echo["nick"], echo["account"]) == ("Member", True)
    finally:
        await sock.close()


async def test_a_guests_messages_are_not_marked():
    sock = await connect("?nick=Guesty")
    try:
        assert sock.hello["user"] is None
        assert (await say(sock, "hello"))["account"] is False
    finally:
        await sock.close()


async def test_a_guest_cannot_join_under_an_account_name(member):
    sock = await connect("?nick=%20MEMBER")
    try:
        error = await sock.recv_type("error")
        assert error["code"] == "invalid_nick"
        assert sock.hello["nick"].casefold() != "member"
    finally:
        await sock.close()


async def test_a_guest_cannot_rename_to_an_account_name(member):
    sock = await connect("?nick=Guesty")
    try:
        await sock.send({"type": "nick", "nick": "member"})
        assert (await sock.recv_type("error"))["code"] == "invalid_nick"
    finally:
        await sock.close()


async def test_a_signed_in_member_cannot_rename(member):
    sock = await connect(user=member)
    try:
        await sock.send({"type": "nick", "nick": "Someone"})
        assert (await sock.recv_type("error"))["code"] == "invalid_nick"
    finally:
        await sock.close()


async def test_a_moderator_is_told_so_in_hello(moderator):
    sock = await connect(user=moderator)
    try:
        assert sock.hello["user"] == {"name": "mod", "moderator": True}
    finally:
        await sock.close()


async def test_a_guests_delete_is_forbidden_and_changes_nothing():
    sock = await connect("?nick=Guesty")
    try:
        stored = await say(sock, "stay")
        await sock.send({"type": "delete", "id": stored["id"]})
        assert (await sock.recv_type("error"))["code"] == "forbidden"
        assert await Message.objects.filter(id=stored["id"]).aexists()
    finally:
        await sock.close()


async def test_a_members_mute_is_forbidden(member):
    sock = await connect(user=member)
    try:
        await sock.send({"type": "mute", "session": "someone", "seconds": 60})
        assert (await sock.recv_type("error"))["code"] == "forbidden"
        assert not await Sanction.objects.aexists()
    finally:
        await sock.close()


async def test_a_moderators_delete_retracts_the_message_for_everyone(moderator):
    guest = await connect("?nick=Guesty")
    mod = await connect(user=moderator)
    try:
        stored = await say(guest, "spam")
        await mod.send({"type": "delete", "id": stored["id"]})
        assert await guest.recv_type("retract") == {"type": "retract", "id": stored["id"]}
        assert await mod.recv_type("retract") == {"type": "retract", "id": stored["id"]}
        late = await connect("?nick=Late")
        assert stored["id"] not in [m["id"] for m in late.hello["history"]]
        await late.close()
    finally:
        await guest.close()
        await mod.close()


async def test_deleting_an_unknown_id_is_harmless(moderator):
    mod = await connect(user=moderator)
    try:
        await mod.send({"type": "delete", "id": 999999})
        await mod.send({"type": "message", "body": "still here", "client_id": "sh"})
        frames = []
        while not frames or frames[-1]["type"] != "message":
            frames.append(json.loads(await mod.comm.receive_from(timeout=3)))
        assert [f["type"] for f in frames if f["type"] in ("error", "retract")] == []
        assert frames[-1]["body"] == "still here"
    finally:
        await mod.close()


async def test_a_muted_guest_gets_muted_with_retry_after_and_nothing_is_stored(moderator):
    guest = await connect("?nick=Guesty", address="10.0.0.20")
    mod = await connect(user=moderator, address="10.0.0.21")
    try:
        await say(guest, "first")
        await mod.send({"type": "mute", "session": guest.hello["session"], "seconds": 600})
        await until_guard(_muted(guest, "10.0.0.20"))
        await guest.send({"type": "message", "body": "second", "client_id": "m2"})
        error = await guest.recv_type("error")
        assert (error["code"], error["client_id"]) == ("muted", "m2")
        assert 590 < error["retry_after"] <= 600
        assert not await Message.objects.filter(client_id="m2").aexists()
    finally:
        await guest.close()
        await mod.close()


async def test_a_mute_expires_by_itself(moderator):
    guest = await connect("?nick=Guesty", address="10.0.0.30")
    mod = await connect(user=moderator, address="10.0.0.31")
    try:
        await say(guest, "first")
        await mod.send({"type": "mute", "session": guest.hello["session"], "seconds": 3})
        await until_guard(_muted(guest, "10.0.0.30"))
        await guest.send({"type": "message", "body": "muted", "client_id": "x1"})
        assert (await guest.recv_type("error"))["code"] == "muted"
        # No reload ends a mute: the same book answers "free" once its time has passed.
        await until_guard(lambda guard: not _muted(guest, "10.0.0.30")(guard))
        assert (await say(guest, "free again"))["body"] == "free again"
    finally:
        await guest.close()
        await mod.close()


async def test_a_moderator_cannot_mute_themself(moderator):
    mod = await connect(user=moderator)
    try:
        await mod.send({"type": "mute", "session": mod.hello["session"], "seconds": 60})
        assert (await mod.recv_type("error"))["code"] == "forbidden"
    finally:
        await mod.close()


async def test_a_moderator_cannot_mute_another_moderator(moderator, django_user_model):
    other = await django_user_model.objects.acreate(username="mod2", is_staff=True)
    mod = await connect(user=moderator, address="10.0.0.41")
    target = await connect(user=other, address="10.0.0.42")
    try:
        await say(target, "I moderate too")
        await mod.send({"type": "mute", "session": target.hello["session"], "seconds": 60})
        assert (await mod.recv_type("error"))["code"] == "forbidden"
    finally:
        await mod.close()
        await target.close()


async def test_a_ban_closes_the_guests_socket_and_refuses_their_handshakes(moderator):
    guest = await connect("?nick=Guesty", address="10.0.0.50")
    mod = await connect(user=moderator, address="10.0.0.51")
    try:
        await say(guest, "spam")
        await mod.send({"type": "ban", "session": guest.hello["session"], "seconds": 600})
        closed = await guest.comm.receive_output(timeout=3)
        while closed["type"] != "websocket.close":
            closed = await guest.comm.receive_output(timeout=3)
        assert closed["code"] == 4008
        assert await refused("?nick=Again", address="10.0.0.50")
        assert not await refused("?nick=Other", address="10.0.0.52")
    finally:
        await mod.close()
