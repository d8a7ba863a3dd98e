"""What a worker's first sockets would otherwise wait for, done when the worker starts.

A worker loads lazily: the first handshake loads the sanctions from the database, starts
the channel layer's subscription (whose start fills the window of recent messages from the
database) and reads the other workers' part of the online list from Redis. After a deploy
every page of a restarted worker reconnects at once, and all of them waited behind that
first handshake (about 60 ms here). `warm_up` does the same work as the worker starts,
before its first socket; under daphne the server runs it (chat.daphne_server).

A failure is logged and changes nothing else: the first handshakes then do the work, as
before, with their own retries.
"""

from __future__ import annotations

import asyncio
import logging

from chat import broadcast
from chat.consumers import GUARD_WAIT, wire_guard
from chat.guard import get_guard
from chat.presence import get_tracker

logger = logging.getLogger(__name__)


async def warm_up() -> None:
    """Load the sanctions, start the layer's subscription (and the window's fill) and read
    the online list, as a worker's first handshake would. Errors are logged, not raised."""
    started = asyncio.get_running_loop().time()
    try:
        guard = get_guard(on_first=wire_guard)
        lobby = broadcast.get_lobby()
        tracker = get_tracker()
        loaded, _ = await asyncio.gather(guard.ready(timeout=GUARD_WAIT), tracker.refresh())
        if lobby is not None:
            # The subscription's first start fills the window (Lobby.subscribed).
            await lobby.wait_filled(timeout=GUARD_WAIT)
    except Exception:
        logger.exception("warm-up failed; the first handshakes will load what they need")
        return
    logger.info(
        "worker warmed up in %.0f ms%s",
        1000 * (asyncio.get_running_loop().time() - started),
        "" if loaded else " (sanctions not loaded yet)",
    )
