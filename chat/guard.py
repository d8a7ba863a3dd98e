"""What one worker knows of mutes, bans and account names, so that no handshake and no frame
reads the database for them.

One `Guard` per worker (event loop). It loads the active sanctions and the account names
from the database when the worker starts (under daphne as it starts, chat.warmup; elsewhere
at its first socket), and again:

- when any worker says that sanctions changed (a `chat.sanctions` event on the lobby group:
  on the broadcast layer the worker's `Lobby` hands it over once, elsewhere each consumer
  passes it on, and a burst of them becomes one reload);
- when this worker's layer subscription is restored after a Redis failure (an event sent
  meanwhile was lost);
- every RELOAD_INTERVAL seconds, for account names created since (an account's name is
  refused to guests from then on) and as a backstop.

After each load it closes this worker's sockets that are now banned. Expiry needs no
reload: the book answers against the current time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Callable
from typing import Any

from channels.db import database_sync_to_async
from django.utils import timezone

from chat import selectors
from chat.sanctions import SanctionBook

logger = logging.getLogger(__name__)

RELOAD_INTERVAL = 60.0
# A burst of change events within this many seconds becomes one reload.
RELOAD_DEBOUNCE = 0.05


def _load() -> tuple[SanctionBook, frozenset[str]]:
    """The active sanctions and the account names, from the database."""
    book = SanctionBook.from_sanctions(selectors.sanctions_active(now=timezone.now()))
    return book, frozenset(selectors.account_names())


class Guard:
    """One worker's sanctions book and account names, and its sockets to police."""

    def __init__(self) -> None:
        self.book = SanctionBook()
        self.account_names: frozenset[str] = frozenset()
        self.loaded = asyncio.Event()
        # Local sockets: `check` is called with the new book after each load.
        self.watchers: weakref.WeakSet[Any] = weakref.WeakSet()
        self._reload: asyncio.Task[None] | None = None
        self._again = False
        self._periodic: asyncio.Task[None] | None = None

    async def ready(self, timeout: float) -> bool:
        """Wait for the first load (started if need be); False if it did not finish."""
        if not self.loaded.is_set():
            self.request_reload()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.loaded.wait(), timeout)
        return self.loaded.is_set()

    def muted(self, *, user_id: int | None, session: str, address: str) -> float | None:
        """Seconds until this sender may speak again, or None."""
        return self.book.muted(user_id=user_id, session=session, address=address, now=time.time())

    def banned(self, *, user_id: int | None, session: str | None, address: str) -> float | None:
        """Seconds until this client may connect again, or None."""
        return self.book.banned(user_id=user_id, session=session, address=address, now=time.time())

    def is_account_name(self, nick_key: str) -> bool:
        """Whether a nickname (in `protocol.nick_key` form) belongs to an account."""
        return nick_key in self.account_names

    async def subscribed(self, first: bool) -> None:
        """The layer's subscription (re)started: a change event may have been lost."""
        if not first:
            self.request_reload()

    def request_reload(self, _event: Any = None) -> None:
        """Reload soon (not blocking: callable from the layer's receive loop)."""
        if self._reload is not None and not self._reload.done():
            self._again = True
            return
        self._reload = asyncio.ensure_future(self._reload_now())
        if self._periodic is None:
            self._periodic = asyncio.ensure_future(self._every_interval())

    async def reload(self) -> None:
        """Load now and police this worker's sockets (after this worker's own moderator
        changed sanctions: it need not wait for the layer event)."""
        self.book, self.account_names = await database_sync_to_async(_load)()
        self.loaded.set()
        self._police()

    async def _reload_now(self) -> None:
        delay = 0.2
        while True:
            await asyncio.sleep(RELOAD_DEBOUNCE)
            self._again = False
            try:
                self.book, self.account_names = await database_sync_to_async(_load)()
            except Exception as exc:
                logger.warning("guard: sanctions unavailable (%r); retrying", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RELOAD_INTERVAL)
                continue
            self.loaded.set()
            self._police()
            if not self._again:
                return

    async def _every_interval(self) -> None:
        while True:
            await asyncio.sleep(RELOAD_INTERVAL)
            self.request_reload()

    def _police(self) -> None:
        for watcher in list(self.watchers):
            try:
                watcher.check_sanctions()
            except Exception:
                logger.exception("guard: checking a socket failed")

    async def aclose(self) -> None:
        """Stop the background tasks."""
        for task in (self._reload, self._periodic):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


_guards: dict[asyncio.AbstractEventLoop, Guard] = {}


def get_guard(*, on_first: Callable[[Guard], None] | None = None) -> Guard:
    """The guard of the running event loop (one per worker); `on_first` wires a new one."""
    loop = asyncio.get_running_loop()
    guard = _guards.get(loop)
    if guard is None:
        for old in [key for key in _guards if key.is_closed()]:
            del _guards[old]
        guard = _guards[loop] = Guard()
        if on_first is not None:
            on_first(guard)
    return guard
