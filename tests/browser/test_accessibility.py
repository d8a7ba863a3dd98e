"""Accessibility: axe-core finds no WCAG A/AA violations; the keyboard alone is enough."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.conftest import _missing
from tests.live import ROOT

pytestmark = pytest.mark.browser

AXE = ROOT / "frontend" / "node_modules" / "axe-core" / "axe.min.js"


@pytest.mark.parametrize("color_scheme", ["light", "dark"])
def test_page_has_no_axe_violations(open_chat, color_scheme):
    if not AXE.exists():
        _missing("axe-core not installed: run `npm ci` in frontend/ (make test-browser does)")
    # bypass_csp: axe is injected as a script the page's CSP would refuse.
    ana = open_chat("Ana", color_scheme=color_scheme, bypass_csp=True)
    bia = open_chat("Bia")
    bia.send("Hello from Bia")
    ana.send("Hello from Ana")
    expect(ana.message_bodies("Hello from Bia")).to_have_count(1)
    ana.page.locator("#online-toggle").click()
    ana.page.locator("#body").fill("x" * 1950)

    ana.page.add_script_tag(path=str(AXE))
    result = ana.page.evaluate(
        """() => axe.run(document, {
            runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
        })"""
    )
    violations = [
        (v["id"], v["help"], [n["target"] for n in v["nodes"]][:3]) for v in result["violations"]
    ]
    assert violations == []
    assert result["passes"], "axe checked nothing"


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
