"""A page that was away longer than the resume cap fetches what `hello` left out."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.support.servers import Daphne

pytestmark = pytest.mark.browser

RESUME_CAP = 3


@pytest.fixture
def server(daphne_factory) -> Daphne:
    """A daphne whose `hello` resumes at most RESUME_CAP missed messages."""
    return daphne_factory(redis_url=None, CHAT_RESUME_CAP=str(RESUME_CAP))


def test_messages_beyond_the_resume_cap_are_fetched_after_reconnect(open_chat):
    ana = open_chat("Ana")
    # The page asks for pages of 500 first; this server's cap is lower and says 400.
    ana.expected_noise.append("status of 400")
    bia = open_chat("Bia")
    bia.send("seen live")
    expect(ana.message_bodies("seen live")).to_have_count(1)

    ana.context.set_offline(True)
    expect(ana.page.locator("#status")).to_have_attribute("data-state", "offline")
    missed = [f"missed {n}" for n in range(RESUME_CAP + 4)]
    for text in missed:
        bia.send(text)
    expect(bia.message_bodies(missed[-1])).to_have_count(1)

    ana.context.set_offline(False)
    expect(ana.page.locator("#status")).to_have_attribute("data-state", "online")
    # Gap repair fetches page after page: wait for the whole run, in order (reading the log
    # as soon as the first page showed raced the later pages on a loaded machine).
    expect(ana.page.locator("#messages li[data-id] .body")).to_have_text(["seen live", *missed])
