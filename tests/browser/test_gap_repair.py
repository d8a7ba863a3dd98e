"""Missing ids are fetched from the history API once or twice, never endlessly."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from chat.models import Message

pytestmark = pytest.mark.browser


def _count_api_requests(page) -> list[str]:
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url) if "/api/messages" in r.url else None)
    return seen


def test_message_lost_on_the_way_is_fetched_from_the_api(open_chat):
    ana = open_chat("Ana", wait_online=False)
    bia = open_chat("Bia")
    api_calls = _count_api_requests(ana.page)

    # Lose one broadcast between the server and Ana's page.
    ana.relay(to_page=lambda frame: None if frame.get("body") == "lost on the way" else frame)

    bia.send("lost on the way")
    expect(bia.message_bodies("lost on the way")).to_have_count(1)
    bia.send("arrives live")

    expect(ana.message_bodies("arrives live")).to_have_count(1)
    expect(ana.message_bodies("lost on the way")).to_have_count(1)
    bodies = ana.page.locator("#messages li[data-id] .body").all_text_contents()
    assert bodies == ["lost on the way", "arrives live"]
    assert len(api_calls) == 1, api_calls


def test_hole_in_the_id_sequence_is_fetched_at_most_twice(open_chat):
    bia = open_chat("Bia")
    bia.send("before the hole")
    expect(bia.message_bodies("before the hole")).to_have_count(1)
    ana = open_chat("Ana")
    api_calls = _count_api_requests(ana.page)
    expect(ana.message_bodies("before the hole")).to_have_count(1)

    # An id that will never be seen again, as after a rolled-back insert.
    Message.objects.create(nick="ghost", body="rolled back", session="x").delete()
    bia.send("after the hole")
    expect(ana.message_bodies("after the hole")).to_have_count(1)

    # Longer than two grace periods: a third fetch would have happened by now.
    ana.page.wait_for_timeout(6000)
    assert len(api_calls) == 2, api_calls
    assert ana.page.locator("#messages li[data-id]").count() == 2
