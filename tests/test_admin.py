"""The moderators' admin (chat.admin): deletes retract live, records are read-only."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from chat import protocol
from chat.models import Deletion, Message, Sanction

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent


def stored(n: int = 3, **fields: object) -> list[int]:
    fields = {"nick": "Ana", "session": "s1", **fields}
    return [Message.objects.create(body=f"m{i}", **fields).id for i in range(n)]


@pytest.fixture
def staff(moderator) -> Client:
    client = Client()
    client.force_login(moderator)
    return client


async def astaff(moderator) -> Client:
    client = Client()
    await sync_to_async(client.force_login)(moderator)
    return client


# --- access --------------------------------------------------------------------------------


def test_the_message_list_opens_for_a_moderator(staff):
    stored(1)
    assert staff.get(reverse("admin:chat_message_changelist")).status_code == 200


def test_the_message_list_is_closed_to_a_member(member):
    client = Client()
    client.force_login(member)
    response = client.get(reverse("admin:chat_message_changelist"))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_the_message_search_finds_by_text(staff):
    Message.objects.create(nick="Ana", body="needle here", session="s")
    Message.objects.create(nick="Bo", body="haystack", session="s")
    response = staff.get(reverse("admin:chat_message_changelist"), {"q": "needle"})
    assert [m.body for m in response.context["cl"].result_list] == ["needle here"]


def test_the_message_search_finds_by_nickname(staff):
    Message.objects.create(nick="Ana", body="one", session="s")
    Message.objects.create(nick="Bo", body="two", session="s")
    response = staff.get(reverse("admin:chat_message_changelist"), {"q": "bo"})
    assert [m.nick for m in response.context["cl"].result_list] == ["Bo"]


def test_the_message_list_filters_guests(staff, member):
    Message.objects.create(nick="Member", body="signed", session="s", user=member)
    Message.objects.create(nick="guest", body="anon", session="s")
    response = staff.get(reverse("admin:chat_message_changelist"), {"sender": "guest"})
    assert [m.body for m in response.context["cl"].result_list] == ["anon"]


def test_the_message_list_filters_by_time(staff):
    old, new = stored(2)
    Message.objects.filter(id=old).update(sent_at=timezone.now() - timedelta(days=30))
    response = staff.get(
        reverse("admin:chat_message_changelist"),
        {"sent_at__gte": str(timezone.now() - timedelta(days=1))},
    )
    assert [m.id for m in response.context["cl"].result_list] == [new]


def test_a_message_cannot_be_added_in_the_admin(staff):
    assert staff.get(reverse("admin:chat_message_add")).status_code == 403


def test_a_message_cannot_be_edited_in_the_admin(staff):
    (message_id,) = stored(1)
    url = reverse("admin:chat_message_change", args=[message_id])
    staff.post(url, {"nick": "x", "body": "edited", "session": "s"})
    assert Message.objects.get(id=message_id).body == "m0"


# --- deleting ------------------------------------------------------------------------------


def test_an_admin_delete_records_the_deletion(staff, moderator):
    (message_id,) = stored(1)
    staff.post(reverse("admin:chat_message_delete", args=[message_id]), {"post": "yes"})
    record = Deletion.objects.get()
    assert (record.message_id, record.deleted_by, record.via) == (message_id, moderator, "admin")


def test_an_admin_bulk_delete_records_each_deletion(staff):
    ids = stored(3)
    staff.post(
        reverse("admin:chat_message_changelist"),
        {"action": "delete_selected", "_selected_action": ids[:2], "post": "yes"},
    )
    assert sorted(Deletion.objects.values_list("message_id", flat=True)) == ids[:2]
    assert list(Message.objects.values_list("id", flat=True)) == ids[2:]


@pytest.mark.django_db(transaction=True)
async def test_an_admin_delete_retracts_the_message_on_open_pages(moderator, lobby_listener):
    client = await astaff(moderator)
    (message_id,) = await sync_to_async(stored)(1)
    url = reverse("admin:chat_message_delete", args=[message_id])
    response = await sync_to_async(client.post)(url, {"post": "yes"})
    assert response.status_code == 302
    event = await lobby_listener()
    assert event["text"] == protocol.retract_frame(message_id)


@pytest.mark.django_db(transaction=True)
async def test_an_admin_bulk_delete_retracts_each_message_on_open_pages(moderator, lobby_listener):
    client = await astaff(moderator)
    ids = await sync_to_async(stored)(3)
    await sync_to_async(client.post)(
        reverse("admin:chat_message_changelist"),
        {"action": "delete_selected", "_selected_action": ids, "post": "yes"},
    )
    retracted = [(await lobby_listener())["retract"] for _ in ids]
    assert retracted == ids


@pytest.mark.django_db(transaction=True)
async def test_an_admin_delete_confirmation_page_retracts_nothing(moderator, lobby_listener):
    client = await astaff(moderator)
    (message_id,) = await sync_to_async(stored)(1)
    await sync_to_async(client.get)(reverse("admin:chat_message_delete", args=[message_id]))
    with pytest.raises(asyncio.TimeoutError):
        await lobby_listener(timeout=0.3)


# --- deletions: read-only ------------------------------------------------------------------


def test_the_deletion_list_shows_the_record(staff, moderator):
    from chat.moderation import message_delete

    (message_id,) = stored(1)
    message_delete(ids=[message_id], by=moderator, via="page")
    response = staff.get(reverse("admin:chat_deletion_changelist"))
    assert [d.message_id for d in response.context["cl"].result_list] == [message_id]


def test_a_deletion_cannot_be_added(staff):
    assert staff.get(reverse("admin:chat_deletion_add")).status_code == 403


def test_a_deletion_cannot_be_deleted(staff, moderator):
    from chat.moderation import message_delete

    (message_id,) = stored(1)
    message_delete(ids=[message_id], by=moderator, via="page")
    record = Deletion.objects.get()
    response = staff.post(reverse("admin:chat_deletion_delete", args=[record.pk]), {"post": "yes"})
    assert response.status_code == 403
    assert Deletion.objects.exists()


# --- sanctions -----------------------------------------------------------------------------


def sanction_form(**fields: object) -> dict[str, object]:
    return {"kind": "mute", "user": "", "session": "", "address": "", "seconds": 600,
            "reason": "", **fields}  # fmt: skip


def test_a_sanction_added_in_the_admin_is_stored(staff, moderator):
    staff.post(reverse("admin:chat_sanction_add"), sanction_form(address="192.0.2.7"))
    sanction = Sanction.objects.get()
    assert (sanction.kind, sanction.address, sanction.created_by) == (
        "mute",
        "192.0.2.7",
        moderator,
    )


def test_a_sanction_added_in_the_admin_gets_its_duration(staff):
    staff.post(reverse("admin:chat_sanction_add"), sanction_form(session="abc", seconds=120))
    sanction = Sanction.objects.get()
    assert 119 <= (sanction.expires_at - sanction.created_at).total_seconds() <= 121


def test_the_admin_refuses_a_sanction_on_a_moderator(staff, django_user_model):
    other = django_user_model.objects.create_user(username="mod2", is_staff=True)
    response = staff.post(reverse("admin:chat_sanction_add"), sanction_form(user=other.pk))
    assert response.status_code == 200
    assert "moderator cannot be muted" in response.content.decode()
    assert not Sanction.objects.exists()


def test_the_admin_refuses_a_sanction_without_a_target(staff):
    response = staff.post(reverse("admin:chat_sanction_add"), sanction_form())
    assert "exactly one target" in response.content.decode()
    assert not Sanction.objects.exists()


def test_the_admin_refuses_a_sanction_with_two_targets(staff, member):
    response = staff.post(
        reverse("admin:chat_sanction_add"), sanction_form(user=member.pk, session="s")
    )
    assert "exactly one target" in response.content.decode()


def test_the_lift_action_ends_a_sanction(staff, moderator):
    from chat.moderation import sanction_create

    sanction = sanction_create(kind="ban", seconds=600, by=moderator, session="s")
    staff.post(
        reverse("admin:chat_sanction_changelist"),
        {"action": "lift", "_selected_action": [sanction.pk]},
    )
    assert Sanction.objects.get().lifted_by == moderator


def test_a_sanction_cannot_be_deleted(staff, moderator):
    from chat.moderation import sanction_create

    sanction = sanction_create(kind="ban", seconds=600, by=moderator, session="s")
    response = staff.post(reverse("admin:chat_sanction_delete", args=[sanction.pk]), {"post": "1"})
    assert response.status_code == 403


@pytest.mark.django_db(transaction=True)
async def test_a_sanction_added_in_the_admin_tells_the_workers(moderator, lobby_listener):
    client = await astaff(moderator)
    await sync_to_async(client.post)(
        reverse("admin:chat_sanction_add"), sanction_form(session="abc")
    )
    assert await lobby_listener() == {"type": "chat.sanctions"}


@pytest.mark.django_db(transaction=True)
async def test_a_sanction_lifted_in_the_admin_tells_the_workers(moderator, lobby_listener):
    from chat.moderation import sanction_create

    client = await astaff(moderator)
    sanction = await sync_to_async(sanction_create)(
        kind="ban", seconds=600, by=moderator, session="s"
    )
    await lobby_listener()
    await sync_to_async(client.post)(
        reverse("admin:chat_sanction_changelist"),
        {"action": "lift", "_selected_action": [sanction.pk]},
    )
    assert await lobby_listener() == {"type": "chat.sanctions"}


# --- the admin's address -------------------------------------------------------------------


def _admin_index(**env: str) -> str:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.urls import reverse; "
            "print(reverse('admin:index'))",
        ],
        cwd=ROOT,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "REDIS_"))},
            "DJANGO_SETTINGS_MODULE": "chatproject.settings",
            "DJANGO_DEBUG": "true",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_the_admin_is_at_admin_by_default():
    assert _admin_index() == "/admin/"


def test_the_admin_moves_with_django_admin_url():
    assert _admin_index(DJANGO_ADMIN_URL="/back-office/x7") == "/back-office/x7/"
