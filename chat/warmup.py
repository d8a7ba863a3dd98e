"""What a worker's first sockets would otherwise wait for, done when the worker starts.

A worker loads lazily: the first handshake loads the sanctions from the database and
starts the channel layer's subscription, whose start fills the window of recent messages
from the database. After a deploy every page of a restarted worker reconnects at once, and
all of them waited behind that first handshake (about 60 ms here). `warm_up` does that work
as the worker starts, before its first socket; under daphne the server runs it
(chat.daphne_server).

The online list is not read here: an idle worker does not keep its view of the other
workers fresh (chat.presence), so a view read at start would be stale by the first
handshake, which then reads it itself (one Redis round trip, shared by the handshakes that
come together).

A failure is logged and changes nothing else: the first handshakes then do the work, as
before, with their own retries.
"""

from __future__ import annotations

import asyncio
import logging

from chat import broadcast
from chat.consumers import GUARD_WAIT, wire_guard
from chat.guard import get_guard

logger = logging.getLogger(__name__)


async def warm_up() -> None:
    """Load the sanctions and start the layer's subscription (and the window's fill), as a
    worker's first handshake would. Errors are logged, not raised."""
    started = asyncio.get_running_loop().time()
    try:
        guard = get_guard(on_first=wire_guard)
        lobby = broadcast.get_lobby()
        loaded = await guard.ready(timeout=GUARD_WAIT)
        # The subscription's first start fills the window (Lobby.subscribed).
        filled = lobby is None or await lobby.wait_filled(timeout=GUARD_WAIT)
    except Exception:
        logger.exception("warm-up failed; the first handshakes will load what they need")
        return
    pending = [name for name, done in (("sanctions", loaded), ("window", filled)) if not done]
    logger.info(
        "worker warmed up in %.0f ms%s",
        1000 * (asyncio.get_running_loop().time() - started),
        f" ({' and '.join(pending)} still loading)" if pending else "",
    )
