"""DJANGO_LOG_FORMAT=json: a real daphne worker writes one JSON object per line, with the
values of its messages as keys, and never a message body (chatproject/settings.py LOGGING)."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest

from tests.support.client import ChatClient

pytestmark = [pytest.mark.live, pytest.mark.redis]

BODY = "a-private-body-that-no-log-may-hold"


def parse_lines(log: str) -> list[dict[str, Any]]:
    """Every non-empty line as JSON (fails on the first line that is not)."""
    parsed = []
    for number, line in enumerate(log.splitlines(), 1):
        if not line.strip():
            continue
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            pytest.fail(f"line {number} is not JSON: {line!r}")
    return parsed


def first(lines: list[dict[str, Any]], prefix: str) -> dict[str, Any]:
    return next(line for line in lines if line["message"].startswith(prefix))


async def test_a_json_worker_logs_json_lines_with_keys_and_no_bodies(daphne_factory, redis_url):
    web = daphne_factory(redis_url=redis_url, name="jsonlog", DJANGO_LOG_FORMAT="json")
    urllib.request.urlopen(f"{web.http_url}/healthz/live", timeout=5).close()
    ana = await ChatClient.connect(web.ws_url, nick="Ana")
    try:
        await ana.say(BODY)
        await ana.recv_type("message", body=BODY)
        await ana.say("")  # refused: invalid_body
        await ana.recv_type("error", code="invalid_body")
    finally:
        await ana.close()
    web.stop()
    lines = parse_lines(web.log())

    assert {"time", "level", "logger", "process", "message"} <= set(lines[0])
    assert web.proc is not None
    assert {line["process"] for line in lines} == {web.proc.pid}
    connect = first(lines, "connect session=")
    assert (connect["session"], connect["client"]) == (ana.session, "127.0.0.1")
    refused = first(lines, "refused frame")
    assert (refused["level"], refused["code"], refused["session"]) == (
        "WARNING",
        "invalid_body",
        ana.session,
    )
    disconnect = first(lines, "disconnect session=")
    assert disconnect["session"] == ana.session and "code" in disconnect
    access = [line for line in lines if line["logger"] == "daphne.access"]
    assert ("/healthz/live", 200) in [(line["path"], line["status"]) for line in access]
    # The socket's connect and disconnect are the consumer's lines above, not daphne's too.
    assert [line for line in access if line["method"] == "WS"] == []
    assert BODY not in web.log()
