"""The chat page in a real browser: messaging, safety, layout, dark mode and languages."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser


def test_message_sent_with_enter_reaches_both_pages(open_chat):
    ana = open_chat("Ana")
    bia = open_chat("Bia")

    ana.send("Olá from Ana")

    mine = ana.message_bodies("Olá from Ana")
    theirs = bia.message_bodies("Olá from Ana")
    expect(mine).to_have_count(1)
    expect(theirs).to_have_count(1)
    expect(ana.page.locator("#messages li[data-id]").last.locator(".nick")).to_have_text("You")
    expect(bia.page.locator("#messages li[data-id]").last.locator(".nick")).to_have_text("Ana")
    expect(ana.page.locator("#outbox li")).to_have_count(0)
    for chat in (ana, bia):
        expect(chat.page.locator("#status")).to_have_attribute("data-state", "online")
        expect(chat.page.locator("#status-text")).to_have_text("Online")
        expect(chat.page.locator("#online-count")).to_have_text("2 online")
    ana.screenshot("chat-two-pages-sender")
    bia.screenshot("chat-two-pages-receiver")


def test_timestamp_is_a_time_element_in_local_time(open_chat):
    ana = open_chat("Ana", timezone_id="America/Sao_Paulo")
    ana.send("what time is it")

    stamp = ana.page.locator("#messages li[data-id] time").last
    expect(stamp).to_have_attribute("datetime", re.compile(r"^\d{4}-\d\d-\d\dT.*Z$"))
    iso = stamp.get_attribute("datetime")
    local = ana.page.evaluate(
        """iso => new Intl.DateTimeFormat('en', {hour: 'numeric', minute: '2-digit'})
            .format(new Date(iso))""",
        iso,
    )
    expect(stamp).to_have_text(local)


def test_shift_enter_inserts_a_newline_instead_of_sending(open_chat):
    ana = open_chat("Ana")
    box = ana.page.locator("#body")
    box.click()
    box.type("first line")
    box.press("Shift+Enter")
    box.type("second line")

    expect(box).to_have_value("first line\nsecond line")
    expect(ana.page.locator("#messages li[data-id]")).to_have_count(0)
    expect(ana.page.locator("#outbox li")).to_have_count(0)

    box.press("Enter")
    body = ana.page.locator("#messages li[data-id] .body").last
    expect(body).to_have_text("first line\nsecond line")
    expect(box).to_have_value("")


def test_html_in_body_and_nick_is_shown_as_text(open_chat):
    evil_nick = "<script>window.__xss=2</script>"
    evil_body = "<img src=x onerror=window.__xss=1>"
    mallory = open_chat(evil_nick)
    bia = open_chat("Bia")

    mallory.send(evil_body)

    for chat in (mallory, bia):
        expect(chat.message_bodies(evil_body)).to_have_count(1)
        log = chat.page.locator("#log")
        expect(log.locator("img")).to_have_count(0)
        expect(log.locator("script")).to_have_count(0)
        assert chat.page.evaluate("typeof window.__xss") == "undefined"
    expect(bia.page.locator("#messages li[data-id] .nick").last).to_have_text(evil_nick)
    bia.page.locator("#online-toggle").click()
    expect(bia.page.locator("#online-list")).to_contain_text(evil_nick)
    expect(bia.page.locator("#online-panel script")).to_have_count(0)


@pytest.mark.parametrize("color_scheme", ["light", "dark"])
def test_page_fits_360_pixels_without_horizontal_overflow(open_chat, color_scheme):
    ana = open_chat(
        "Ana with a rather long nickname",
        viewport={"width": 360, "height": 740},
        color_scheme=color_scheme,
    )
    bia = open_chat("Bia")
    bia.send("Oi! Tudo bem?")
    ana.send("a" * 300)
    ana.send("https://example.com/" + "averyveryverylongpathsegment" * 6)
    expect(ana.page.locator("#messages li[data-id]")).to_have_count(3)

    assert ana.page.evaluate("document.documentElement.scrollWidth") <= 360
    for box in ana.page.locator("#messages li[data-id] .body").all():
        bounds = box.bounding_box()
        assert bounds["x"] >= 0 and bounds["x"] + bounds["width"] <= 360, bounds
    ana.screenshot(f"chat-narrow-360-{color_scheme}")


# Tailwind 4 colours are oklch(); a canvas turns any CSS colour into sRGB bytes.
BODY_LUMINANCE = """() => {
    const ctx = document.createElement("canvas").getContext("2d");
    ctx.fillStyle = getComputedStyle(document.body).backgroundColor;
    ctx.fillRect(0, 0, 1, 1);
    const [r, g, b] = ctx.getImageData(0, 0, 1, 1).data;
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}"""


def test_dark_color_scheme_uses_a_dark_background(open_chat):
    ana = open_chat("Ana", color_scheme="dark")
    bia = open_chat("Bia")
    bia.send("Boa noite!")
    ana.send("Good evening")
    expect(ana.message_bodies("Boa noite!")).to_have_count(1)

    assert ana.page.evaluate(BODY_LUMINANCE) < 50
    ana.screenshot("chat-dark")


def test_light_color_scheme_uses_a_light_background(open_chat):
    ana = open_chat("Ana", color_scheme="light")
    assert ana.page.evaluate(BODY_LUMINANCE) > 200


def test_brazilian_portuguese_browser_gets_portuguese_page(open_chat):
    ana = open_chat("Ana", locale="pt-BR")
    bia = open_chat("Bia")
    ana.send("Oi")

    page = ana.page
    expect(page.locator("html")).to_have_attribute("lang", "pt-br")
    expect(page.locator("#status-text")).to_have_text("Conectado")
    expect(page.locator("#online-count")).to_have_text("2 online")
    expect(page.get_by_role("button", name="Enviar")).to_be_visible()
    expect(page.get_by_label("Mensagem", exact=True)).to_be_visible()
    expect(page.locator("#messages li[data-id] .nick").last).to_have_text("Você")
    expect(bia.page.locator("#status-text")).to_have_text("Online")
    ana.screenshot("chat-pt-br")


def test_other_persons_typing_is_shown(open_chat):
    ana = open_chat("Ana")
    bia = open_chat("Bia")

    bia.page.locator("#body").type("hel")

    expect(ana.page.locator("#typing")).to_have_text("Bia is typing…")
    expect(bia.page.locator("#typing")).to_have_text("")
    bia.page.locator("#body").press("Enter")
    expect(ana.page.locator("#typing")).to_have_text("")


def test_nickname_change_is_remembered_and_shown_to_others(open_chat):
    ana = open_chat("Ana")
    bia = open_chat("Bia")

    ana.page.locator("#nick-toggle").click()
    ana.page.get_by_label("Your nickname").fill("Ana Clara")
    ana.page.get_by_label("Your nickname").press("Enter")

    expect(ana.page.locator("#nick-current")).to_have_text("Ana Clara")
    expect(bia.page.locator("#messages .notice").last).to_have_text("Ana is now Ana Clara")
    assert ana.page.evaluate("localStorage.getItem('chat.nick')") == "Ana Clara"
    ana.send("new name")
    expect(bia.page.locator("#messages li[data-id] .nick").last).to_have_text("Ana Clara")
    ana.page.reload()
    expect(ana.page.locator("#nick-current")).to_have_text("Ana Clara")


def test_join_and_leave_are_shown_discreetly(open_chat):
    ana = open_chat("Ana")
    bia = open_chat("Bia")
    expect(ana.page.locator("#messages .notice").last).to_have_text("Bia joined")
    bia.context.close()
    expect(ana.page.locator("#messages .notice").last).to_have_text("Bia left")
    expect(ana.page.locator("#online-count")).to_have_text("1 online")


def test_online_list_toggles_from_the_keyboard(open_chat):
    ana = open_chat("Ana")
    open_chat("Bia")
    toggle = ana.page.locator("#online-toggle")
    toggle.focus()
    ana.page.keyboard.press("Enter")

    expect(toggle).to_have_attribute("aria-expanded", "true")
    expect(ana.page.locator("#online-list li")).to_have_count(2)
    expect(ana.page.locator("#online-list li").first).to_contain_text("Ana")
    expect(ana.page.locator("#online-list li").first).to_contain_text("(you)")
    ana.page.keyboard.press("Escape")
    expect(ana.page.locator("#online-panel")).to_be_hidden()
    expect(toggle).to_be_focused()


def test_reader_who_scrolled_up_is_not_yanked_down(open_chat):
    ana = open_chat("Ana", viewport={"width": 800, "height": 500})
    bia = open_chat("Bia")
    # Few but tall messages: the server allows 10 per 10 seconds.
    for n in range(6):
        bia.send("\n".join(f"filler {n}.{line}" for line in range(6)))
    expect(ana.message_bodies("filler 5.5")).to_have_count(1)
    log = ana.page.locator("#log")
    log.evaluate("el => { el.scrollTop = 0; el.dispatchEvent(new Event('scroll')); }")

    bia.send("while you were reading")
    expect(ana.message_bodies("while you were reading")).to_have_count(1)
    assert log.evaluate("el => el.scrollTop") == 0
    jump = ana.page.locator("#jump")
    expect(jump).to_be_visible()
    ana.screenshot("chat-new-messages-button")
    jump.click()
    expect(jump).to_be_hidden()
    assert log.evaluate("el => el.scrollHeight - el.scrollTop - el.clientHeight") < 2


def test_counter_appears_near_the_length_limit(open_chat):
    ana = open_chat("Ana")
    counter = ana.page.locator("#counter")
    ana.page.locator("#body").fill("x" * 100)
    expect(counter).to_be_hidden()
    ana.page.locator("#body").fill("x" * 1990)
    expect(counter).to_have_text("10 characters left")
    ana.page.locator("#body").fill("x" * 2003)
    expect(counter).to_have_text("3 characters too many")
    ana.page.locator("#body").press("Enter")
    expect(ana.page.locator("#outbox li")).to_have_count(0)
