"""Per-socket limits as plain objects, tested without sockets."""

from __future__ import annotations

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
