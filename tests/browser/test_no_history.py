"""A page with no history (CHAT_HISTORY=0) starts where the chat stands: nothing before it
joined counts as missing, so it asks the history API for nothing."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.support.servers import Daphne

pytestmark = pytest.mark.browser


@pytest.fixture
def server(daphne_factory) -> Daphne:
    """A daphne that sends no history on a fresh join, over a chat that has messages."""
    from chat.models import Message

    for n in range(3):
        Message.objects.create(nick="Cy", body=f"before {n}", session="s-cy")
    return daphne_factory(redis_url=None, CHAT_HISTORY="0")


def test_a_page_without_history_fetches_nothing_from_before_it_joined(open_chat):
    ana = open_chat("Ana")
    api_calls: list[str] = []
    ana.page.on("request", lambda r: api_calls.append(r.url) if "/api/messages" in r.url else None)
    bia = open_chat("Bia")
    bia.send("after joining")

    expect(ana.message_bodies("after joining")).to_have_count(1)
    # Longer than the gap grace: a repair of ids 1..3 would have asked the API by now.
    ana.page.wait_for_timeout(2500)
    assert api_calls == []
    expect(ana.page.locator("#messages li[data-id] .body")).to_have_text(["after joining"])
