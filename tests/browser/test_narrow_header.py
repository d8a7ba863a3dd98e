"""The header and the message headers at 320-390 px, light and dark, with the longest
nicknames: nothing overlaps, nothing spills out of its container or the viewport, and long
names are ellipsised with the whole name in their title and accessible name."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from chat.protocol import MAX_NICK

pytestmark = pytest.mark.browser

# The longest nickname the server takes, in the widest letters.
LONG_NICK = "W" * MAX_NICK
OTHER_LONG_NICK = "M" * (MAX_NICK - 1) + "!"
WIDTHS = [320, 360, 390]

# Boxes of the visible children of `selector`'s element, pairwise: [i, j, box_i, box_j]
# for each pair that intersects (by more than half a pixel, for subpixel layout).
OVERLAPS = """selector => {
    const boxes = [...document.querySelector(selector).children]
        .filter(el => el.getClientRects().length && getComputedStyle(el).visibility !== "hidden")
        .map(el => ({
            name: el.id || el.className.split(" ")[0] || el.tagName,
            r: el.getBoundingClientRect(),
        }))
        .filter(b => b.r.width > 0 && b.r.height > 0);
    const hits = [];
    for (let i = 0; i < boxes.length; i++) {
        for (let j = i + 1; j < boxes.length; j++) {
            const a = boxes[i].r, b = boxes[j].r;
            const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
            const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
            if (w > 0.5 && h > 0.5) hits.push([boxes[i].name, boxes[j].name]);
        }
    }
    return hits;
}"""

# Every visible element under `selector` (in the flow: not absolutely placed, not sr-only)
# that reaches past its parent's box or the viewport's edges.
SPILLS = """selector => {
    const out = [];
    const width = document.documentElement.clientWidth;
    for (const root of document.querySelectorAll(selector)) {
        for (const el of [root, ...root.querySelectorAll("*")]) {
            if (el.closest("svg") && el.tagName !== "svg") continue;
            if (!el.getClientRects().length) continue;
            const style = getComputedStyle(el);
            if (style.position === "absolute" || style.position === "fixed") continue;
            const r = el.getBoundingClientRect();
            if (r.width === 0 || r.height === 0) continue;
            const name = el.id || el.className.baseVal || el.className || el.tagName;
            if (r.left < -0.5 || r.right > width + 0.5) {
                out.push([name, "viewport", r.left, r.right]);
            }
            const parent = el.parentElement;
            if (el !== root && parent) {
                const p = parent.getBoundingClientRect();
                if (r.left < p.left - 0.5 || r.right > p.right + 0.5) {
                    out.push([name, "parent", r.right, p.right]);
                }
            }
        }
    }
    return out;
}"""

# What makes an element ellipsise, its overflow, and its title.
NAME_BOX = """el => {
    const s = getComputedStyle(el);
    const ellipsis = s.textOverflow === "ellipsis" && s.overflowX === "hidden"
        && s.whiteSpace === "nowrap";
    return {ellipsis,
            truncated: el.scrollWidth > el.clientWidth, title: el.title, text: el.textContent};
}"""

# Containers whose content must fit (scrollWidth within clientWidth).
FITS = "el => el.scrollWidth <= el.clientWidth"


def _check_header(page, width: int) -> None:
    assert page.evaluate(OVERLAPS, "header > div") == []
    assert page.evaluate(SPILLS, "header") == []
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    header = page.locator("header > div")
    assert header.evaluate(FITS)


@pytest.mark.parametrize("color_scheme", ["light", "dark"])
@pytest.mark.parametrize("width", WIDTHS)
def test_guest_header_and_message_headers_fit(open_chat, width, color_scheme):
    ana = open_chat(LONG_NICK, viewport={"width": width, "height": 700}, color_scheme=color_scheme)
    bia = open_chat(OTHER_LONG_NICK)
    bia.send("Oi! Tudo bem?")
    ana.send("Tudo, e você?")
    page = ana.page
    expect(page.locator("#messages li[data-id]")).to_have_count(2)
    expect(page.locator("#online-count")).to_have_text("2 online")
    ana.screenshot(f"header-{width}-{color_scheme}")

    _check_header(page, width)
    # The status pill stays clear of the logo and of everything else in its row.
    assert page.evaluate(OVERLAPS, "header > div > div:first-child") == []

    name = page.locator("#nick-current")
    box = name.evaluate(NAME_BOX)
    assert box["ellipsis"], box
    assert box["text"] == LONG_NICK and box["title"] == LONG_NICK
    if width == 320:
        assert box["truncated"], "the longest name should be ellipsised at 320 px"
    toggle = page.locator("#nick-toggle")
    assert toggle.evaluate(FITS)
    expect(toggle).to_have_accessible_name(f"Your nickname: {LONG_NICK}")

    for item in page.locator("#messages li[data-id]").all():
        head = item.locator(".column > p").first
        assert head.evaluate(FITS)
        assert (
            page.evaluate(
                OVERLAPS, f"#messages li[data-id='{item.get_attribute('data-id')}'] .column > p"
            )
            == []
        )
    # Messages and the notices between them ("… joined").
    assert page.evaluate(SPILLS, "#messages li") == []
    theirs = page.locator("#messages li[data-own=false] .nick")
    box = theirs.evaluate(NAME_BOX)
    assert box["ellipsis"], box
    assert box["title"] == OTHER_LONG_NICK and box["text"] == OTHER_LONG_NICK
    expect(theirs).to_have_accessible_name(OTHER_LONG_NICK)


@pytest.mark.parametrize("color_scheme", ["light", "dark"])
@pytest.mark.parametrize("width", WIDTHS)
def test_signed_in_header_fits(open_chat, make_account, width, color_scheme):
    # Django allows 150 characters in a username.
    username = "Bartholomew_" + "W" * 60
    make_account(username, "a-password-1")
    ana = open_chat(viewport={"width": width, "height": 700}, color_scheme=color_scheme)
    ana.sign_in(username, "a-password-1")
    page = ana.page
    ana.screenshot(f"header-account-{width}-{color_scheme}")

    _check_header(page, width)
    name = page.locator("#account-name")
    box = name.evaluate(NAME_BOX)
    assert box["ellipsis"] and box["truncated"], box
    assert username in box["title"]
    expect(name).to_have_accessible_name(f"Signed in as {username}")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


@pytest.mark.parametrize("locale", ["en", "pt-BR"])
@pytest.mark.parametrize("color_scheme", ["light", "dark"])
def test_reconnecting_header_fits_at_320_pixels(open_chat, color_scheme, locale):
    # The widest status: a countdown and the "Reconnect now" button beside it.
    ana = open_chat(
        LONG_NICK, viewport={"width": 320, "height": 700}, color_scheme=color_scheme, locale=locale
    )
    page = ana.page
    page.route_web_socket("**/ws/chat/**", lambda ws: ws.close(code=1013, reason="later"))
    page.reload()
    expect(page.locator("#status")).to_have_attribute("data-state", "reconnecting")
    expect(page.locator("#reconnect-now")).to_be_visible()
    ana.screenshot(f"header-reconnecting-320-{color_scheme}-{locale}")

    _check_header(page, 320)
    assert page.evaluate(OVERLAPS, "header > div > div:nth-child(2)") == []
