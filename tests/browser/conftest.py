"""Browser fixtures: Debian's Chromium, a live daphne, and chat pages with a nickname."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from tests.support.environment import missing
from tests.support.page import ChatPage
from tests.support.servers import Daphne

CHROMIUM = "/usr/bin/chromium"

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# What Chromium logs when a test takes the network or the server away on purpose.
NETWORK_NOISE = ("WebSocket connection to", "ERR_INTERNET_DISCONNECTED", "ERR_CONNECTION_REFUSED")


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    """Launch the system Chromium: Playwright downloads no browser here."""
    import os

    if not os.path.exists(CHROMIUM):
        missing(f"{CHROMIUM} is not installed (apt-get install chromium)")
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": CHROMIUM_ARGS,
    }


@pytest.fixture
def server(request: pytest.FixtureRequest, daphne_factory: Callable[..., Daphne]) -> Daphne:
    """One daphne on the test database: on the in-memory channel layer, or on the real Redis
    for a test marked `redis` (so that this process can publish to its pages)."""
    if request.node.get_closest_marker("redis"):
        return daphne_factory(redis_url=request.getfixturevalue("redis_url"))
    return daphne_factory(redis_url=None)


@pytest.fixture
def make_account(django_user_model: Any) -> Callable[..., Any]:
    """Create accounts that the daphne under test can sign in: it hashes with the real
    settings' PBKDF2, which cannot check the test process's fast MD5 hashes."""
    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    def make(username: str, password: str, **fields: Any) -> Any:
        hasher = PBKDF2PasswordHasher()
        # Few iterations to create it fast; the server upgrades the hash at the first sign-in.
        encoded = hasher.encode(password, hasher.salt(), iterations=1000)
        return django_user_model.objects.create(username=username, password=encoded, **fields)

    return make


@pytest.fixture
def open_chat(browser: Browser, server: Daphne) -> Iterator[Callable[..., ChatPage]]:
    """Open the chat as a person with a nickname (in a fresh browser context)."""
    opened: list[ChatPage] = []

    def open_(nick: str | None = None, *, wait_online: bool = True, **context_args) -> ChatPage:
        context = browser.new_context(**context_args)
        if nick is not None:
            # Only when unset, so a reload keeps whatever the page stored itself.
            context.add_init_script(
                f"if (!localStorage.getItem('chat.nick'))"
                f" localStorage.setItem('chat.nick', {json.dumps(nick)});"
            )
        page = context.new_page()
        chat = ChatPage(page=page, context=context)
        page.on("pageerror", lambda exc: chat.problems.append(f"pageerror: {exc}"))
        page.on(
            "console",
            lambda msg: (
                chat.problems.append(f"console: {msg.text}") if msg.type == "error" else None
            ),
        )
        page.goto(server.http_url + "/")
        if wait_online:
            expect(page.locator("#status")).to_have_attribute("data-state", "online")
        opened.append(chat)
        return chat

    yield open_
    for chat in opened:
        chat.context.close()
    # Script errors and CSP violations show up on the console.
    problems = [
        p
        for chat in opened
        for p in chat.problems
        if not any(n in p for n in (*NETWORK_NOISE, *chat.expected_noise))
    ]
    assert not problems, problems
