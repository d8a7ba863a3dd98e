"""The page survives its server going away: it reconnects, catches up and resends."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_page_reconnects_after_a_server_restart_and_catches_up(open_chat, server):
    ana = open_chat("Ana")
    bia = open_chat("Bia")
    ana.send("before the restart")
    expect(bia.message_bodies("before the restart")).to_have_count(1)

    server.kill()
    expect(ana.page.locator("#status")).to_have_attribute("data-state", "reconnecting")
    expect(ana.page.locator("#status-text")).to_contain_text("Reconnecting in")
    ana.screenshot("chat-reconnecting")
    ana.send("during the restart")
    expect(ana.page.locator("#outbox li[data-state=pending]")).to_have_count(1)

    server.restart()
    for chat in (ana, bia):
        expect(chat.page.locator("#status")).to_have_attribute(
            "data-state", "online", timeout=30_000
        )
        expect(chat.message_bodies("during the restart")).to_have_count(1)
        expect(chat.message_bodies("before the restart")).to_have_count(1)
    expect(ana.page.locator("#messages li[data-id] .nick").last).to_have_text("You")


def test_page_reconnects_after_a_graceful_shutdown(open_chat, server):
    ana = open_chat("Ana")
    bia = open_chat("Bia")

    server.stop()  # SIGTERM: the server closes every socket with 1012
    expect(ana.page.locator("#status")).not_to_have_attribute("data-state", "online")
    server.start()

    for chat in (ana, bia):
        expect(chat.page.locator("#status")).to_have_attribute(
            "data-state", "online", timeout=30_000
        )
    ana.send("back again")
    expect(bia.message_bodies("back again")).to_have_count(1)
    expect(ana.page.locator("#online-count")).to_have_text("2 online")
