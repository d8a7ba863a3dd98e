"""Writes (chat.services)."""

from __future__ import annotations

from datetime import UTC

import pytest
from django.db.models.query import QuerySet

from chat.models import Message
from chat.services import message_create

pytestmark = pytest.mark.django_db

EMOJI = "\U0001f600"


def create(**overrides: object) -> tuple[Message, bool]:
    fields = {"nick": "Ana", "body": "hello", "client_id": None, "session": "s1"}
    fields.update(overrides)
    return message_create(**fields)


def test_message_create_stores_a_row():
    create()
    assert Message.objects.count() == 1


def test_message_create_stores_the_fields():
    message, _ = create(nick="Bo", body="hi there", client_id="c-1", session="sess")
    stored = Message.objects.get(pk=message.pk)
    assert (stored.nick, stored.body, stored.client_id, stored.session) == (
        "Bo",
        "hi there",
        "c-1",
        "sess",
    )


def test_message_create_reports_a_new_message_as_created():
    _, created = create(client_id="c-1")
    assert created is True


def test_message_create_sets_sent_at_in_utc():
    message, _ = create()
    assert message.sent_at.tzinfo is not None
    assert message.sent_at.utcoffset() == UTC.utcoffset(None)


def test_message_create_ids_increase():
    first, _ = create()
    second, _ = create()
    assert second.id > first.id


def test_message_create_same_client_id_twice_stores_one_row():
    create(client_id="c-1")
    create(client_id="c-1")
    assert Message.objects.filter(client_id="c-1").count() == 1


def test_message_create_same_client_id_twice_reports_not_created():
    create(client_id="c-1")
    _, created = create(client_id="c-1")
    assert created is False


def test_message_create_same_client_id_returns_the_original():
    original, _ = create(client_id="c-1")
    again, _ = create(client_id="c-1")
    assert again.pk == original.pk


def test_message_create_same_client_id_with_another_body_returns_the_original_body():
    create(client_id="c-1", body="first")
    again, _ = create(client_id="c-1", body="second")
    assert again.body == "first"


def test_message_create_same_client_id_with_another_body_stores_nothing_new():
    create(client_id="c-1", body="first")
    create(client_id="c-1", body="second")
    assert list(Message.objects.values_list("body", flat=True)) == ["first"]


def test_message_create_same_client_id_from_another_session_returns_the_original():
    original, _ = create(client_id="c-1", session="s1", nick="Ana")
    again, _ = create(client_id="c-1", session="s2", nick="Bo")
    assert (again.pk, again.session, again.nick) == (original.pk, "s1", "Ana")


def test_message_create_different_client_ids_store_two_rows():
    create(client_id="c-1")
    create(client_id="c-2")
    assert Message.objects.count() == 2


def test_message_create_without_client_id_stores_each_time():
    create(client_id=None, body="same")
    create(client_id=None, body="same")
    assert Message.objects.filter(client_id=None).count() == 2


def test_message_create_without_client_id_always_reports_created():
    create(client_id=None)
    _, created = create(client_id=None)
    assert created is True


def test_message_create_stores_null_not_empty_string_for_no_client_id():
    message, _ = create(client_id=None)
    assert Message.objects.get(pk=message.pk).client_id is None


def test_message_create_round_trips_unicode_body():
    body = f"{EMOJI} \u200fשלום\u200f a\u200db\u200bc"
    message, _ = create(body=body)
    assert Message.objects.get(pk=message.pk).body == body


def test_message_create_stores_a_2000_emoji_body():
    message, _ = create(body=EMOJI * 2000)
    assert Message.objects.get(pk=message.pk).body == EMOJI * 2000


def test_message_create_race_on_client_id_returns_the_winner(monkeypatch):
    # The other resend is stored between our look-up and our insert.
    winner, _ = create(client_id="c-1", body="winner")
    monkeypatch.setattr(QuerySet, "first", lambda self: None)
    again, created = create(client_id="c-1", body="loser")
    assert (again.pk, created) == (winner.pk, False)


def test_message_create_race_on_client_id_leaves_the_transaction_usable(monkeypatch):
    create(client_id="c-1")
    monkeypatch.setattr(QuerySet, "first", lambda self: None)
    create(client_id="c-1")
    monkeypatch.undo()
    create(client_id="c-2")
    assert Message.objects.count() == 2
