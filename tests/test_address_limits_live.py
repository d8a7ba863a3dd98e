"""Limits per client address hold across two real daphne workers on one real Redis."""

from __future__ import annotations

import asyncio
import urllib.error
import urllib.request

import pytest

from chat.models import Message
from tests.support.client import ChatClient

pytestmark = [pytest.mark.live, pytest.mark.redis]

# Each socket may send 5 per period; the address, all sockets together, 6.
LIMITS = {
    "CHAT_RATE": "5",
    "CHAT_RATE_PER_ADDRESS": "6",
    "CHAT_RATE_PERIOD": "60",
    "CHAT_API_RATE": "3",
    "CHAT_API_PERIOD": "60",
}


async def send_all(client: ChatClient, name: str, count: int) -> tuple[int, list[dict]]:
    """Send `count` messages; how many were accepted (echoed) and the errors."""
    for i in range(count):
        await client.say(f"{name} {i}", client_id=f"{name}-{i}")
    accepted, errors = 0, []
    while accepted + len(errors) < count:
        frame = await client.recv(timeout=10)
        if frame["type"] == "message" and frame["session"] == client.session:
            accepted += 1
        elif frame["type"] == "error":
            errors.append(frame)
    return accepted, errors


@pytest.mark.parametrize("two_workers", [LIMITS], indirect=True, ids=["limits"])
async def test_two_sockets_on_two_workers_share_the_address_rate(two_workers):
    a, b = two_workers
    ana = await ChatClient.connect(a.ws_url, nick="Ana")
    bia = await ChatClient.connect(b.ws_url, nick="Bia")
    try:
        assert ana.hello["limits"]["rate_per_address"] == 6
        (on_a, errors_a), (on_b, errors_b) = await asyncio.gather(
            send_all(ana, "a", 5), send_all(bia, "b", 5)
        )
        # 10 sent, each socket within its own rate of 5: the address's 6 is the cap.
        assert on_a + on_b == 6
        errors = errors_a + errors_b
        assert len(errors) == 4
        assert all(e["code"] == "rate_limited" and e["retry_after"] > 0 for e in errors)
        assert await Message.objects.acount() == 6
    finally:
        await ana.close()
        await bia.close()


def api_status(url: str) -> tuple[int, str | None]:
    try:
        with urllib.request.urlopen(f"{url}/api/messages", timeout=5) as resp:
            return resp.status, None
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Retry-After")


@pytest.mark.parametrize("two_workers", [LIMITS], indirect=True, ids=["limits"])
async def test_api_rate_is_shared_by_the_workers(two_workers):
    a, b = two_workers
    answers = [await asyncio.to_thread(api_status, w.http_url) for w in (a, b, a, b)]
    assert [status for status, _ in answers] == [200, 200, 200, 429]
    assert 1 <= int(answers[3][1]) <= 120


async def test_redis_down_the_address_rate_holds_per_worker(daphne_factory, private_redis):
    """The message path does not break when Redis goes away: the worker counts the address
    in its own memory (CHAT_RATE_PER_ADDRESS on each worker)."""
    env = {"CHAT_RATE": "0", "CHAT_RATE_PER_ADDRESS": "2", "CHAT_RATE_PERIOD": "60"}
    worker = daphne_factory(redis_url=private_redis.url, name="limit-down", **env)
    ana = await ChatClient.connect(worker.ws_url, nick="Ana")
    try:
        private_redis.stop()
        codes = []
        for i in range(3):
            await ana.say(f"down {i}", client_id=f"down-{i}")
            codes.append((await ana.recv_type("error", timeout=10))["code"])
        # Stored but not broadcast (the layer is down) twice, then the worker's own count.
        assert codes == ["unavailable", "unavailable", "rate_limited"]
        assert "counting in this worker" in worker.log()
    finally:
        await ana.close()
