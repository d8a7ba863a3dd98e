"""A prune under a running worker: its window, resumes and the API agree (real daphne,
real Redis, `manage.py prune_messages` in its own process, as cron would run it)."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from tests.support.client import ChatClient
from tests.support.environment import REDIS_PREFIX
from tests.support.resilient import fetch_after
from tests.support.servers import ROOT, base_env

pytestmark = [pytest.mark.live, pytest.mark.redis]


def prune_messages(*args: str, db_url: str, redis_url: str) -> str:
    """Run the command as an operator would; its output."""
    env = base_env(db_url=db_url, redis_url=redis_url, CHAT_REDIS_PREFIX=REDIS_PREFIX)
    done = subprocess.run(
        [sys.executable, "manage.py", "prune_messages", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


async def test_a_prune_keeps_history_resume_and_api_consistent(
    daphne_factory, redis_url, live_db_url
):
    web = daphne_factory(redis_url=redis_url, name="prune", CHAT_RATE="0")
    ana = await ChatClient.connect(web.ws_url, nick="Ana")
    ids = []
    try:
        for n in range(10):
            await ana.say(f"p{n}", client_id=f"p{n}")
            ids.append((await ana.recv_type("message", timeout=10, body=f"p{n}"))["id"])
    finally:
        await ana.close()

    output = await asyncio.to_thread(
        prune_messages, "--keep", "3", db_url=live_db_url, redis_url=redis_url
    )
    assert output.startswith("Deleted 7 messages")

    # The worker's window drops the pruned messages when the prune event reaches it.
    for _ in range(50):
        fresh = await ChatClient.connect(web.ws_url, nick="Fresh")
        await fresh.close()
        if [m["id"] for m in fresh.hello["history"]] == ids[-3:]:
            break
        await asyncio.sleep(0.1)
    assert [m["id"] for m in fresh.hello["history"]] == ids[-3:]

    back = await ChatClient.connect(web.ws_url, nick="Back", after=ids[1])
    await back.close()
    assert ([m["id"] for m in back.hello["history"]], back.hello["truncated"]) == (ids[-3:], True)

    recent = await ChatClient.connect(web.ws_url, nick="Recent", after=ids[8])
    await recent.close()
    assert ([m["id"] for m in recent.hello["history"]], recent.hello["truncated"]) == (
        ids[-1:],
        False,
    )

    api = await asyncio.to_thread(fetch_after, web.http_url, ids[1])
    assert [m["id"] for m in api] == ids[-3:]
