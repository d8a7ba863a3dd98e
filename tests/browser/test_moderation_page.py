"""The page side of moderation and accounts (issue 10): retractions, the account mark, the
moderator's buttons, the `muted` and `forbidden` errors, and sign-in in the header.

Against the real app throughout. Page logic that needs a particular frame (a moderator's
`hello.user`, `message.account` on a guest's nickname, a `muted` or `forbidden` error, a late
copy of a retracted message) or needs to see what the page sends without the server acting on
it gets it through the test: the page's socket to the real server passes through
`ChatPage.relay`, which rewrites, drops or injects frames. The page's pure builders
(render.js, timeline.js) are also imported into the page and checked directly. The same
behaviours with real accounts, real moderator frames and the admin, with nothing in between,
are in test_moderation_e2e.py.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from playwright.sync_api import expect

from tests.support.page import ChatPage, Frame

pytestmark = pytest.mark.browser

MODERATOR = {"name": "Mo", "moderator": True}
MEMBER = {"name": "Mem", "moderator": False}


def as_user(user: dict | None) -> Callable[[Frame], Frame]:
    """Rewrite `hello` as the server does for a signed-in account (None: a guest)."""

    def rewrite(frame: Frame) -> Frame:
        if frame.get("type") == "hello":
            frame["user"] = user
        return frame

    return rewrite


def accounts(*nicks: str) -> Callable[[Frame], Frame]:
    """Rewrite message frames (live and in `hello`) with `account` true for `nicks`."""

    def mark(message: Frame) -> None:
        message["account"] = message.get("nick") in nicks

    def rewrite(frame: Frame) -> Frame:
        if frame.get("type") == "message":
            mark(frame)
        for message in frame.get("history", []) if frame.get("type") == "hello" else []:
            mark(message)
        return frame

    return rewrite


def last_message(chat: ChatPage):
    return chat.page.locator("#messages li[data-id]").last


def time_of(item) -> str:
    """The time as the page shows it ("2:02 PM")."""
    return item.locator("time").text_content()


# Imports one of the page's own modules next to chat.js (same origin, allowed by the CSP).
IMPORT = "name => import(new URL(name, document.querySelector('script[type=module]').src))"

RENDER = (
    """async ({message, own}) => {
    const {messageItem, Clock} = await ("""
    + IMPORT
    + """)("render.js");
    const clock = new Clock("en");
    const accountLabel = "signed-in account";
    const li = messageItem({message, own, youLabel: "You", clock, accountLabel});
    return {marks: li.querySelectorAll(".account-mark").length, author: li.dataset.author,
            text: li.textContent};
}"""
)


def render(chat: ChatPage, *, nick: str, account: bool, own: bool = False) -> dict:
    message = {
        "type": "message",
        "id": 1,
        "nick": nick,
        "body": "hi",
        "sent_at": "2026-11-29T14:02:00Z",
        "client_id": None,
        "session": "s1",
        "account": account,
    }
    return chat.page.evaluate(RENDER, {"message": message, "own": own})


# --- retract ---------------------------------------------------------------------------------


@pytest.mark.redis
def test_retract_from_the_server_removes_the_message(open_chat, redis_url, monkeypatch):
    from django.db import connections

    from chat import broadcast
    from chat.layers import RedisBroadcastChannelLayer
    from chat.moderation import message_delete
    from tests.support.environment import REDIS_PREFIX

    # This process publishes the retraction through the workers' Redis, as the admin does.
    layer = RedisBroadcastChannelLayer(hosts=[redis_url], prefix=f"{REDIS_PREFIX}:layer")
    monkeypatch.setattr(broadcast, "get_channel_layer", lambda: layer)
    ana = open_chat("Ana")
    bia = open_chat("Bia")
    bia.send("keep me")
    bia.send("delete me")
    expect(ana.message_bodies("delete me")).to_have_count(1)
    doomed = int(last_message(ana).get_attribute("data-id"))

    def delete() -> None:
        # A thread of its own: Playwright's sync API keeps an event loop in this one.
        try:
            message_delete(ids=[doomed], by=None, via="admin")
        finally:
            connections.close_all()

    with ThreadPoolExecutor(1) as pool:
        pool.submit(delete).result(timeout=10)

    for chat in (ana, bia):
        expect(chat.message_bodies("delete me")).to_have_count(0)
        expect(chat.message_bodies("keep me")).to_have_count(1)


def test_retract_before_the_message_hides_its_later_copy_without_gap_repair(open_chat):
    ana = open_chat("Ana", wait_online=False)
    bia = open_chat("Bia")
    # In Ana's history: ids up to here are all accounted for.
    bia.send("before")
    expect(bia.message_bodies("before")).to_have_count(1)
    held: list[Frame] = []

    def hold_back(frame: Frame) -> Frame | None:
        if frame.get("body") == "retracted on the way":
            held.append(frame)
            return None
        return frame

    relay = ana.relay(to_page=hold_back)
    api_calls: list[str] = []
    ana.page.on("request", lambda r: api_calls.append(r.url) if "/api/messages" in r.url else None)
    bia.send("retracted on the way")
    expect(bia.message_bodies("retracted on the way")).to_have_count(1)
    for _ in range(50):
        if held:
            break
        ana.page.wait_for_timeout(100)
    assert len(held) == 1
    relay.inject({"type": "retract", "id": held[0]["id"]})
    relay.inject(held[0])  # a late copy, as from a slow worker
    bia.send("after it")

    expect(ana.message_bodies("after it")).to_have_count(1)
    # Longer than the gap grace: a repair would have asked the API by now.
    ana.page.wait_for_timeout(2500)
    expect(ana.message_bodies("retracted on the way")).to_have_count(0)
    assert api_calls == []


def test_timeline_counts_a_retracted_id_as_a_hole_and_refuses_it_later(open_chat):
    ana = open_chat("Ana")
    result = ana.page.evaluate(
        """async () => {
        const {Timeline} = await ("""
        + IMPORT
        + """)("timeline.js");
        const timeline = new Timeline();
        timeline.add({id: 1});
        timeline.add({id: 3});
        const gapBefore = timeline.hasGap();
        timeline.retract(2);
        return {gapBefore, gapAfter: timeline.hasGap(), readded: timeline.add({id: 2}),
                maxId: timeline.maxId};
    }"""
    )
    assert result == {"gapBefore": True, "gapAfter": False, "readded": False, "maxId": 3}


# --- the account mark -----------------------------------------------------------------------


def test_message_from_an_account_shows_a_named_mark(open_chat):
    ana = open_chat("Ana", wait_online=False)
    bia = open_chat("Bia")
    ana.relay(to_page=accounts("Bia"))
    bia.send("from an account")

    item = last_message(ana)
    expect(item.locator(".body")).to_have_text("from an account")
    mark = item.locator(".account-mark")
    expect(mark).to_be_visible()
    expect(mark).to_have_text("signed-in account")
    expect(mark).to_have_attribute("title", "signed-in account")


def test_message_from_a_guest_shows_no_mark(open_chat):
    ana = open_chat("Ana", wait_online=False)
    bia = open_chat("Bia")
    ana.relay(to_page=accounts())  # every message with account: false
    bia.send("from a guest")

    expect(ana.message_bodies("from a guest")).to_have_count(1)
    expect(ana.page.locator("#messages .account-mark")).to_have_count(0)


def test_a_nickname_cannot_fake_the_mark(open_chat):
    ana = open_chat("Ana")
    faked = render(ana, nick="Ana ✓ signed-in account", account=False)
    real = render(ana, nick="Ana", account=True)
    assert faked["marks"] == 0
    assert real["marks"] == 1


def test_an_account_and_a_guest_with_one_nickname_are_different_authors(open_chat):
    # Otherwise a guest's message could join an account's group, under its marked name.
    ana = open_chat("Ana")
    assert render(ana, nick="Ana", account=True)["author"] == "a:Ana"
    assert render(ana, nick="Ana", account=False)["author"] == "n:Ana"


# --- moderator buttons ----------------------------------------------------------------------


def test_moderator_sees_named_buttons_on_others_messages(open_chat):
    mo = open_chat("Mo", wait_online=False)
    bia = open_chat("Bia")
    mo.relay(to_page=as_user(MODERATOR))
    bia.send("moderate me")

    item = last_message(mo)
    expect(item.locator(".body")).to_have_text("moderate me")
    at = time_of(item)
    page = mo.page
    expect(page.get_by_role("button", name=f"Delete message from Bia at {at}")).to_be_visible()
    expect(page.get_by_role("button", name="Mute Bia for 10 minutes")).to_be_visible()
    expect(page.get_by_role("button", name="Ban Bia for 1 hour")).to_be_visible()
    mo.screenshot("moderator-buttons")


def test_moderator_own_message_has_delete_only(open_chat):
    mo = open_chat("Mo", wait_online=False)
    mo.relay(to_page=as_user(MODERATOR))
    mo.send("my own")

    item = last_message(mo)
    expect(item.locator(".body")).to_have_text("my own")
    expect(item.get_by_role("button")).to_have_count(1)
    own_delete = item.get_by_role("button", name=f"Delete your message at {time_of(item)}")
    expect(own_delete).to_be_visible()


def test_guest_sees_no_moderator_buttons(open_chat):
    ana = open_chat("Ana")
    bia = open_chat("Bia")
    bia.send("nothing to moderate")

    expect(ana.message_bodies("nothing to moderate")).to_have_count(1)
    expect(ana.page.locator("#messages button")).to_have_count(0)


def test_account_without_moderation_sees_no_moderator_buttons(open_chat):
    mem = open_chat("Mem", wait_online=False)
    bia = open_chat("Bia")
    mem.relay(to_page=as_user(MEMBER))
    bia.send("still nothing to moderate")

    expect(mem.message_bodies("still nothing to moderate")).to_have_count(1)
    expect(mem.page.locator("#messages button")).to_have_count(0)


def test_delete_from_the_keyboard_asks_first_then_sends_the_id(open_chat):
    mo = open_chat("Mo", wait_online=False)
    bia = open_chat("Bia")
    # Only the page was made a moderator: the frame stops here (the server would refuse it).
    relay = mo.relay(
        to_page=as_user(MODERATOR), to_server=lambda f: None if f["type"] == "delete" else f
    )
    bia.send("delete me")
    item = last_message(mo)
    expect(item.locator(".body")).to_have_text("delete me")
    questions: list[str] = []

    def answer(dialog) -> None:
        questions.append(dialog.message)
        dialog.accept()

    mo.page.on("dialog", answer)
    item.get_by_role("button", name=re.compile("^Delete message")).focus()
    mo.page.keyboard.press("Enter")

    expect(mo.page.locator("#notice")).to_have_text("Deleting the message…")
    assert questions == [f"Delete the message from Bia at {time_of(item)} for everyone?"]
    assert relay.sent[-1] == {"type": "delete", "id": int(item.get_attribute("data-id"))}


def test_dismissed_delete_sends_nothing(open_chat):
    mo = open_chat("Mo", wait_online=False)
    bia = open_chat("Bia")
    relay = mo.relay(to_page=as_user(MODERATOR))
    bia.send("keep me")
    item = last_message(mo)
    expect(item.locator(".body")).to_have_text("keep me")
    before = len(relay.sent)

    mo.page.once("dialog", lambda dialog: dialog.dismiss())
    item.get_by_role("button", name=re.compile("^Delete message")).click()

    mo.page.wait_for_timeout(300)
    assert relay.sent[before:] == []
    expect(mo.page.locator("#notice")).to_have_text("")


@pytest.mark.parametrize(
    ("action", "name", "seconds", "notice"),
    [
        ("mute", "Mute", 600, "Muting Bia for 10 minutes…"),
        ("ban", "Ban", 3600, "Banning Bia for 1 hour…"),
    ],
)
def test_mute_and_ban_send_the_senders_session_and_duration(
    open_chat, action, name, seconds, notice
):
    mo = open_chat("Mo", wait_online=False)
    bia = open_chat("Bia")
    # Only the page was made a moderator: the frames stop here (the server would refuse them).
    relay = mo.relay(
        to_page=as_user(MODERATOR), to_server=lambda f: None if f["type"] == action else f
    )
    bia.send("troublemaker")
    item = last_message(mo)
    expect(item.locator(".body")).to_have_text("troublemaker")
    bia_session = json.loads(bia.page.evaluate("sessionStorage.getItem('chat.sessions')"))[-1]

    mo.page.once("dialog", lambda dialog: dialog.accept())
    item.get_by_role("button", name=re.compile(f"^{name} Bia")).click()

    expect(mo.page.locator("#notice")).to_have_text(notice)
    assert relay.sent[-1] == {"type": action, "session": bia_session, "seconds": seconds}


# --- errors ---------------------------------------------------------------------------------


def test_muted_message_fails_with_the_reason_and_waits_for_retry(open_chat):
    ana = open_chat("Ana", wait_online=False)
    relay = None

    def refuse(frame: Frame) -> Frame | None:
        if frame.get("type") != "message":
            return frame
        relay.inject(
            {
                "type": "error",
                "code": "muted",
                "detail": "You are muted.",
                "client_id": frame["client_id"],
                "retry_after": 540,
            }
        )
        return None

    relay = ana.relay(to_server=refuse)
    ana.send("while muted")

    failed = ana.page.locator("#outbox li[data-state=failed]")
    expect(failed).to_contain_text("Not sent: you are muted for 9 minutes.")
    expect(failed.get_by_role("button", name="Retry")).to_be_visible()
    ana.page.wait_for_timeout(2000)
    assert [f["type"] for f in relay.sent].count("message") == 1


def test_forbidden_shows_the_detail_in_the_notice(open_chat):
    ana = open_chat("Ana", wait_online=False)
    relay = ana.relay()
    relay.inject({"type": "error", "code": "forbidden", "detail": "Only moderators can do that."})
    expect(ana.page.locator("#notice")).to_have_text("Only moderators can do that.")


# --- the header -----------------------------------------------------------------------------


def test_header_offers_sign_in_to_guests(open_chat):
    ana = open_chat("Ana")
    link = ana.page.get_by_role("link", name="Sign in")
    expect(link).to_be_visible()
    expect(link).to_have_attribute("href", "/accounts/login/?next=/")
    expect(ana.page.get_by_role("button", name="Sign out")).to_have_count(0)


def test_header_names_the_signed_in_account(open_chat, make_account):
    make_account("Member", "member-pw-1")
    chat = open_chat()
    chat.sign_in("Member", "member-pw-1")
    expect(chat.page.locator("#account")).to_contain_text("Signed in as Member")
    expect(chat.page.get_by_role("button", name="Sign out")).to_be_visible()
    expect(chat.page.get_by_role("link", name="Sign in")).to_have_count(0)
    # The account's name is its nickname: no nickname editor.
    expect(chat.page.locator("#nick-toggle")).to_be_hidden()


def test_sign_out_posts_and_returns_to_the_chat_as_a_guest(open_chat, make_account):
    make_account("Member", "member-pw-1")
    chat = open_chat()
    chat.sign_in("Member", "member-pw-1")
    with chat.page.expect_request(lambda r: r.url.endswith("/accounts/logout/")) as request:
        chat.page.get_by_role("button", name="Sign out").click()
    assert request.value.method == "POST"
    expect(chat.page.get_by_role("link", name="Sign in")).to_be_visible()
    expect(chat.page.locator("#status")).to_have_attribute("data-state", "online")


def test_account_name_in_the_header_is_text(open_chat, make_account):
    make_account("<b>x</b>", "html-name-pw-1")
    chat = open_chat()
    chat.sign_in("<b>x</b>", "html-name-pw-1")
    expect(chat.page.locator("#account-name")).to_have_text("Signed in as <b>x</b>")
    expect(chat.page.locator("#account b")).to_have_count(0)


# --- layout and languages -------------------------------------------------------------------


@pytest.mark.parametrize("color_scheme", ["light", "dark"])
def test_moderator_buttons_fit_360_pixels(open_chat, color_scheme):
    mo = open_chat(
        "Mo", wait_online=False, viewport={"width": 360, "height": 740}, color_scheme=color_scheme
    )
    bia = open_chat("Bia with a rather long nickname")
    mo.relay(to_page=lambda f: accounts("Bia with a rather long nickname")(as_user(MODERATOR)(f)))
    bia.send("a" * 200)
    mo.send("mine")
    expect(mo.page.locator("#messages li[data-id]")).to_have_count(2)

    assert mo.page.evaluate("document.documentElement.scrollWidth") <= 360
    buttons = mo.page.locator("#messages button")
    expect(buttons).to_have_count(4)
    for button in buttons.all():
        bounds = button.bounding_box()
        assert bounds["x"] >= 0 and bounds["x"] + bounds["width"] <= 360, bounds
        assert bounds["height"] >= 24, bounds
    mo.screenshot(f"moderator-360-{color_scheme}")


def test_moderation_is_in_portuguese(open_chat):
    mo = open_chat("Mo", wait_online=False, locale="pt-BR")
    bia = open_chat("Bia")
    mo.relay(to_page=lambda f: accounts("Bia")(as_user(MODERATOR)(f)))
    bia.send("oi")

    item = last_message(mo)
    expect(item.locator(".body")).to_have_text("oi")
    at = time_of(item)
    page = mo.page
    expect(page.get_by_role("button", name=f"Apagar mensagem de Bia às {at}")).to_be_visible()
    expect(page.get_by_role("button", name="Silenciar Bia por 10 minutos")).to_be_visible()
    expect(page.get_by_role("button", name="Banir Bia por 1 hora")).to_be_visible()
    expect(item.locator(".account-mark")).to_have_text("conta conectada")
    expect(page.get_by_role("link", name="Entrar")).to_be_visible()
