"""/metrics of real daphne workers against real Redis: per-worker counts, and who may read."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request
from collections.abc import Callable

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.client import ChatClient
from tests.support.servers import Daphne

pytestmark = [pytest.mark.live, pytest.mark.redis]

TOKEN = "live-test-metrics-token"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def fetch(worker: Daphne, headers: dict[str, str] | None = None) -> tuple[int, str]:
    """GET /metrics: (status, body)."""
    request = urllib.request.Request(f"{worker.http_url}/metrics", headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def scrape(worker: Daphne) -> Samples:
    """Every sample a worker exposes, by (name, sorted labels)."""
    status, text = fetch(worker)
    assert status == 200, text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def sample(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


async def test_a_message_is_counted_stored_once_and_delivered_on_each_worker(
    two_workers: tuple[Daphne, Daphne],
) -> None:
    one, two = two_workers
    on_one = [await ChatClient.connect(one.ws_url, nick=f"one{i}") for i in range(3)]
    on_two = [await ChatClient.connect(two.ws_url, nick=f"two{i}") for i in range(2)]
    clients = on_one + on_two
    try:
        await on_one[0].say("counted once", client_id="live-metrics-1")
        for client in clients:
            await client.recv_type("message", timeout=10, body="counted once")
        first, second = await asyncio.gather(
            asyncio.to_thread(scrape, one), asyncio.to_thread(scrape, two)
        )
    finally:
        for client in clients:
            await client.close()
    assert sample(first, "chat_messages_stored_total") == 1
    assert sample(second, "chat_messages_stored_total") == 0
    # Each worker counts the sockets it wrote the message to: its own.
    assert sample(first, "chat_deliveries_total", kind="message") == 3
    assert sample(second, "chat_deliveries_total", kind="message") == 2
    assert sample(first, "chat_handshakes_accepted_total") == 3
    assert sample(second, "chat_handshakes_accepted_total") == 2
    assert sample(first, "chat_open_sockets") == 3
    assert sample(second, "chat_open_sockets") == 2
    assert sample(first, "chat_frames_received_total") == 1
    assert sample(second, "chat_frames_received_total") == 0
    for samples in (first, second):
        assert sample(samples, "chat_fan_out_seconds_count") >= 1
        info = [key for key in samples if key[0] == "chat_build_info"]
        assert len(info) == 1
        labels = dict(info[0][1])
        assert (labels["server"], labels["layer"]) == ("daphne", "broadcast")


async def test_proxy_headers_make_the_forwarded_address_the_one_checked(
    daphne_factory: Callable[..., Daphne], redis_url: str
) -> None:
    worker = daphne_factory(
        redis_url=redis_url,
        name="mproxy",
        extra_args=["--proxy-headers"],
        CHAT_METRICS_TOKEN=TOKEN,
    )
    foreign = {"X-Forwarded-For": "203.0.113.9"}
    direct, forwarded, wrong, right = await asyncio.gather(
        asyncio.to_thread(fetch, worker),
        asyncio.to_thread(fetch, worker, foreign),
        asyncio.to_thread(fetch, worker, {**foreign, "Authorization": "Bearer wrong"}),
        asyncio.to_thread(fetch, worker, {**foreign, "Authorization": f"Bearer {TOKEN}"}),
    )
    assert direct[0] == 200
    assert forwarded[0] == 403
    assert wrong[0] == 403
    assert right[0] == 200
    assert "chat_build_info" in right[1]
