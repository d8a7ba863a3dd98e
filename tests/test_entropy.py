"""The pool of the system's random bytes (chat.entropy)."""

from __future__ import annotations

import os
import threading
import warnings
from collections import Counter

import pytest

from chat import entropy
from chat.entropy import Pool


def counting_urandom(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the calls of os.urandom that chat.entropy makes, by the sizes asked for."""
    calls: list[int] = []
    real = os.urandom

    def urandom(n: int) -> bytes:
        calls.append(n)
        return real(n)

    monkeypatch.setattr(entropy.os, "urandom", urandom)
    return calls


def test_the_pool_draws_a_page_at_a_time_and_hands_each_byte_out_once(monkeypatch):
    calls = counting_urandom(monkeypatch)
    pool = Pool(size=64)
    page = b""
    taken = []
    for _ in range(16):
        taken.append(pool.token_bytes(4))
        if len(calls) == 1 and not page:
            page = pool._bytes
    assert calls == [64]
    assert b"".join(taken) == page  # in order, no byte twice, none skipped
    pool.token_bytes(1)
    assert calls == [64, 64]


def test_a_request_larger_than_the_page_is_drawn_whole(monkeypatch):
    calls = counting_urandom(monkeypatch)
    pool = Pool(size=16)
    assert len(pool.token_bytes(100)) == 100
    assert calls == [100]


def test_a_guest_handshake_costs_no_system_call_of_its_own(monkeypatch):
    """A session id, a channel name's 16 bytes and a guest name: one draw for many sockets
    (secrets made six or seven getrandom calls for them)."""
    calls = counting_urandom(monkeypatch)
    pool = Pool()
    for _ in range(100):
        pool.token_urlsafe(9)
        pool.token_hex(16)
        pool.choice(("a", "b", "c"))
        pool.randbelow(90)
    assert len(calls) <= 2


def test_randbelow_is_uniform_and_in_range():
    pool = Pool()
    counts = Counter(pool.randbelow(6) for _ in range(60_000))
    assert set(counts) == set(range(6))
    # 10,000 expected each; five standard deviations (~91) is far below 500.
    assert all(abs(count - 10_000) < 500 for count in counts.values()), counts


def test_randbelow_refuses_an_empty_range():
    with pytest.raises(ValueError):
        Pool().randbelow(0)


def test_choice_picks_every_item():
    items = tuple("abcdefghijklmnop")
    pool = Pool()
    assert {pool.choice(items) for _ in range(2000)} == set(items)


def test_the_formats_match_the_secrets_module():
    pool = Pool()
    assert len(pool.token_hex(16)) == 32
    int(pool.token_hex(16), 16)
    token = pool.token_urlsafe(9)
    assert len(token) == 12 and "=" not in token
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_threads_never_get_the_same_bytes():
    pool = Pool(size=256)
    seen: list[bytes] = []
    lock = threading.Lock()

    def take() -> None:
        mine = [pool.token_bytes(16) for _ in range(500)]
        with lock:
            seen.extend(mine)

    threads = [threading.Thread(target=take) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(seen)) == len(seen) == 2000


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_does_not_reuse_its_parents_bytes():
    entropy.POOL.token_bytes(1)  # the parent holds a page
    read, write = os.pipe()
    with warnings.catch_warnings():
        # Python warns about fork() in a process with threads; the child only writes, exits.
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the child: its first bytes, to the parent
        try:
            os.write(write, entropy.POOL.token_bytes(32))
        finally:
            os._exit(0)
    os.close(write)
    child = os.read(read, 32)
    os.close(read)
    os.waitpid(pid, 0)
    parent = entropy.POOL.token_bytes(32)  # what the parent hands out next
    assert len(child) == 32
    assert child != parent
