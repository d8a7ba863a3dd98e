"""Rate limits per client address, shared by every worker through Redis.

The per-socket limit (chat.limits.RateLimiter) lets 20 sockets from one address send 20
times the rate; these limits count an address's events on every socket and every worker:
chat messages (CHAT_RATE_PER_ADDRESS per CHAT_RATE_PERIOD) and history API requests
(CHAT_API_RATE per CHAT_API_PERIOD).

The rule is the sliding window counter of chat.limits (two integers per address and
window). One check is one round trip: a Lua script reads this window's and the previous
window's counters, decides with the same expression as `sliding_allows`, and counts the
event only if it is allowed (a refused message costs nothing later). Counters expire two
windows after their last event. Keys: `{CHAT_REDIS_PREFIX}:rate:{name}:{address}:{window}`.

Without Redis (no REDIS_URL, the in-memory layer) the same rule runs on a counter in this
process. When Redis fails, the check falls back to that counter too (logged once per
outage), so a limit still holds per worker: during an outage an address can send up to the
rate on each worker. After a failure Redis is not asked again for REDIS_RETRY seconds, so
an outage does not cost every message a connection timeout.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from redis import asyncio as aioredis

from chat.limits import (
    WindowCounter,
    previous_weight,
    sliding_retry_after,
    window_at,
)

logger = logging.getLogger(__name__)

# Seconds during which a worker counts in memory after Redis failed, before asking again.
REDIS_RETRY = 1.0
# A check waits at most this long for Redis, then counts in memory.
REDIS_TIMEOUT = 0.5

# KEYS[1]: this window's counter, KEYS[2]: the previous window's.
# ARGV[1]: the rate, ARGV[2]: the previous window's weight, ARGV[3]: expiry (ms).
# Returns {allowed (1 or 0), this window's count, the previous window's count} before the
# event. `previous * weight + current + 1 <= rate` is chat.limits.sliding_allows.
_CHECK = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local previous = tonumber(redis.call('GET', KEYS[2]) or '0')
if previous * tonumber(ARGV[2]) + current + 1 <= tonumber(ARGV[1]) then
  redis.call('INCR', KEYS[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return {1, current, previous}
end
return {0, current, previous}
"""


class AddressLimit:
    """At most `rate` events per `period` seconds per client address, on every worker."""

    def __init__(
        self,
        *,
        name: str,
        rate: int,
        period: float,
        redis: aioredis.Redis | None,
        prefix: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.name = name
        self.rate = rate
        self.period = period
        self.prefix = f"{prefix}:rate:{name}"
        self.clock = clock
        self.local = WindowCounter(rate=rate, period=period, clock=clock)
        self._redis = redis
        self._script: Any = redis.register_script(_CHECK) if redis is not None else None
        self._redis_after = float("-inf")
        self._reachable = True

    async def check(self, address: str) -> float | None:
        """Count one event from `address`; None if allowed, else seconds until one would be."""
        if not self.rate or not self.period:
            return None
        if self._script is None or time.monotonic() < self._redis_after:
            return self.local.check(address)
        now = self.clock()
        index, elapsed = window_at(now, self.period)
        try:
            async with asyncio.timeout(REDIS_TIMEOUT):
                allowed, current, previous = await self._script(
                    keys=[
                        f"{self.prefix}:{address}:{index}",
                        f"{self.prefix}:{address}:{index - 1}",
                    ],
                    args=[
                        self.rate,
                        repr(previous_weight(elapsed, self.period)),
                        int(self.period * 2000),
                    ],
                )
        except Exception as exc:
            self._redis_after = time.monotonic() + REDIS_RETRY
            if self._reachable:
                self._reachable = False
                logger.warning(
                    "%s limit: Redis unavailable, counting in this worker (%r)", self.name, exc
                )
            return self.local.check(address)
        if not self._reachable:
            self._reachable = True
            logger.info("%s limit: Redis reachable again", self.name)
        if allowed:
            return None
        return sliding_retry_after(
            previous=int(previous),
            current=int(current),
            elapsed=elapsed,
            period=self.period,
            rate=self.rate,
        )


# One Redis client per event loop (its connections belong to that loop); the limits of a
# loop are rebuilt when their setting changes (tests change settings).
_clients: dict[Any, aioredis.Redis | None] = {}
_limits: dict[tuple[Any, str], AddressLimit] = {}


def _client(loop: Any) -> aioredis.Redis | None:
    if loop not in _clients:
        for old in [key for key in _clients if key.is_closed()]:
            del _clients[old]
            for limit_key in [k for k in _limits if k[0] is old]:
                del _limits[limit_key]
        _clients[loop] = (
            aioredis.Redis.from_url(
                settings.REDIS_URL,
                socket_timeout=REDIS_TIMEOUT,
                socket_connect_timeout=REDIS_TIMEOUT,
            )
            if settings.REDIS_URL
            else None
        )
    return _clients[loop]


def get_limit(name: str, *, rate: int, period: float) -> AddressLimit:
    """The running loop's limit `name` (e.g. "messages"), with this rate and period."""
    loop = asyncio.get_running_loop()
    limit = _limits.get((loop, name))
    if limit is None or (limit.rate, limit.period) != (rate, period):
        limit = AddressLimit(
            name=name,
            rate=rate,
            period=period,
            redis=_client(loop),
            prefix=settings.CHAT_REDIS_PREFIX,
        )
        _limits[(loop, name)] = limit
    return limit


def messages_limit() -> AddressLimit:
    """Chat messages per address: CHAT_RATE_PER_ADDRESS per CHAT_RATE_PERIOD."""
    return get_limit(
        "messages", rate=settings.CHAT_RATE_PER_ADDRESS, period=settings.CHAT_RATE_PERIOD
    )


def api_limit() -> AddressLimit:
    """History API requests per address: CHAT_API_RATE per CHAT_API_PERIOD."""
    return get_limit("api", rate=settings.CHAT_API_RATE, period=settings.CHAT_API_PERIOD)
