"""Browser fixtures: Debian's Chromium, a live daphne, and chat pages with a nickname."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, WebSocketRoute, expect

from tests.conftest import _missing
from tests.live import ARTIFACTS, Daphne

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
        _missing(f"{CHROMIUM} is not installed (apt-get install chromium)")
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


Frame = dict[str, Any]


def _same(frame: Frame) -> Frame:
    return frame


@dataclass
class Relay:
    """A page's socket to the real server, passed through the test: each frame either way
    goes through `to_page` or `to_server` (return the frame, changed or not, or None to
    drop it), and `inject` hands the page a frame the server did not send."""

    to_page: Callable[[Frame], Frame | None] = _same
    to_server: Callable[[Frame], Frame | None] = _same
    # Every frame the page sent, before `to_server`.
    sent: list[Frame] = field(default_factory=list)
    page_side: WebSocketRoute | None = None

    def route(self, ws: WebSocketRoute) -> None:
        self.page_side = ws
        server = ws.connect_to_server()

        def down(text: str | bytes) -> None:
            frame = self.to_page(json.loads(text))
            if frame is not None:
                ws.send(json.dumps(frame))

        def up(text: str | bytes) -> None:
            frame = json.loads(text)
            self.sent.append(frame)
            frame = self.to_server(frame)
            if frame is not None:
                server.send(json.dumps(frame))

        server.on_message(down)
        ws.on_message(up)

    def inject(self, frame: Frame) -> None:
        """Send `frame` to the page as if the server had."""
        assert self.page_side is not None, "the page has no socket yet"
        self.page_side.send(json.dumps(frame))


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


@dataclass
class ChatPage:
    """A page of the chat in its own browser context, with the problems it logged."""

    page: Page
    context: BrowserContext
    problems: list[str] = field(default_factory=list)
    # Console errors a test provokes on purpose.
    expected_noise: list[str] = field(default_factory=list)

    def send(self, text: str) -> None:
        """Type a message and press Enter."""
        self.page.locator("#body").fill(text)
        self.page.locator("#body").press("Enter")

    def message_bodies(self, text: str):
        """The acknowledged messages in the log whose body is exactly `text`."""
        return self.page.locator("#messages li[data-id] .body").filter(has_text=text)

    def relay(
        self, relay: Relay | None = None, **handlers: Callable[[Frame], Frame | None]
    ) -> Relay:
        """Pass this page's socket through `relay` (or a new one with `handlers`): the page is
        reloaded so that its next socket is routed, and is online again on return."""
        relay = relay or Relay(**handlers)
        self.page.route_web_socket("**/ws/chat/**", relay.route)
        self.page.reload()
        expect(self.page.locator("#status")).to_have_attribute("data-state", "online")
        return relay

    def sign_in(self, username: str, password: str) -> None:
        """Sign in through the real login page, which leads back to the chat."""
        origin = self.page.evaluate("location.origin")
        self.page.goto(f"{origin}/accounts/login/?next=/")
        self.page.locator("#id_username").fill(username)
        self.page.locator("#id_password").fill(password)
        self.page.locator("#id_password").press("Enter")
        self.page.wait_for_url(f"{origin}/")
        expect(self.page.locator("#status")).to_have_attribute("data-state", "online")

    def screenshot(self, name: str) -> None:
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


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
