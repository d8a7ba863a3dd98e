"""Reads (chat.selectors)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import AnonymousUser, Permission
from django.utils import timezone

from chat.models import Message, Sanction
from chat.protocol import nick_key
from chat.selectors import (
    account_names,
    can_moderate,
    message_list_after,
    message_list_latest,
    sanctions_active,
)

pytestmark = pytest.mark.django_db


def id_list(rows: list[Message]) -> list[int]:
    return [m.id for m in rows]


# --- message_list_after ---------------------------------------------------------------------


def test_message_list_after_returns_the_ids_above_after(ids):
    assert id_list(message_list_after(after=ids[6], limit=100)) == ids[7:]


def test_message_list_after_zero_returns_everything(ids):
    assert id_list(message_list_after(after=0, limit=100)) == ids


def test_message_list_after_is_oldest_first(ids):
    rows = message_list_after(after=0, limit=100)
    assert [m.body for m in rows] == [f"m{n}" for n in range(10)]


def test_message_list_after_limit_keeps_the_oldest(ids):
    assert id_list(message_list_after(after=ids[1], limit=3)) == ids[2:5]


def test_message_list_after_the_last_id_is_empty(ids):
    assert message_list_after(after=ids[-1], limit=100) == []


def test_message_list_after_an_id_beyond_the_last_is_empty(ids):
    assert message_list_after(after=ids[-1] + 1000, limit=100) == []


def test_message_list_after_on_an_empty_table_is_empty():
    assert message_list_after(after=0, limit=10) == []


def test_message_list_after_limit_zero_is_empty(ids):
    assert message_list_after(after=0, limit=0) == []


def test_message_list_after_skips_deleted_ids(ids):
    Message.objects.filter(id=ids[5]).delete()
    assert id_list(message_list_after(after=ids[3], limit=100)) == [ids[4], *ids[6:]]


def test_message_list_after_queries_once_and_never_again_when_used(ids, django_assert_num_queries):
    # Async callers hand the rows to code outside the database thread: nothing lazy left.
    with django_assert_num_queries(1):
        rows = message_list_after(after=0, limit=3)
    with django_assert_num_queries(0):
        assert len(rows) == 3
        assert id_list(rows) == ids[:3]
        assert id_list(rows) == ids[:3]  # a second pass, still no query


# --- message_list_latest --------------------------------------------------------------------


def test_message_list_latest_returns_the_newest_n(ids):
    rows, _ = message_list_latest(limit=3)
    assert id_list(rows) == ids[-3:]


def test_message_list_latest_is_oldest_first(ids):
    rows, _ = message_list_latest(limit=3)
    assert [m.body for m in rows] == ["m7", "m8", "m9"]


def test_message_list_latest_is_truncated_when_older_messages_exist(ids):
    _, truncated = message_list_latest(limit=3)
    assert truncated is True


def test_message_list_latest_is_not_truncated_when_all_fit(ids):
    rows, truncated = message_list_latest(limit=10)
    assert (id_list(rows), truncated) == (ids, False)


def test_message_list_latest_is_not_truncated_with_room_to_spare(ids):
    _, truncated = message_list_latest(limit=50)
    assert truncated is False


def test_message_list_latest_on_an_empty_table():
    assert message_list_latest(limit=5) == ([], False)


def test_message_list_latest_after_returns_the_newest_above_after(ids):
    rows, _ = message_list_latest(limit=3, after=ids[2])
    assert id_list(rows) == ids[-3:]


def test_message_list_latest_after_is_truncated_when_more_above_after(ids):
    _, truncated = message_list_latest(limit=3, after=ids[2])
    assert truncated is True


def test_message_list_latest_after_is_not_truncated_when_all_above_after_fit(ids):
    rows, truncated = message_list_latest(limit=3, after=ids[6])
    assert (id_list(rows), truncated) == (ids[7:], False)


def test_message_list_latest_after_the_last_id_is_empty(ids):
    assert message_list_latest(limit=3, after=ids[-1]) == ([], False)


def test_message_list_latest_limit_zero_returns_no_rows(ids):
    rows, _ = message_list_latest(limit=0)
    assert rows == []


def test_message_list_latest_limit_zero_is_truncated_when_messages_exist(ids):
    _, truncated = message_list_latest(limit=0)
    assert truncated is True


def test_message_list_latest_limit_zero_is_not_truncated_on_an_empty_table():
    assert message_list_latest(limit=0) == ([], False)


def test_message_list_latest_limit_zero_after_the_last_id_is_not_truncated(ids):
    assert message_list_latest(limit=0, after=ids[-1]) == ([], False)


def test_message_list_latest_negative_limit_returns_no_rows(ids):
    rows, _ = message_list_latest(limit=-1)
    assert rows == []


# --- moderation: sanctions_active, account_names, can_moderate ------------------------------


def _sanction(**fields):
    fields.setdefault("kind", "mute")
    fields.setdefault("session", "s")
    fields.setdefault("expires_at", timezone.now() + timedelta(minutes=5))
    return Sanction.objects.create(**fields)


def test_sanctions_active_lists_one_in_force():
    sanction = _sanction()
    assert sanctions_active(now=timezone.now()) == [sanction]


def test_sanctions_active_leaves_out_an_expired_one():
    _sanction(expires_at=timezone.now() - timedelta(seconds=1))
    assert sanctions_active(now=timezone.now()) == []


def test_sanctions_active_leaves_out_a_lifted_one():
    _sanction(lifted_at=timezone.now())
    assert sanctions_active(now=timezone.now()) == []


def test_sanctions_active_answers_for_the_moment_given():
    sanction = _sanction()
    assert sanctions_active(now=sanction.expires_at - timedelta(seconds=1)) == [sanction]
    assert sanctions_active(now=sanction.expires_at) == []


def test_account_names_are_normalised(django_user_model):
    django_user_model.objects.create_user(username="Alice")
    django_user_model.objects.create_user(username="BOB")
    assert account_names() == {"alice", "bob"}


def test_account_names_match_a_look_alike_nickname(django_user_model):
    django_user_model.objects.create_user(username="Admin")
    assert nick_key(" ＡＤＭＩＮ ") in account_names()


def test_account_names_of_no_accounts_is_empty():
    assert account_names() == set()


def test_can_moderate_a_staff_account(moderator):
    assert can_moderate(moderator) is True


def test_can_moderate_with_the_permission(django_user_model):
    user = django_user_model.objects.create_user(username="helper")
    user.user_permissions.add(Permission.objects.get(codename="moderate_message"))
    assert can_moderate(django_user_model.objects.get(pk=user.pk)) is True


def test_can_moderate_a_superuser(django_user_model):
    assert can_moderate(django_user_model.objects.create_superuser(username="root")) is True


def test_cannot_moderate_a_plain_account(member):
    assert can_moderate(member) is False


def test_cannot_moderate_an_inactive_staff_account(moderator):
    moderator.is_active = False
    assert can_moderate(moderator) is False


def test_cannot_moderate_anonymous():
    assert can_moderate(AnonymousUser()) is False


def test_cannot_moderate_nobody():
    assert can_moderate(None) is False
