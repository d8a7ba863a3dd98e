"""Moderation and accounts end to end: real accounts signed in through the real forms, real
moderator frames, the real admin, and pages that only watch. Nothing between a page and the
server (no `Relay`): what a page shows here is what the server sent.

Each test runs on both channel layers a deployment can use: the in-memory one (a single
worker) and Redis (the broadcast layer with the worker's `Lobby`, as in production).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.support.page import ChatPage
from tests.support.polling import wait_for
from tests.support.servers import Daphne

pytestmark = pytest.mark.browser

# "Live" for a person: a moderator's delete reaches every open page within a second.
LIVE_MS = 1000


@pytest.fixture(params=["memory", "redis"])
def server(request: pytest.FixtureRequest, daphne_factory: Callable[..., Daphne]) -> Daphne:
    """One daphne on the test database, on the in-memory layer or on the real Redis."""
    if request.param == "redis":
        return daphne_factory(redis_url=request.getfixturevalue("redis_url"))
    return daphne_factory(redis_url=None)


@pytest.fixture
def open_admin(browser: Browser, server: Daphne) -> Iterator[Callable[[str, str], Page]]:
    """Sign a staff account in to the Django admin (at its default URL) in a browser context
    of its own; the admin's pages must log no script or CSP errors either."""
    contexts = []
    problems: list[str] = []

    def open_(username: str, password: str) -> Page:
        context = browser.new_context()
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: problems.append(f"pageerror: {exc}"))
        page.on(
            "console",
            lambda msg: (
                problems.append(f"console: {msg.text} ({msg.location['url']})")
                # The admin names no icon, so Chromium asks for /favicon.ico (404).
                if msg.type == "error" and not msg.location["url"].endswith("/favicon.ico")
                else None
            ),
        )
        # The message list: the admin asks a visitor to sign in first, then leads back.
        page.goto(f"{server.http_url}/admin/chat/message/")
        expect(page).to_have_url(re.compile(r"/admin/login/\?next="))
        page.locator("#id_username").fill(username)
        page.locator("#id_password").fill(password)
        page.locator("#id_password").press("Enter")
        page.wait_for_url(f"{server.http_url}/admin/chat/message/")
        return page

    yield open_
    for context in contexts:
        context.close()
    assert not problems, problems


def message_item(chat: ChatPage, text: str):
    """The acknowledged message whose body is exactly `text`, as a list item."""
    bodies = chat.page.locator(".body").get_by_text(text, exact=True)
    return chat.page.locator("#messages li[data-id]").filter(has=bodies)


def signed_in_moderator(open_chat, make_account) -> ChatPage:
    """A staff account's chat page, signed in through the real login form."""
    make_account("Mo", "mo-password-1", is_staff=True)
    mo = open_chat()
    mo.sign_in("Mo", "mo-password-1")
    expect(mo.page.locator("#account-name")).to_have_text("Signed in as Mo")
    return mo


def test_moderator_deletes_a_guest_message_and_it_vanishes_everywhere(open_chat, make_account):
    from chat.models import Deletion, Message

    bia = open_chat("Bia")
    mo = signed_in_moderator(open_chat, make_account)
    bia.send("keep me")
    bia.send("delete me")
    doomed = message_item(mo, "delete me")
    expect(doomed).to_have_count(1)
    expect(bia.message_bodies("delete me")).to_have_count(1)
    doomed_id = int(doomed.get_attribute("data-id"))
    at = doomed.locator("time").text_content()
    questions: list[str] = []

    def answer(dialog) -> None:
        questions.append(dialog.message)
        dialog.accept()

    mo.page.once("dialog", answer)
    delete = doomed.get_by_role("button", name=f"Delete message from Bia at {at}")
    delete.focus()
    expect(delete).to_be_focused()
    mo.page.keyboard.press("Enter")

    expect(bia.message_bodies("delete me")).to_have_count(0, timeout=LIVE_MS)
    expect(mo.message_bodies("delete me")).to_have_count(0, timeout=LIVE_MS)
    assert questions == [f"Delete the message from Bia at {at} for everyone?"]
    expect(bia.message_bodies("keep me")).to_have_count(1)

    bia.page.reload()
    expect(bia.page.locator("#status")).to_have_attribute("data-state", "online")
    expect(bia.message_bodies("keep me")).to_have_count(1)
    expect(bia.message_bodies("delete me")).to_have_count(0)
    assert not Message.objects.filter(id=doomed_id).exists()
    record = Deletion.objects.get(message_id=doomed_id)
    assert (record.body, record.via, record.deleted_by.username) == ("delete me", "page", "Mo")


def test_signed_in_member_message_shows_the_account_mark_to_a_guest(open_chat, make_account):
    make_account("Mem", "mem-password-1")
    ana = open_chat("Ana")
    mem = open_chat()
    mem.sign_in("Mem", "mem-password-1")
    expect(mem.page.locator("#account-name")).to_have_text("Signed in as Mem")

    mem.send("from an account")
    ana.send("from a guest")

    from_account = message_item(ana, "from an account")
    expect(from_account).to_have_count(1)
    expect(from_account).to_contain_text("Mem")
    mark = from_account.locator(".account-mark")
    expect(mark).to_be_visible()
    expect(mark).to_have_text("signed-in account")
    expect(message_item(ana, "from a guest")).to_have_count(1)
    expect(message_item(ana, "from a guest").locator(".account-mark")).to_have_count(0)


def test_admin_bulk_delete_retracts_from_open_pages(open_chat, open_admin, make_account):
    make_account("Staff", "staff-password-1", is_staff=True)
    ana = open_chat("Ana")
    bia = open_chat("Bia")
    for text in ("first to go", "stays", "second to go"):
        bia.send(text)
    for text in ("first to go", "stays", "second to go"):
        expect(message_item(ana, text)).to_have_count(1)
    doomed = [
        message_item(ana, text).get_attribute("data-id") for text in ("first to go", "second to go")
    ]

    admin = open_admin("Staff", "staff-password-1")
    for message_id in doomed:
        admin.locator(f"#result_list input.action-select[value='{message_id}']").check()
    admin.locator("select[name=action]").select_option(label="Delete selected messages")
    admin.get_by_role("button", name="Run").click()
    expect(admin.get_by_role("heading", name="Delete multiple objects")).to_be_visible()
    admin.get_by_role("button", name=re.compile("^Yes, I.m sure")).click()
    expect(admin.locator(".messagelist")).to_contain_text("Successfully deleted 2 messages")

    for text in ("first to go", "second to go"):
        expect(ana.message_bodies(text)).to_have_count(0, timeout=LIVE_MS)
        expect(bia.message_bodies(text)).to_have_count(0, timeout=LIVE_MS)
    expect(ana.message_bodies("stays")).to_have_count(1)


def test_moderator_mutes_a_guest_whose_next_message_fails_as_muted(open_chat, make_account, server):
    from chat.models import Message, Sanction

    bia = open_chat("Bia")
    mo = signed_in_moderator(open_chat, make_account)
    bia.send("before the mute")
    item = message_item(mo, "before the mute")
    expect(item).to_have_count(1)
    bia_session = json.loads(bia.page.evaluate("sessionStorage.getItem('chat.sessions')"))[-1]

    mo.page.once("dialog", lambda dialog: dialog.accept())
    item.get_by_role("button", name="Mute Bia for 10 minutes").click()
    expect(mo.page.locator("#notice")).to_have_text("Muting Bia for 10 minutes…")
    # The server acknowledges a mute to nobody. The worker logs it once its own sanctions
    # book holds it (after the commit and the reload): from then on Bia's message must fail.
    wait_for(lambda: f"mute of session {bia_session} " in server.log())
    assert Sanction.objects.filter(kind="mute", session=bia_session).exists()

    bia.send("while muted")

    failed = bia.page.locator("#outbox li[data-state=failed]")
    expect(failed).to_contain_text("while muted")
    expect(failed).to_contain_text("Not sent: you are muted for 10 minutes.")
    expect(failed.get_by_role("button", name="Retry")).to_be_visible()
    expect(mo.message_bodies("while muted")).to_have_count(0)
    assert not Message.objects.filter(body="while muted").exists()
