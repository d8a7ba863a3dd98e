"""The page under the production static files (DEBUG off, after `collectstatic`): every
script and stylesheet by its hashed name, compressed, and the chat works."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

HASHED = re.compile(r"/static/chat/[\w-]+\.[0-9a-f]{12}\.(?:css|js|svg)")

RESOURCES = """
performance.getEntriesByType("resource")
  .filter(e => new URL(e.name).pathname.startsWith("/static/"))
  .map(e => ({path: new URL(e.name).pathname, encoded: e.encodedBodySize,
              decoded: e.decodedBodySize}))
"""


def test_page_loads_hashed_compressed_modules_and_works(open_chat):
    ana = open_chat("Ana")
    bia = open_chat("Bia")

    ana.send("served from hashed modules")

    expect(bia.message_bodies("served from hashed modules")).to_have_count(1)
    resources = ana.page.evaluate(RESOURCES)
    paths = {r["path"] for r in resources}
    # The entry module, the modules it imports and the stylesheet, all by hashed name.
    assert {re.sub(r"\.[0-9a-f]{12}\.", ".", p) for p in paths} >= {
        "/static/chat/chat.js",
        "/static/chat/render.js",
        "/static/chat/connection.js",
        "/static/chat/app.css",
    }
    assert all(HASHED.fullmatch(p) for p in paths), paths
    # Sent compressed: fewer bytes on the wire than in the file.
    for resource in resources:
        if resource["path"].endswith((".js", ".css")) and resource["decoded"] > 1000:
            assert resource["encoded"] < resource["decoded"] / 2, resource
