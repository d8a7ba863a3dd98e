"""Guest names and connection ids (chat.naming)."""

from __future__ import annotations

import re

from chat.models import Message
from chat.naming import guest_nick, new_session_id
from chat.protocol import MAX_NICK, validate_nick

SAMPLES = 2000


def test_guest_nick_passes_validate_nick():
    for _ in range(SAMPLES):
        nick = guest_nick()
        assert validate_nick(nick) == nick


def test_guest_nick_fits_the_nick_limit():
    assert max(len(guest_nick()) for _ in range(SAMPLES)) <= MAX_NICK


def test_guest_nick_is_adjective_animal_and_two_digits():
    pattern = re.compile(r"[A-Z][a-z]+ [A-Z][a-z]+ [1-9][0-9]")
    for _ in range(SAMPLES):
        assert pattern.fullmatch(guest_nick())


def test_guest_nick_varies():
    assert len({guest_nick() for _ in range(200)}) > 100


def test_session_ids_are_unique():
    ids = [new_session_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)


def test_session_id_is_url_safe():
    for _ in range(SAMPLES):
        assert re.fullmatch(r"[A-Za-z0-9_-]+", new_session_id())


def test_session_id_fits_the_session_column():
    limit = Message._meta.get_field("session").max_length
    assert max(len(new_session_id()) for _ in range(SAMPLES)) <= limit


def test_session_id_is_random_in_every_character():
    # At least 64 bits of randomness: 11 or more characters, each one of 64 at random
    # (token_urlsafe), so that every position takes nearly every value over many ids.
    ids = [new_session_id() for _ in range(SAMPLES)]
    assert min(len(i) for i in ids) >= 11
    for position in range(11):
        assert len({i[position] for i in ids}) >= 56, f"character {position} is not random"
