"""A chat page in Chromium (Playwright's sync API) and a relay for its socket."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from playwright.sync_api import BrowserContext, Page, WebSocketRoute, expect

from tests.support.servers import ARTIFACTS

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
