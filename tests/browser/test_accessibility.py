"""Accessibility: axe-core finds no WCAG A/AA violations; the keyboard alone is enough."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.support.environment import missing
from tests.support.servers import ROOT

pytestmark = pytest.mark.browser

AXE = ROOT / "frontend" / "node_modules" / "axe-core" / "axe.min.js"


def _require_axe() -> None:
    if not AXE.exists():
        missing("axe-core not installed: run `npm ci` in frontend/ (make test-browser does)")


def _assert_no_axe_violations(page) -> None:
    """Run axe-core's WCAG 2.1 A and AA rules on the page (opened with bypass_csp=True:
    axe is injected as a script the page's CSP would refuse)."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(
        """() => axe.run(document, {
            runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
        })"""
    )
    violations = [
        (v["id"], v["help"], [n["target"] for n in v["nodes"]][:3]) for v in result["violations"]
    ]
    assert violations == []
    assert result["passes"], "axe checked nothing"


@pytest.mark.parametrize("color_scheme", ["light", "dark"])
def test_page_has_no_axe_violations(open_chat, color_scheme):
    _require_axe()
    ana = open_chat("Ana", color_scheme=color_scheme, bypass_csp=True)
    bia = open_chat("Bia")
    bia.send("Hello from Bia")
    ana.send("Hello from Ana")
    expect(ana.message_bodies("Hello from Bia")).to_have_count(1)
    ana.page.locator("#online-toggle").click()
    ana.page.locator("#body").fill("x" * 1950)

    _assert_no_axe_violations(ana.page)


@pytest.mark.parametrize("color_scheme", ["light", "dark"])
def test_moderator_page_has_no_axe_violations(open_chat, make_account, color_scheme):
    _require_axe()
    make_account("mod", "mod-password-1", is_staff=True)
    mo = open_chat(color_scheme=color_scheme, bypass_csp=True)
    mo.sign_in("mod", "mod-password-1")
    bia = open_chat("Bia")

    def as_moderator_among_accounts(frame):
        # What the server will send: `hello.user`, and `account` on every message.
        if frame.get("type") == "hello":
            frame["user"] = {"name": "mod", "moderator": True}
        if frame.get("type") == "message":
            frame["account"] = frame.get("nick") == "Bia"
        return frame

    mo.relay(to_page=as_moderator_among_accounts)
    bia.send("Hello from Bia")
    mo.send("Hello from the moderator")
    expect(mo.page.locator("#messages li[data-id]")).to_have_count(2)
    expect(mo.page.locator("#messages .account-mark")).to_have_count(1)
    expect(mo.page.locator("#messages button")).to_have_count(4)
    expect(mo.page.get_by_role("button", name="Sign out")).to_be_visible()

    _assert_no_axe_violations(mo.page)


def test_message_can_be_sent_and_nick_changed_with_the_keyboard_alone(open_chat):
    ana = open_chat("Ana")
    bia = open_chat("Bia")
    page = ana.page

    # The skip link is the first stop and leads to the message box.
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to the message box")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#body")).to_be_focused()
    page.keyboard.type("typed without a mouse")
    page.keyboard.press("Enter")
    expect(bia.message_bodies("typed without a mouse")).to_have_count(1)

    page.locator("#nick-toggle").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_label("Your nickname")).to_be_focused()
    page.keyboard.press("Control+A")
    page.keyboard.type("Keyboard Ana")
    page.keyboard.press("Enter")
    expect(page.locator("#nick-current")).to_have_text("Keyboard Ana")
    expect(page.locator("#nick-toggle")).to_be_focused()
    expect(bia.page.locator("#online-list li", has_text="Keyboard Ana")).to_have_count(1)
