"""chat/middleware.py: refused handshakes say why, in a log line and (where the server
offers ASGI's denial response) in the body of the 403."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from chat.middleware import (
    DENIAL_EXTENSION,
    ExplainingOriginValidator,
    RefusedHandshakeLogger,
    refuse,
)


def _scope(*, origin: bytes | None = None, denial: bool = True) -> dict[str, Any]:
    headers = [(b"host", b"127.0.0.1")]
    if origin is not None:
        headers.append((b"origin", origin))
    return {
        "type": "websocket",
        "path": "/ws/chat/",
        "headers": headers,
        "client": ["127.0.0.1", 5000],
        "extensions": {DENIAL_EXTENSION: {}} if denial else {},
    }


async def _run(app: Any, scope: dict[str, Any]) -> list[dict[str, Any]]:
    """Run `app` for one handshake; the messages it sends to the server."""
    sent: list[dict[str, Any]] = []
    inbox = [{"type": "websocket.connect"}]

    async def receive() -> dict[str, Any]:
        return inbox.pop(0) if inbox else {"type": "websocket.disconnect", "code": 1006}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


async def _refusing(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await refuse(receive, send, reason="a reason")


async def _accepting(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": 4008, "reason": "later"})


async def test_a_refusal_becomes_a_403_whose_body_says_why() -> None:
    sent = await _run(RefusedHandshakeLogger(_refusing), _scope())
    assert [m["type"] for m in sent] == [
        "websocket.http.response.start",
        "websocket.http.response.body",
    ]
    assert sent[0]["status"] == 403
    assert (b"content-type", b"text/plain; charset=utf-8") in sent[0]["headers"]
    assert sent[1]["body"] == b"WebSocket handshake refused: a reason\n"


async def test_a_refusal_is_logged_once_with_its_reason(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="chat.middleware"):
        await _run(RefusedHandshakeLogger(_refusing), _scope(origin=b"http://x.example"))
    lines = [r.getMessage() for r in caplog.records if r.name == "chat.middleware"]
    assert len(lines) == 1
    assert "handshake refused: a reason" in lines[0]
    assert "origin=http://x.example" in lines[0]
    assert caplog.records[0].levelno == logging.WARNING


async def test_without_the_extension_the_close_keeps_its_reason() -> None:
    sent = await _run(RefusedHandshakeLogger(_refusing), _scope(denial=False))
    assert sent == [{"type": "websocket.close", "reason": "a reason"}]


async def test_a_close_after_accept_is_not_a_refusal(caplog: pytest.LogCaptureFixture) -> None:
    sent = await _run(RefusedHandshakeLogger(_accepting), _scope())
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.close"]
    assert "handshake refused" not in caplog.text


def _validator() -> ExplainingOriginValidator:
    return ExplainingOriginValidator(_accepting, ["localhost", "127.0.0.1"])


async def test_a_foreign_origin_is_refused_naming_it() -> None:
    sent = await _run(RefusedHandshakeLogger(_validator()), _scope(origin=b"http://evil.example"))
    body = sent[-1]["body"].decode()
    assert "origin 'http://evil.example' is not allowed" in body


async def test_a_missing_origin_is_refused_saying_a_client_must_send_one() -> None:
    sent = await _run(RefusedHandshakeLogger(_validator()), _scope())
    assert b"no Origin header" in sent[-1]["body"]


async def test_a_null_origin_is_refused() -> None:
    sent = await _run(RefusedHandshakeLogger(_validator()), _scope(origin=b"null"))
    assert b"origin 'null' is not allowed" in sent[-1]["body"]


async def test_an_allowed_origin_passes() -> None:
    sent = await _run(_validator(), _scope(origin=b"http://127.0.0.1:8000"))
    assert sent[0] == {"type": "websocket.accept"}


async def test_a_remembered_origin_gets_the_same_answer() -> None:
    validator = _validator()
    for _ in range(2):
        allowed = await _run(validator, _scope(origin=b"http://127.0.0.1:8000"))
        foreign = await _run(validator, _scope(origin=b"http://evil.example"))
        assert allowed[0] == {"type": "websocket.accept"}
        assert foreign == [{"type": "websocket.close", "reason": foreign[0]["reason"]}]


async def test_the_last_origin_header_is_the_one_checked() -> None:
    scope = _scope(origin=b"http://127.0.0.1:8000")
    scope["headers"].append((b"origin", b"http://evil.example"))
    sent = await _run(_validator(), scope)
    assert sent[0]["type"] == "websocket.close"


async def test_a_long_origin_is_cut_in_the_body() -> None:
    origin = b"http://" + b"a" * 500 + b".example"
    sent = await _run(RefusedHandshakeLogger(_validator()), _scope(origin=origin))
    assert len(sent[-1]["body"]) < 250


async def test_a_session_the_database_cannot_read_marks_the_handshake_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from channels.auth import AuthMiddleware
    from django.conf import settings
    from django.db import OperationalError

    from chat.middleware import DATABASE_DOWN, REFUSAL, GuestAwareAuthMiddleware

    async def database_down(self: Any, scope: dict[str, Any]) -> None:
        raise OperationalError("the database is down")

    monkeypatch.setattr(AuthMiddleware, "resolve_scope", database_down)
    middleware = GuestAwareAuthMiddleware(_accepting)
    scope: dict[str, Any] = {"cookies": {settings.SESSION_COOKIE_NAME: "k"}, "session": {}}
    middleware.populate_scope(scope)
    await middleware.resolve_scope(scope)
    assert scope[REFUSAL] == DATABASE_DOWN
    assert not scope["user"].is_authenticated


@pytest.mark.django_db(transaction=True)
async def test_the_consumer_refuses_a_handshake_marked_refused(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from channels.testing import WebsocketCommunicator

    from chat.consumers import ChatConsumer
    from chat.middleware import DATABASE_DOWN, REFUSAL

    consumer = ChatConsumer.as_asgi()

    async def marked(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await consumer({**scope, REFUSAL: DATABASE_DOWN}, receive, send)

    communicator = WebsocketCommunicator(RefusedHandshakeLogger(marked), "/ws/chat/")
    connected, _ = await communicator.connect()
    await communicator.disconnect()
    assert not connected
    assert f"handshake refused: {DATABASE_DOWN}" in caplog.text


def _seeing(found: list[dict[str, Any]]) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        found.append(scope)
        await _accepting(scope, receive, send)

    return app


async def test_a_handshake_without_a_session_cookie_is_a_guest_without_the_session_stack() -> None:
    from chat.middleware import AuthStack

    found: list[dict[str, Any]] = []
    scope = _scope(origin=b"http://127.0.0.1")
    scope["headers"].append((b"cookie", b"csrftoken=abc"))
    await _run(AuthStack(_seeing(found)), scope)
    assert found == [scope]  # the same scope, not a copy
    assert not found[0]["user"].is_authenticated
    assert "session" not in found[0]


@pytest.mark.django_db(transaction=True)
async def test_a_handshake_naming_the_session_cookie_takes_the_full_stack() -> None:
    from django.conf import settings

    from chat.middleware import AuthStack

    found: list[dict[str, Any]] = []
    scope = _scope(origin=b"http://127.0.0.1")
    cookie = f"csrftoken=abc; {settings.SESSION_COOKIE_NAME}=nosuchsession".encode()
    scope["headers"].append((b"cookie", cookie))
    await _run(AuthStack(_seeing(found)), scope)
    assert found[0]["cookies"][settings.SESSION_COOKIE_NAME] == "nosuchsession"
    assert "session" in found[0]
    assert not found[0]["user"].is_authenticated
