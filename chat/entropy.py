"""Random bytes from the operating system's generator, drawn a page at a time.

Each `os.urandom` call is a system call (getrandom), and `secrets.choice` makes one per try:
a guest handshake made six or seven of them for its session id, its channel name and its
guest name. The bytes here are the same bytes (the kernel's CSPRNG), read 4 KiB at a time
and handed out in order, each byte once. A child process made by `fork` starts with an
empty pool, so that it never hands out its parent's bytes.
"""

from __future__ import annotations

import base64
import os
import threading
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")

POOL_BYTES = 4096


class Pool:
    """Bytes of `os.urandom`, each handed out once."""

    def __init__(self, size: int = POOL_BYTES) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._bytes = b""
        self._pos = 0

    def clear(self) -> None:
        """Forget what is left (a forked child must not reuse its parent's bytes)."""
        self._bytes = b""
        self._pos = 0

    def token_bytes(self, n: int) -> bytes:
        """`n` random bytes, as `secrets.token_bytes(n)`."""
        with self._lock:
            start = self._pos
            if start + n > len(self._bytes):
                self._bytes = os.urandom(max(self.size, n))
                start = 0
            self._pos = start + n
            return self._bytes[start : start + n]

    def randbelow(self, n: int) -> int:
        """A random int in [0, n), as `secrets.randbelow(n)` (rejection sampling: uniform)."""
        if n <= 0:
            raise ValueError("n must be positive")
        bits = (n - 1).bit_length()
        size = (bits + 7) // 8
        mask = (1 << bits) - 1
        while True:
            value = int.from_bytes(self.token_bytes(size)) & mask
            if value < n:
                return value

    def choice(self, items: Sequence[T]) -> T:
        """A random item, as `secrets.choice`."""
        return items[self.randbelow(len(items))]

    def token_hex(self, n: int) -> str:
        """`n` random bytes as hex, as `secrets.token_hex(n)`."""
        return self.token_bytes(n).hex()

    def token_urlsafe(self, n: int) -> str:
        """`n` random bytes in URL-safe base64 without padding, as `secrets.token_urlsafe(n)`."""
        return base64.urlsafe_b64encode(self.token_bytes(n)).rstrip(b"=").decode("ascii")


POOL = Pool()
os.register_at_fork(after_in_child=POOL.clear)
