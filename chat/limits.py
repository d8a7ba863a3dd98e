"""Limits as plain objects and functions, tested without sockets.

Per socket: `RateLimiter` (a sliding log) and `Throttle`. Per client address, across
workers: the sliding-window-counter rule below (`window_at`, `sliding_allows`,
`sliding_retry_after`), which chat.address_limits applies in Redis and `WindowCounter`
applies in this process.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable


class RateLimiter:
    """At most `rate` events in any `period` seconds (a sliding window); rate 0 = no limit.

    Refusals are counted as strikes; `abusive` turns true when a client keeps sending after
    being told to wait (more refusals than `rate` in a row), so the socket can be closed.
    One per socket: slotted, and its window is made on the first event.
    """

    __slots__ = ("_times", "clock", "period", "rate", "strikes")

    def __init__(
        self, *, rate: int, period: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.period = period
        self.clock = clock
        self._times: deque[float] | None = None
        self.strikes = 0

    def check(self) -> float | None:
        """Record an attempt; None if allowed, else seconds until the next one is."""
        if not self.rate or not self.period:
            return None
        now = self.clock()
        if self._times is None:
            self._times = deque()
        while self._times and now - self._times[0] >= self.period:
            self._times.popleft()
        if len(self._times) < self.rate:
            self._times.append(now)
            self.strikes = 0
            return None
        self.strikes += 1
        return max(0.0, self._times[0] + self.period - now)

    def refund(self) -> None:
        """Take back the last allowed event (a later limit refused it, so it was not sent)."""
        if self._times:
            self._times.pop()

    @property
    def abusive(self) -> bool:
        """True when refusals keep coming: more than `rate` (at least 10) in a row."""
        return bool(self.rate) and self.strikes > max(self.rate, 10)


class Throttle:
    """Lets one event through per `interval` seconds (for typing notices)."""

    __slots__ = ("_last", "clock", "interval")

    def __init__(self, *, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self._last: float | None = None

    def allow(self) -> bool:
        """True if the event may go out now."""
        now = self.clock()
        if self._last is not None and now - self._last < self.interval:
            return False
        self._last = now
        return True


# --- Sliding window counter (per address, across workers) ----------------------------------
#
# Two counters per key: this fixed window's events and the previous window's. The events of
# the last `period` seconds are estimated as this window's plus the previous window's in
# proportion to how much of it the sliding period still covers (as if those were spread
# evenly). Two integers per key, so it fits Redis; and unlike one fixed window, a burst at
# the end of one window and the start of the next cannot pass twice the rate.


def window_at(now: float, period: float) -> tuple[int, float]:
    """The fixed window `now` falls in (its index) and the seconds elapsed in it."""
    index = math.floor(now / period)
    return index, now - index * period


def previous_weight(elapsed: float, period: float) -> float:
    """The share of the previous window that the last `period` seconds still cover."""
    return 1.0 - elapsed / period


def sliding_allows(*, previous: int, current: int, weight: float, rate: int) -> bool:
    """True when one more event keeps the estimate within `rate`.

    chat.address_limits' Lua script computes exactly this expression, in this order, so
    that Redis and this process agree to the last bit.
    """
    return previous * weight + current + 1 <= rate


def sliding_retry_after(
    *, previous: int, current: int, elapsed: float, period: float, rate: int
) -> float:
    """Seconds until `sliding_allows` turns true, if nothing else is counted meanwhile."""
    if current + 1 <= rate:
        # Room in this window once enough of the previous one has slid out.
        if previous <= 0:
            return 0.0
        return max(0.0, period * (1.0 - (rate - current - 1) / previous) - elapsed)
    # This window is full: in the next one, this window's events count as `previous`.
    if rate <= 0:
        return math.inf
    return (period - elapsed) + max(0.0, period * (1.0 - (rate - 1) / current))


class WindowCounter:
    """The sliding-window-counter rule for many keys in this process's memory.

    Keys idle for two windows are forgotten when a new window starts, so memory holds only
    the keys active in the last two windows.
    """

    __slots__ = ("_counts", "_window", "clock", "period", "rate")

    def __init__(self, *, rate: int, period: float, clock: Callable[[], float] = time.time) -> None:
        self.rate = rate
        self.period = period
        self.clock = clock
        # key -> (window index, count in it, count in the window before it)
        self._counts: dict[str, tuple[int, int, int]] = {}
        self._window: int | None = None

    def check(self, key: str) -> float | None:
        """Count one event for `key`; None if allowed, else seconds until one would be."""
        if not self.rate or not self.period:
            return None
        index, elapsed = window_at(self.clock(), self.period)
        if self._window != index:
            self._window = index
            self._counts = {k: v for k, v in self._counts.items() if v[0] >= index - 1}
        previous, current = self.counts(key, index)
        if sliding_allows(
            previous=previous,
            current=current,
            weight=previous_weight(elapsed, self.period),
            rate=self.rate,
        ):
            self._counts[key] = (index, current + 1, previous)
            return None
        return sliding_retry_after(
            previous=previous, current=current, elapsed=elapsed, period=self.period, rate=self.rate
        )

    def counts(self, key: str, index: int) -> tuple[int, int]:
        """The previous and the current window's counts of `key` in window `index`."""
        entry = self._counts.get(key)
        if entry is None:
            return 0, 0
        window, current, previous = entry
        if window == index:
            return previous, current
        if window == index - 1:
            return current, 0
        return 0, 0

    def __len__(self) -> int:
        return len(self._counts)
