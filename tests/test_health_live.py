"""Readiness follows the worker's own Redis subscription; liveness does not (real daphne)."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.support.client import ChatClient

pytestmark = [pytest.mark.live, pytest.mark.redis]


def probe(url: str) -> tuple[int, dict[str, Any]]:
    """Status and JSON body of a health endpoint (a 503 is an answer, not an error)."""
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def wait_for_status(url: str, status: int, timeout: float = 10) -> dict[str, Any]:
    """Poll until `url` answers `status`; its body."""
    deadline = time.monotonic() + timeout
    seen: tuple[int, dict[str, Any]] = (0, {})
    while time.monotonic() < deadline:
        seen = probe(url)
        if seen[0] == status:
            return seen[1]
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer {status} within {timeout}s: last {seen}")


async def test_ready_reports_the_heartbeat_once_a_socket_joined(daphne_factory, redis_url):
    web = daphne_factory(redis_url=redis_url, name="health-beat")
    ready = f"{web.http_url}/healthz/ready"
    assert (await asyncio.to_thread(probe, ready))[1]["presence"] == "idle"
    ana = await ChatClient.connect(web.ws_url, nick="Ana")
    try:
        status, body = await asyncio.to_thread(probe, ready)
        assert (status, body["presence"]) == (200, "ok")
    finally:
        await ana.close()


def test_ready_follows_the_subscription_and_live_does_not(daphne_factory, private_redis):
    web = daphne_factory(redis_url=private_redis.url, name="health")
    ready, live = f"{web.http_url}/healthz/ready", f"{web.http_url}/healthz/live"
    assert probe(ready)[0] == 200
    private_redis.stop()
    try:
        down = wait_for_status(ready, 503)
        assert list(down["failed"]) == ["channel_layer"]
        assert down["channel_layer"] == "failed"
        assert probe(live) == (200, {"status": "ok"})
    finally:
        private_redis.start()
    wait_for_status(ready, 200)
