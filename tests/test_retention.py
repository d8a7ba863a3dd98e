"""Retention (chat.retention) and `manage.py prune_messages`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from chat import broadcast, retention
from chat.models import Deletion, Message

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


# --- parsing an age -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30d", 30 * 86400), ("12h", 12 * 3600), ("90m", 90 * 60), ("2w", 14 * 86400), ("45s", 45)],
)
def test_parse_age_reads_each_unit(text: str, seconds: int) -> None:
    assert retention.parse_age(text) == timedelta(seconds=seconds)


def test_parse_age_ignores_case_and_spaces() -> None:
    assert retention.parse_age(" 30D ") == timedelta(days=30)


@pytest.mark.parametrize("text", ["", "0", "0d"])
def test_parse_age_empty_or_zero_keeps_everything(text: str) -> None:
    assert retention.parse_age(text) is None


@pytest.mark.parametrize("text", ["30", "d", "-1d", "1.5d", "30 days", "3y"])
def test_parse_age_refuses_anything_else(text: str) -> None:
    with pytest.raises(ValueError, match="not an age"):
        retention.parse_age(text)


@pytest.mark.parametrize(
    ("seconds", "text"), [(30 * 86400, "30d"), (14 * 86400, "2w"), (36 * 3600, "36h"), (90, "90s")]
)
def test_format_age_uses_the_largest_exact_unit(seconds: int, text: str) -> None:
    assert retention.format_age(timedelta(seconds=seconds)) == text


# --- choosing the cut-off -----------------------------------------------------------------


def test_cutoff_is_now_minus_the_age() -> None:
    assert retention.cutoff(now=NOW, older_than=timedelta(days=30)) == NOW - timedelta(days=30)


def test_no_age_means_no_cutoff() -> None:
    assert retention.cutoff(now=NOW, older_than=None) is None


def test_prune_through_takes_the_lowest_bound() -> None:
    assert retention.prune_through([50, 30]) == 30


def test_prune_through_one_bound() -> None:
    assert retention.prune_through([50]) == 50


def test_prune_through_nothing_when_an_option_keeps_everything() -> None:
    assert retention.prune_through([50, None]) is None


def test_prune_through_nothing_without_options() -> None:
    assert retention.prune_through([]) is None


def test_a_resume_from_before_the_oldest_kept_message_was_cut() -> None:
    assert retention.resume_cut(after=3, oldest=8) is True


def test_a_resume_from_just_before_the_oldest_message_lost_nothing() -> None:
    assert retention.resume_cut(after=7, oldest=8) is False


def test_a_resume_inside_the_kept_history_lost_nothing() -> None:
    assert retention.resume_cut(after=9, oldest=8) is False


def test_a_resume_on_an_empty_table_lost_nothing() -> None:
    assert retention.resume_cut(after=3, oldest=None) is False


# --- pruning ------------------------------------------------------------------------------


@pytest.fixture
def announced(monkeypatch) -> list[int]:
    """The prune events message_prune publishes (not sent: recorded)."""
    seen: list[int] = []

    def record(publisher: Any, *args: Any) -> None:
        assert publisher is broadcast.publish_pruned
        seen.append(args[0])

    monkeypatch.setattr(broadcast, "run_from_sync", record)
    return seen


def make(count: int, *, days_old: float = 0) -> list[int]:
    """Store `count` messages sent `days_old` days before now; their ids."""
    ids = [Message.objects.create(nick="Ana", body=f"m{n}", session="s").id for n in range(count)]
    if days_old:
        sent = timezone.now() - timedelta(days=days_old)
        Message.objects.filter(id__in=ids).update(sent_at=sent)
    return ids


def stored() -> list[int]:
    return list(Message.objects.order_by("id").values_list("id", flat=True))


def prune(**options: Any) -> retention.PruneResult:
    options.setdefault("older_than", None)
    options.setdefault("keep", None)
    return retention.message_prune(now=timezone.now(), **options)


@pytest.mark.django_db
def test_keep_leaves_the_newest_n(announced) -> None:
    ids = make(10)
    result = prune(keep=3)
    assert (stored(), result.count, result.through) == (ids[-3:], 7, ids[6])


@pytest.mark.django_db
def test_keep_more_than_stored_deletes_nothing(announced) -> None:
    ids = make(3)
    assert prune(keep=5).count == 0
    assert stored() == ids


@pytest.mark.django_db
def test_older_than_deletes_only_old_messages(announced) -> None:
    make(4, days_old=40)
    recent = make(3, days_old=1)
    assert prune(older_than=timedelta(days=30)).count == 4
    assert stored() == recent


@pytest.mark.django_db
def test_older_than_with_keep_keeps_the_newest_n_even_when_old(announced) -> None:
    old = make(6, days_old=40)
    assert prune(older_than=timedelta(days=30), keep=2).count == 4
    assert stored() == old[-2:]


@pytest.mark.django_db
def test_older_than_with_keep_keeps_young_messages_beyond_n(announced) -> None:
    make(2, days_old=40)
    recent = make(3, days_old=1)
    prune(older_than=timedelta(days=30), keep=1)
    assert stored() == recent


@pytest.mark.django_db
def test_dry_run_counts_and_deletes_nothing(announced) -> None:
    ids = make(10)
    result = prune(keep=4, dry_run=True, batch_size=4)
    assert (result.count, result.batches, result.through, stored()) == (6, 2, ids[5], ids)
    assert announced == []


@pytest.mark.django_db
def test_a_prune_deletes_in_batches_one_statement_each(announced) -> None:
    make(10)
    with CaptureQueriesContext(connection) as queries:
        result = prune(keep=1, batch_size=3)
    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].startswith("DELETE")]
    assert (result.count, result.batches, len(deletes)) == (9, 3, 3)


@pytest.mark.django_db
def test_a_prune_tells_the_workers_through_which_id(announced) -> None:
    ids = make(5)
    prune(keep=2)
    assert announced == [ids[2]]


@pytest.mark.django_db
def test_a_prune_that_deletes_nothing_tells_nobody(announced) -> None:
    make(2)
    prune(keep=5)
    assert announced == []


@pytest.mark.django_db
def test_no_options_delete_nothing(announced) -> None:
    ids = make(3, days_old=400)
    assert prune().count == 0
    assert stored() == ids


@pytest.mark.django_db
def test_a_prune_leaves_the_deletion_audit_trail(announced) -> None:
    ids = make(3)
    Deletion.objects.create(
        message_id=ids[0] - 1,
        nick="Ana",
        body="gone",
        sent_at=timezone.now(),
        session="s",
        deleted_at=timezone.now(),
        via="page",
    )
    prune(keep=1)
    assert Deletion.objects.count() == 1


@pytest.mark.django_db
def test_an_unpublished_prune_event_is_logged_not_raised(monkeypatch, caplog) -> None:
    def broken(*args: Any) -> None:
        raise ConnectionError("redis down")

    monkeypatch.setattr(broadcast, "run_from_sync", broken)
    make(3)
    assert prune(keep=1).count == 2
    assert "prune event not published" in caplog.text


# --- history after a prune ----------------------------------------------------------------


@pytest.mark.django_db
def test_the_api_after_a_pruned_id_starts_at_the_oldest_kept(client, announced) -> None:
    ids = make(10)
    prune(keep=3)
    body = client.get("/api/messages", {"after": ids[1]}).json()
    assert ([m["id"] for m in body["messages"]], body["has_more"]) == (ids[-3:], False)


@pytest.mark.django_db
def test_paging_the_api_across_a_prune_is_consistent(client, announced) -> None:
    ids = make(10)
    prune(keep=5)
    first = client.get("/api/messages", {"after": ids[0], "limit": 3}).json()
    second = client.get("/api/messages", {"after": first["messages"][-1]["id"], "limit": 3}).json()
    assert [m["id"] for m in first["messages"] + second["messages"]] == ids[-5:]
    assert (first["has_more"], second["has_more"]) == (True, False)


# --- the command --------------------------------------------------------------------------


def run(*args: str) -> str:
    out = StringIO()
    call_command("prune_messages", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_command_dry_run_says_what_it_would_delete(announced) -> None:
    ids = make(5)
    output = run("--keep", "2", "--dry-run")
    assert output.strip() == (
        f"Would delete 3 messages (beyond the newest 2) through id {ids[2]}, "
        "in 1 batches of up to 1000."
    )
    assert stored() == ids


@pytest.mark.django_db
def test_command_older_than(announced) -> None:
    make(3, days_old=2)
    recent = make(2)
    assert run("--older-than", "24h").startswith("Deleted 3 messages (older than 1d)")
    assert stored() == recent


@pytest.mark.django_db
def test_command_batch_size_option(announced) -> None:
    make(5)
    assert run("--keep", "1", "--batch-size", "2").endswith("in 2 batches.\n")


@pytest.mark.django_db
def test_command_without_options_applies_the_settings(settings, announced) -> None:
    settings.CHAT_RETENTION = "30d"
    settings.CHAT_RETENTION_KEEP = 1
    old = make(3, days_old=40)
    run()
    assert stored() == old[-1:]


@pytest.mark.django_db
def test_command_uses_the_batch_setting(settings, announced) -> None:
    settings.CHAT_PRUNE_BATCH = 2
    make(5)
    assert run("--keep", "1").endswith("in 2 batches.\n")


@pytest.mark.django_db
def test_command_without_any_retention_does_nothing(settings, announced) -> None:
    settings.CHAT_RETENTION = ""
    settings.CHAT_RETENTION_KEEP = 0
    ids = make(3, days_old=400)
    assert "nothing to do" in run()
    assert stored() == ids


def test_command_refuses_a_malformed_age() -> None:
    with pytest.raises(CommandError, match="not an age"):
        run("--older-than", "30 days")


def test_command_refuses_a_malformed_setting(settings) -> None:
    settings.CHAT_RETENTION = "forever"
    with pytest.raises(CommandError, match="not an age"):
        run()


def test_command_refuses_a_negative_keep() -> None:
    with pytest.raises(CommandError, match="negative"):
        run("--keep", "-1")
