"""Moderation writes (chat.moderation): deletions with their audit rows, sanctions."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.core.exceptions import PermissionDenied
from django.test import Client
from django.utils import timezone

from chat import broadcast, protocol, selectors
from chat.models import Deletion, Message, Sanction
from chat.moderation import SanctionRefused, message_delete, sanction_create, sanction_lift

pytestmark = pytest.mark.django_db


def stored(n: int = 3) -> list[int]:
    return [Message.objects.create(nick="Ana", body=f"m{i}", session="s1").id for i in range(n)]


# --- message_delete ------------------------------------------------------------------------


def test_message_delete_returns_the_deleted_ids(moderator):
    ids = stored()
    assert message_delete(ids=[ids[1]], by=moderator, via="page") == [ids[1]]


def test_message_delete_removes_the_row(moderator):
    ids = stored()
    message_delete(ids=[ids[1]], by=moderator, via="page")
    assert list(Message.objects.values_list("id", flat=True)) == [ids[0], ids[2]]


def test_message_delete_records_the_audit_row(moderator):
    message = Message.objects.create(nick="Bo", body="rude words", session="sess1")
    message_delete(ids=[message.id], by=moderator, via="admin")
    record = Deletion.objects.get()
    assert (
        record.message_id,
        record.nick,
        record.body,
        record.sent_at,
        record.session,
        record.deleted_by,
        record.via,
    ) == (message.id, "Bo", "rude words", message.sent_at, "sess1", moderator, "admin")


def test_message_delete_records_the_time(moderator):
    (message_id,) = stored(1)
    before = timezone.now()
    message_delete(ids=[message_id], by=moderator, via="page")
    assert before <= Deletion.objects.get().deleted_at <= timezone.now()


def test_message_delete_records_the_sender_account(moderator, member):
    message = Message.objects.create(nick="Member", body="x", session="s", user=member)
    message_delete(ids=[message.id], by=moderator, via="page")
    assert Deletion.objects.get().sender == member


def test_message_delete_removes_the_message_from_history(moderator):
    ids = stored()
    message_delete(ids=[ids[1]], by=moderator, via="page")
    rows, _ = selectors.message_list_latest(limit=10)
    assert [m.id for m in rows] == [ids[0], ids[2]]


def test_message_delete_removes_the_message_from_resume(moderator):
    ids = stored()
    message_delete(ids=[ids[1]], by=moderator, via="page")
    assert [m.id for m in selectors.message_list_after(after=ids[0], limit=10)] == [ids[2]]


def test_message_delete_removes_the_message_from_the_api(moderator):
    ids = stored()
    message_delete(ids=[ids[1]], by=moderator, via="page")
    body = Client().get("/api/messages").json()
    assert [m["id"] for m in body["messages"]] == [ids[0], ids[2]]


def test_message_delete_of_an_unknown_id_is_harmless(moderator):
    ids = stored()
    assert message_delete(ids=[ids[-1] + 1000], by=moderator, via="page") == []
    assert Message.objects.count() == 3


def test_message_delete_of_an_unknown_id_records_nothing(moderator):
    stored()
    message_delete(ids=[999999], by=moderator, via="page")
    assert not Deletion.objects.exists()


def test_message_delete_twice_returns_nothing_the_second_time(moderator):
    ids = stored()
    message_delete(ids=[ids[0]], by=moderator, via="page")
    assert message_delete(ids=[ids[0]], by=moderator, via="page") == []


def test_message_delete_twice_records_once(moderator):
    ids = stored()
    message_delete(ids=[ids[0]], by=moderator, via="page")
    message_delete(ids=[ids[0]], by=moderator, via="page")
    assert Deletion.objects.count() == 1


def test_message_delete_in_bulk_deletes_every_known_id(moderator):
    ids = stored(5)
    assert message_delete(ids=[ids[3], 999999, ids[0], ids[3]], by=moderator, via="admin") == [
        ids[0],
        ids[3],
    ]


def test_message_delete_in_bulk_past_one_chunk(moderator, monkeypatch):
    monkeypatch.setattr("chat.moderation.DELETE_CHUNK", 2)
    ids = stored(5)
    assert message_delete(ids=ids, by=moderator, via="admin") == ids
    assert Deletion.objects.count() == 5


def test_message_delete_of_nothing_returns_nothing(moderator):
    assert message_delete(ids=[], by=moderator, via="page") == []


def test_message_delete_refuses_an_unknown_via(moderator):
    ids = stored(1)
    with pytest.raises(ValueError, match="via"):
        message_delete(ids=ids, by=moderator, via="socket")  # type: ignore[arg-type]


def test_message_delete_refuses_a_member(member):
    ids = stored(1)
    with pytest.raises(PermissionDenied):
        message_delete(ids=ids, by=member, via="page")


def test_message_delete_by_a_member_deletes_nothing(member):
    ids = stored(1)
    with pytest.raises(PermissionDenied):
        message_delete(ids=ids, by=member, via="page")
    assert Message.objects.filter(id=ids[0]).exists()


def test_message_delete_by_permission_holder(django_user_model):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user(username="helper", password="x-pw-12345")
    user.user_permissions.add(Permission.objects.get(codename="moderate_message"))
    user = django_user_model.objects.get(pk=user.pk)
    ids = stored(1)
    assert message_delete(ids=ids, by=user, via="page") == ids


def test_message_delete_publishes_nothing_before_commit(
    moderator, django_capture_on_commit_callbacks
):
    ids = stored(1)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        message_delete(ids=ids, by=moderator, via="page")
    assert len(callbacks) == 1


@pytest.mark.django_db(transaction=True)
async def test_message_delete_publishes_one_retract_per_id(moderator, lobby_listener):
    ids = await sync_to_async(stored)(2)
    await sync_to_async(message_delete)(ids=ids, by=moderator, via="page")
    events = [await lobby_listener(), await lobby_listener()]
    assert [e["text"] for e in events] == [protocol.retract_frame(i) for i in ids]


@pytest.mark.django_db(transaction=True)
async def test_message_delete_retract_event_names_the_id(moderator, lobby_listener):
    (message_id,) = await sync_to_async(stored)(1)
    await sync_to_async(message_delete)(ids=[message_id], by=moderator, via="page")
    event = await lobby_listener()
    assert (event["type"], event["retract"], event["id"]) == (
        broadcast.EVENT_TYPE,
        message_id,
        None,
    )


@pytest.mark.django_db(transaction=True)
async def test_message_delete_of_unknown_ids_publishes_nothing(moderator, lobby_listener):
    await sync_to_async(message_delete)(ids=[424242], by=moderator, via="page")
    with pytest.raises(TimeoutError):
        await lobby_listener(timeout=0.3)


@pytest.mark.django_db(transaction=True)
async def test_message_delete_survives_a_failing_layer(moderator, monkeypatch):
    async def broken(*args: object) -> None:
        raise ConnectionError("redis down")

    monkeypatch.setattr(broadcast, "publish_retract", broken)
    (message_id,) = await sync_to_async(stored)(1)
    deleted = await sync_to_async(message_delete)(ids=[message_id], by=moderator, via="page")
    assert deleted == [message_id]


# --- sanction_create / sanction_lift -------------------------------------------------------


def test_sanction_create_stores_a_mute_of_an_account(moderator, member):
    sanction = sanction_create(kind="mute", seconds=60, by=moderator, user=member)
    assert (sanction.kind, sanction.user, sanction.created_by) == ("mute", member, moderator)


def test_sanction_create_sets_the_expiry(moderator):
    before = timezone.now()
    sanction = sanction_create(kind="ban", seconds=600, by=moderator, session="abc")
    assert 599 <= (sanction.expires_at - before).total_seconds() <= 601


def test_sanction_create_stores_an_address(moderator):
    sanction = sanction_create(kind="ban", seconds=60, by=moderator, address="203.0.113.9")
    assert Sanction.objects.get(pk=sanction.pk).address == "203.0.113.9"


def test_sanction_create_normalises_an_ipv6_address(moderator):
    sanction = sanction_create(kind="ban", seconds=60, by=moderator, address="2001:DB8:0::1")
    assert sanction.address == "2001:db8::1"


def test_sanction_create_refuses_a_bad_address(moderator):
    with pytest.raises(SanctionRefused):
        sanction_create(kind="ban", seconds=60, by=moderator, address="not-an-ip")


def test_sanction_create_refuses_a_moderator_account(moderator, django_user_model):
    other = django_user_model.objects.create_user(username="mod2", password="x", is_staff=True)
    with pytest.raises(SanctionRefused, match="moderator"):
        sanction_create(kind="ban", seconds=60, by=moderator, user=other)


def test_sanction_create_refuses_a_superuser(moderator, django_user_model):
    boss = django_user_model.objects.create_superuser(username="boss", password="x")
    with pytest.raises(SanctionRefused):
        sanction_create(kind="mute", seconds=60, by=moderator, user=boss)


def test_sanction_create_on_a_moderator_stores_nothing(moderator, django_user_model):
    other = django_user_model.objects.create_user(username="mod2", password="x", is_staff=True)
    with pytest.raises(SanctionRefused):
        sanction_create(kind="ban", seconds=60, by=moderator, user=other)
    assert not Sanction.objects.exists()


def test_sanction_create_refuses_no_target(moderator):
    with pytest.raises(SanctionRefused, match="exactly one"):
        sanction_create(kind="mute", seconds=60, by=moderator)


def test_sanction_create_refuses_two_targets(moderator, member):
    with pytest.raises(SanctionRefused, match="exactly one"):
        sanction_create(kind="mute", seconds=60, by=moderator, user=member, session="s")


def test_sanction_create_refuses_a_zero_duration(moderator):
    with pytest.raises(SanctionRefused, match="seconds"):
        sanction_create(kind="mute", seconds=0, by=moderator, session="s")


def test_sanction_create_refuses_an_unknown_kind(moderator):
    with pytest.raises(SanctionRefused, match="kind"):
        sanction_create(kind="kick", seconds=5, by=moderator, session="s")  # type: ignore[arg-type]


def test_sanction_create_refuses_a_member_as_author(member):
    with pytest.raises(PermissionDenied):
        sanction_create(kind="mute", seconds=60, by=member, session="s")


def test_sanction_lift_ends_it(moderator):
    sanction = sanction_create(kind="mute", seconds=60, by=moderator, session="s")
    assert sanction_lift(id=sanction.id, by=moderator) is True
    assert selectors.sanctions_active(now=timezone.now()) == []


def test_sanction_lift_keeps_the_record(moderator):
    sanction = sanction_create(kind="mute", seconds=60, by=moderator, session="s")
    sanction_lift(id=sanction.id, by=moderator)
    lifted = Sanction.objects.get(pk=sanction.pk)
    assert lifted.lifted_at is not None and lifted.lifted_by == moderator


def test_sanction_lift_twice_is_false(moderator):
    sanction = sanction_create(kind="mute", seconds=60, by=moderator, session="s")
    sanction_lift(id=sanction.id)
    assert sanction_lift(id=sanction.id) is False


def test_sanction_lift_of_an_unknown_id_is_false():
    assert sanction_lift(id=123456) is False


@pytest.mark.django_db(transaction=True)
async def test_sanction_create_publishes_the_reload_event(moderator, lobby_listener):
    await sync_to_async(sanction_create)(kind="mute", seconds=60, by=moderator, session="s")
    assert await lobby_listener() == broadcast.sanctions_event()


@pytest.mark.django_db(transaction=True)
async def test_sanction_lift_publishes_the_reload_event(moderator, lobby_listener):
    sanction = await sync_to_async(sanction_create)(
        kind="mute", seconds=60, by=moderator, session="s"
    )
    await lobby_listener()
    await sync_to_async(sanction_lift)(id=sanction.id)
    assert await lobby_listener() == {"type": "chat.sanctions"}


@pytest.mark.django_db(transaction=True)
async def test_sanction_lift_of_a_lifted_one_publishes_nothing(moderator, lobby_listener):
    sanction = await sync_to_async(sanction_create)(
        kind="mute", seconds=60, by=moderator, session="s"
    )
    await sync_to_async(sanction_lift)(id=sanction.id)
    await lobby_listener()
    await lobby_listener()
    await sync_to_async(sanction_lift)(id=sanction.id)
    with pytest.raises(asyncio.TimeoutError):
        await lobby_listener(timeout=0.3)
