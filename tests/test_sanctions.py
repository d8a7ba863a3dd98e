"""The worker's in-memory book of mutes and bans (chat.sanctions): plain data, no sockets."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from chat.models import Sanction
from chat.sanctions import Entry, SanctionBook, address_key

NOW = 1_000_000.0
NOBODY = {"user_id": None, "session": None, "address": None}


def book(*entries: Entry) -> SanctionBook:
    return SanctionBook(entries)


def ask(b: SanctionBook, what: str, **target: object) -> float | None:
    return getattr(b, what)(**{**NOBODY, **target}, now=NOW)


def test_an_empty_book_mutes_nobody():
    assert ask(book(), "muted", user_id=1, session="s", address="192.0.2.1") is None


def test_an_empty_book_is_false():
    assert not book()


def test_a_book_with_an_entry_is_true():
    assert book(Entry(kind="mute", expires_at=NOW + 5, session="s"))


def test_a_muted_session_gets_the_seconds_left():
    b = book(Entry(kind="mute", expires_at=NOW + 30, session="s"))
    assert ask(b, "muted", session="s") == 30


def test_a_muted_account_gets_the_seconds_left():
    b = book(Entry(kind="mute", expires_at=NOW + 12.5, user_id=7))
    assert ask(b, "muted", user_id=7) == 12.5


def test_a_muted_address_gets_the_seconds_left():
    b = book(Entry(kind="mute", expires_at=NOW + 9, address="192.0.2.1"))
    assert ask(b, "muted", address="192.0.2.1") == 9


def test_another_session_is_not_muted():
    b = book(Entry(kind="mute", expires_at=NOW + 30, session="s"))
    assert ask(b, "muted", session="t", user_id=1, address="192.0.2.1") is None


def test_a_mute_is_not_a_ban():
    b = book(Entry(kind="mute", expires_at=NOW + 30, session="s"))
    assert ask(b, "banned", session="s") is None


def test_a_banned_address_gets_the_seconds_left():
    b = book(Entry(kind="ban", expires_at=NOW + 300, address="198.51.100.4"))
    assert ask(b, "banned", address="198.51.100.4") == 300


def test_a_banned_account_gets_the_seconds_left():
    b = book(Entry(kind="ban", expires_at=NOW + 60, user_id=3))
    assert ask(b, "banned", user_id=3) == 60


def test_a_ban_also_mutes():
    b = book(Entry(kind="ban", expires_at=NOW + 60, user_id=3))
    assert ask(b, "muted", user_id=3) == 60


def test_an_expired_mute_is_ignored():
    b = book(Entry(kind="mute", expires_at=NOW - 1, session="s"))
    assert ask(b, "muted", session="s") is None


def test_a_mute_ending_now_is_over():
    b = book(Entry(kind="mute", expires_at=NOW, session="s"))
    assert ask(b, "muted", session="s") is None


def test_an_expired_ban_is_ignored():
    b = book(Entry(kind="ban", expires_at=NOW - 0.001, address="192.0.2.1"))
    assert ask(b, "banned", address="192.0.2.1") is None


def test_the_later_end_wins_for_one_target():
    b = book(
        Entry(kind="mute", expires_at=NOW + 10, session="s"),
        Entry(kind="mute", expires_at=NOW + 40, session="s"),
    )
    assert ask(b, "muted", session="s") == 40


def test_the_later_end_wins_across_targets():
    b = book(
        Entry(kind="mute", expires_at=NOW + 10, session="s"),
        Entry(kind="mute", expires_at=NOW + 90, address="192.0.2.1"),
    )
    assert ask(b, "muted", session="s", address="192.0.2.1") == 90


def test_an_ipv6_address_matches_in_another_spelling():
    b = book(Entry(kind="ban", expires_at=NOW + 5, address="2001:db8::1"))
    assert ask(b, "banned", address="2001:DB8:0:0::1") == 5


def test_an_ipv4_mapped_address_matches_its_ipv4():
    b = book(Entry(kind="ban", expires_at=NOW + 5, address="192.0.2.1"))
    assert ask(b, "banned", address="::ffff:192.0.2.1") == 5


def test_an_unparsable_address_is_compared_as_text():
    assert address_key("unix-socket") == "unix-socket"


def test_an_unknown_kind_is_ignored():
    b = book(Entry(kind="kick", expires_at=NOW + 5, session="s"))
    assert not b


@pytest.mark.django_db
def test_a_book_from_stored_sanctions_answers_for_them(member):
    ends = timezone.now() + timedelta(seconds=100)
    Sanction.objects.create(kind="ban", user=member, expires_at=ends)
    b = SanctionBook.from_sanctions(Sanction.objects.all())
    left = b.banned(user_id=member.id, session=None, address=None, now=ends.timestamp() - 40)
    assert left == pytest.approx(40)
