"""Writes (chat.services)."""

from __future__ import annotations

import threading
from datetime import UTC

import pytest
from django.db import connection, connections
from django.db.models.query import QuerySet
from django.test.utils import CaptureQueriesContext

from chat import services
from chat.models import Message
from chat.services import NewMessage, message_create, message_create_many

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


def new(client_id: str | None = None, body: str = "hello", **overrides: str) -> NewMessage:
    fields = {"nick": "Ana", "session": "s1"} | overrides
    return NewMessage(body=body, client_id=client_id, **fields)


@pytest.fixture(params=["insert_returning", "one_by_one"])
def each_path(request, monkeypatch):
    """Run a test on both write paths: one INSERT ... RETURNING, and the per-item fallback."""
    if request.param == "one_by_one":
        monkeypatch.setattr(services, "_can_insert_returning", lambda connection: False)
    return request.param


def test_message_create_many_with_no_items_runs_no_query():
    with CaptureQueriesContext(connection) as queries:
        assert message_create_many(items=[]) == []
    assert len(queries) == 0


def test_message_create_many_stores_every_item_with_one_statement():
    with CaptureQueriesContext(connection) as queries:
        message_create_many(items=[new(f"c-{i}") for i in range(5)] + [new(None), new(None)])
    assert len(queries) == 1
    assert queries[0]["sql"].startswith("INSERT INTO")
    assert Message.objects.count() == 7


def test_message_create_many_reads_stored_client_ids_with_one_more_select():
    message_create_many(items=[new("c-1"), new("c-2")])
    with CaptureQueriesContext(connection) as queries:
        message_create_many(items=[new("c-1"), new("c-2"), new("c-3")])
    assert [q["sql"].split()[0] for q in queries] == ["INSERT", "SELECT"]


def test_message_create_many_returns_results_in_input_order(each_path):
    results = message_create_many(items=[new("c-2", "b"), new(None, "n"), new("c-1", "a")])
    assert [m.body for m, _ in results] == ["b", "n", "a"]


def test_message_create_many_ids_increase_in_input_order(each_path):
    items = [new(f"c-{i}" if i % 3 else None, f"m{i}") for i in range(20)]
    ids = [m.id for m, _ in message_create_many(items=items)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 20


def test_message_create_many_reports_new_items_as_created(each_path):
    results = message_create_many(items=[new("c-1"), new(None)])
    assert [created for _, created in results] == [True, True]


def test_message_create_many_returns_what_is_stored(each_path):
    (message, _), _ = message_create_many(
        items=[new("c-1", "hi", nick="Bo", session="sess"), new(None)]
    )
    stored = Message.objects.get(pk=message.pk)
    assert (message.nick, message.body, message.client_id, message.session, message.sent_at) == (
        stored.nick,
        stored.body,
        stored.client_id,
        stored.session,
        stored.sent_at,
    )


def test_message_create_many_sets_sent_at_in_utc(each_path):
    [(message, _)] = message_create_many(items=[new("c-1")])
    assert message.sent_at.utcoffset() == UTC.utcoffset(None)


def test_message_create_many_returns_messages_as_loaded_from_the_database(each_path):
    [(message, _)] = message_create_many(items=[new("c-1")])
    assert (message._state.adding, message._state.db) == (False, "default")


def test_message_create_many_same_client_id_twice_in_one_call_stores_one_row(each_path):
    message_create_many(items=[new("c-1", "first"), new("c-1", "second")])
    assert list(Message.objects.values_list("body", flat=True)) == ["first"]


def test_message_create_many_same_client_id_twice_in_one_call_returns_the_first(each_path):
    (first, _), (second, _) = message_create_many(items=[new("c-1", "a"), new("c-1", "b")])
    assert (second.pk, second.body) == (first.pk, "a")


def test_message_create_many_same_client_id_twice_in_one_call_reports_the_second_not_created(
    each_path,
):
    results = message_create_many(items=[new("c-1"), new("c-1")])
    assert [created for _, created in results] == [True, False]


def test_message_create_many_stored_client_id_returns_the_original(each_path):
    [(original, _)] = message_create_many(items=[new("c-1", "first", session="s1")])
    [(again, _)] = message_create_many(items=[new("c-1", "second", session="s2")])
    assert (again.pk, again.body, again.session) == (original.pk, "first", "s1")


def test_message_create_many_stored_client_id_reports_not_created(each_path):
    message_create_many(items=[new("c-1")])
    [(_, created)] = message_create_many(items=[new("c-1")])
    assert created is False


def test_message_create_many_stored_client_id_twice_in_one_call_reports_both_not_created(
    each_path,
):
    message_create_many(items=[new("c-1")])
    results = message_create_many(items=[new("c-1"), new("c-1")])
    assert [created for _, created in results] == [False, False]


def test_message_create_many_without_client_id_stores_each_item(each_path):
    message_create_many(items=[new(None, "same"), new(None, "same")])
    assert Message.objects.filter(client_id=None).count() == 2


def test_message_create_many_mixes_new_stored_and_anonymous_items_in_input_order(each_path):
    [(stored, _)] = message_create_many(items=[new("c-old", "old")])
    items = [new(None, "n1"), new("c-old", "x"), new("c-new", "new"), new(None, "n2")]
    results = message_create_many(items=items)
    assert [(m.body, created) for m, created in results] == [
        ("n1", True),
        ("old", False),
        ("new", True),
        ("n2", True),
    ]
    assert results[1][0].pk == stored.pk


@pytest.mark.django_db(transaction=True)
def test_message_create_many_racing_threads_store_each_client_id_once():
    # Four connections send the same batch at the same moment, as four workers would with
    # one client's resends: the unique index lets exactly one of them store each message.
    items = [new(f"c-{i}", f"m{i}") for i in range(20)]
    start = threading.Barrier(4)
    results: list[list[tuple[Message, bool]]] = []
    errors: list[BaseException] = []

    def send() -> None:
        try:
            start.wait(timeout=10)
            results.append(message_create_many(items=items))
        except BaseException as exc:
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert Message.objects.count() == 20
    for i in range(20):
        answers = [result[i] for result in results]
        assert len({message.pk for message, _ in answers}) == 1
        assert [created for _, created in answers].count(True) == 1


def test_message_create_records_the_sender_account(member):
    message, _ = create(user_id=member.id)
    assert Message.objects.get(pk=message.pk).user == member


def test_message_create_without_an_account_stores_none():
    message, _ = create()
    assert Message.objects.get(pk=message.pk).user is None


def test_message_create_many_records_each_sender_account(member):
    items = [
        NewMessage(nick="a", body="x", client_id=None, session="s", user_id=member.id),
        NewMessage(nick="b", body="y", client_id=None, session="s"),
    ]
    stored = [m for m, _ in message_create_many(items=items)]
    assert [m.user_id for m in Message.objects.filter(pk__in=[m.pk for m in stored])] == [
        member.id,
        None,
    ]
