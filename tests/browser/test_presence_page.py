"""The page side of presence frames: `count` is everyone online and is what the page shows;
`online` is only the first page of the list and comes only when that page changed."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.support.page import Frame

pytestmark = pytest.mark.browser


def only_injected_presence(frame: Frame) -> Frame | None:
    """Drop the server's own presence frames (its join notices can come after `hello`), so
    that the page sees only the ones the test injects."""
    return None if frame.get("type") == "presence" else frame


def test_presence_without_online_updates_only_the_count(open_chat):
    ana = open_chat("Ana", wait_online=False)
    open_chat("Bia")
    relay = ana.relay(to_page=only_injected_presence)
    page = ana.page
    expect(page.locator("#online-count")).to_have_text("2 online")
    notices = page.locator("#messages .notice").count()

    relay.inject({"type": "presence", "count": 250})

    expect(page.locator("#online-count")).to_have_text("250 online")
    page.locator("#online-toggle").click()
    expect(page.locator("#online-list li")).to_have_count(2)
    expect(page.locator("#online-list")).to_contain_text("Bia")
    assert page.locator("#messages .notice").count() == notices


def test_count_comes_from_count_not_from_the_first_page(open_chat):
    ana = open_chat("Ana", wait_online=False)
    relay = ana.relay(to_page=only_injected_presence)
    page = ana.page
    first_page = [{"session": "x1", "nick": "Xavier"}, {"session": "x2", "nick": "Yara"}]

    relay.inject({"type": "presence", "online": first_page, "count": 1200})

    expect(page.locator("#online-count")).to_have_text("1200 online")
    page.locator("#online-toggle").click()
    expect(page.locator("#online-list li")).to_have_count(2)
    expect(page.locator("#online-list")).to_contain_text("Xavier")


def test_hello_count_is_shown_beside_its_first_page(open_chat):
    ana = open_chat("Ana", wait_online=False)

    def crowded(frame: Frame) -> Frame | None:
        if frame.get("type") == "hello":
            frame["count"] = 500
        return only_injected_presence(frame)

    ana.relay(to_page=crowded)
    expect(ana.page.locator("#online-count")).to_have_text("500 online")
    ana.page.locator("#online-toggle").click()
    expect(ana.page.locator("#online-list li")).to_have_count(1)
