"""Gap repair that meets the history API's limit waits as the server says, then repairs."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

from tests.support.servers import Daphne

pytestmark = pytest.mark.browser

# One history request per API_PERIOD seconds from an address: the test spends it, so the
# page's repair (due 1.5 s after the gap shows) meets a 429 unless the machine is slower by
# seconds (a sliding window counter frees the request one to two periods after it was made).
API_PERIOD = 10


@pytest.fixture
def server(daphne_factory) -> Daphne:
    """A daphne that answers one `/api/messages` request per API_PERIOD per address, with one
    message stored before it starts: the pages' history ends there, so the only id a page
    can miss is the one the test loses (in a database used before, ids do not start at 1, and
    a page with no history would fetch what came before its first message)."""
    from chat.models import Message

    Message.objects.create(nick="Cy", body="already here", session="s-cy")
    return daphne_factory(redis_url=None, CHAT_API_RATE="1", CHAT_API_PERIOD=str(API_PERIOD))


def test_a_refused_repair_waits_for_retry_after_and_is_no_error(open_chat, server):
    ana = open_chat("Ana", wait_online=False)
    ana.expected_noise.append("status of 429")
    bia = open_chat("Bia")
    seen: list[tuple[float, str, int | None, str | None]] = []

    def on_request(request):
        if "/api/messages" in request.url:
            seen.append((time.monotonic(), "request", None, None))

    def on_response(response):
        if "/api/messages" in response.url:
            retry = response.headers.get("retry-after")
            seen.append((time.monotonic(), "response", response.status, retry))

    # Lose one broadcast between the server and Ana's page.
    ana.relay(to_page=lambda frame: None if frame.get("body") == "lost on the way" else frame)
    ana.page.on("request", on_request)
    ana.page.on("response", on_response)

    # Spend the address's one request of this period (the page and the test share 127.0.0.1).
    assert ana.page.request.get(f"{server.http_url}/api/messages").status == 200
    bia.send("lost on the way")
    bia.send("arrives live")

    expect(ana.message_bodies("arrives live")).to_have_count(1)
    expect(ana.page.locator("#messages li[data-id] .body")).to_have_text(
        ["already here", "lost on the way", "arrives live"], timeout=3 * API_PERIOD * 1000
    )
    # No error for a refusal, and the page asked again only after the time it was given.
    expect(ana.page.locator("#notice")).to_have_text("")
    responses = [(at, status, retry) for at, kind, status, retry in seen if kind == "response"]
    requests = [at for at, kind, *_ in seen if kind == "request"]
    assert [status for _, status, _ in responses][:1] == [429], seen
    assert responses[-1][1] == 200, seen
    refused_at, _, retry_after = responses[0]
    # A sliding window counter frees the spent request one to two periods after it.
    assert retry_after is not None and 1 <= int(retry_after) <= 2 * API_PERIOD
    assert len(requests) == 2, seen
    # Ana's page waited the Retry-After it was given before asking again (less a little for
    # the clocks of two processes).
    assert requests[1] - refused_at >= int(retry_after) - 0.25, seen
