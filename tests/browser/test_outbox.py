"""Messages written without a connection wait as pending and are sent exactly once."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_messages_typed_offline_are_pending_then_sent_once(open_chat):
    ana = open_chat("Ana")
    bia = open_chat("Bia")

    ana.context.set_offline(True)
    expect(ana.page.locator("#status")).to_have_attribute("data-state", "offline")
    ana.send("written offline 1")
    ana.send("written offline 2")
    pending = ana.page.locator("#outbox li[data-state=pending]")
    expect(pending).to_have_count(2)
    expect(pending.first).to_contain_text("Waiting to send…")
    ana.screenshot("chat-offline-pending")

    ana.context.set_offline(False)
    expect(ana.page.locator("#status")).to_have_attribute("data-state", "online")
    expect(ana.page.locator("#outbox li")).to_have_count(0)
    for chat in (ana, bia):
        for text in ("written offline 1", "written offline 2"):
            expect(chat.message_bodies(text)).to_have_count(1)
    expect(ana.page.locator("#messages li[data-state=sent]")).to_have_count(2)
    expect(ana.page.locator("#messages li[data-state=sent] .state").first).to_have_text("Sent")
    order = bia.page.locator("#messages li[data-id] .body").all_text_contents()
    assert order.index("written offline 1") < order.index("written offline 2")


def test_pending_message_survives_a_reload(open_chat):
    ana = open_chat("Ana")
    bia = open_chat("Bia")
    ana.send("sent before the reload")
    expect(bia.message_bodies("sent before the reload")).to_have_count(1)
    blocked = {"on": True}

    def route(ws):
        # While blocked the "server" hangs up at once, as an overloaded one would.
        if blocked["on"]:
            ws.close(code=1013, reason="try again later")
        else:
            ws.connect_to_server()

    ana.page.route_web_socket("**/ws/chat/**", route)
    ana.page.reload()
    expect(ana.page.locator("#status")).to_have_attribute("data-state", "reconnecting")
    ana.send("survives reload")
    expect(ana.page.locator("#outbox li[data-state=pending]")).to_have_count(1)

    ana.page.reload()
    expect(ana.page.locator("#outbox li[data-state=pending] .body")).to_have_text("survives reload")
    # The reloaded page has tried (and been refused) before the server comes back: unblocking
    # earlier let a slow page's first try through, and "Reconnect now" never showed.
    expect(ana.page.locator("#status")).to_have_attribute("data-state", "reconnecting")

    blocked["on"] = False
    # Reconnect now, unless the page's own retry won the race (then the button is hidden).
    ana.page.evaluate("document.querySelector('#reconnect-now:not([hidden])')?.click()")
    expect(ana.page.locator("#status")).to_have_attribute("data-state", "online")
    expect(ana.page.locator("#outbox li")).to_have_count(0)
    for chat in (ana, bia):
        expect(chat.message_bodies("survives reload")).to_have_count(1)
    # Both were written in this tab, before and after the reload: both are "You".
    expect(ana.page.locator("#messages li[data-own=true]")).to_have_count(2)
    expect(ana.page.locator("#messages li[data-own=false]")).to_have_count(0)


def _refuse_once(page, refusals: dict[str, dict]):
    """Route the socket; answer the first send of each listed body with an error frame."""

    def route(ws):
        server = ws.connect_to_server()

        def from_page(text):
            frame = json.loads(text)
            error = (
                refusals.pop(frame.get("body"), None) if frame.get("type") == "message" else None
            )
            if error is None:
                server.send(text)
            else:
                ws.send(json.dumps({"type": "error", "client_id": frame["client_id"], **error}))

        ws.on_message(from_page)

    page.route_web_socket("**/ws/chat/**", route)
    page.reload()
    expect(page.locator("#status")).to_have_attribute("data-state", "online")


def test_refused_message_shows_the_reason_and_can_be_retried(open_chat):
    ana = open_chat("Ana")
    refusal = {"code": "invalid_body", "detail": "The message is empty."}
    _refuse_once(ana.page, {"try me again": refusal})

    ana.send("try me again")
    failed = ana.page.locator("#outbox li[data-state=failed]")
    expect(failed).to_contain_text("Not sent: the message is empty or invalid.")
    ana.screenshot("chat-failed-message")

    failed.get_by_role("button", name="Retry").click()
    expect(ana.message_bodies("try me again")).to_have_count(1)
    expect(ana.page.locator("#outbox li")).to_have_count(0)


def test_refused_message_can_be_discarded(open_chat):
    ana = open_chat("Ana")
    _refuse_once(ana.page, {"throw me away": {"code": "too_long", "detail": "Too long."}})

    ana.send("throw me away")
    failed = ana.page.locator("#outbox li[data-state=failed]")
    failed.get_by_role("button", name="Discard").click()

    expect(ana.page.locator("#outbox li")).to_have_count(0)
    expect(ana.page.locator("#body")).to_be_focused()
    ana.page.reload()
    expect(ana.page.locator("#outbox li")).to_have_count(0)


def test_rate_limited_message_stays_pending_and_is_resent(open_chat):
    ana = open_chat("Ana")
    bia = open_chat("Bia")
    slow_down = {"code": "rate_limited", "detail": "Too many messages.", "retry_after": 1.0}
    _refuse_once(ana.page, {"patience": slow_down})

    ana.send("patience")
    pending = ana.page.locator("#outbox li[data-state=pending]")
    expect(pending).to_contain_text("Waiting to send…")
    expect(ana.page.locator("#outbox li[data-state=failed]")).to_have_count(0)

    for chat in (ana, bia):
        expect(chat.message_bodies("patience")).to_have_count(1)
    expect(pending).to_have_count(0)
