"""Static files under the production settings (DEBUG off, after `collectstatic`): hashed
names in the page, cached for a year, compressed when the browser asks (chat.staticfiles)."""

from __future__ import annotations

import gzip
import re
import urllib.request
from pathlib import Path

import brotli
import pytest

from tests.support.servers import Daphne

pytestmark = pytest.mark.live

HASHED = re.compile(r"/static/(chat/[\w-]+\.[0-9a-f]{12}\.(?:css|js|svg))")
ONE_YEAR = 365 * 24 * 3600


def fetch(url: str, **headers: str) -> tuple[dict[str, str], bytes]:
    """GET `url`; the response headers (lower-case names) and the raw body."""
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=5) as resp:
        return {k.lower(): v for k, v in resp.getheaders()}, resp.read()


@pytest.fixture
def server(daphne_factory) -> Daphne:
    return daphne_factory(redis_url=None, name="static")


@pytest.fixture
def page_assets(server: Daphne) -> list[str]:
    """The hashed static names the page refers to."""
    _, html = fetch(f"{server.http_url}/")
    return HASHED.findall(html.decode())


def test_page_refers_to_hashed_names(page_assets):
    stems = {re.sub(r"\.[0-9a-f]{12}\.", ".", name) for name in page_assets}
    assert {"chat/app.css", "chat/chat.js", "chat/favicon.svg"} <= stems


def test_page_refers_to_no_unhashed_static_file(server):
    _, html = fetch(f"{server.http_url}/")
    names = re.findall(r"""(?:src|href)="/static/([^"]+)\"""", html.decode())
    assert names
    assert all(HASHED.match(f"/static/{name}") for name in names), names


def test_hashed_file_is_cached_for_a_year_and_immutable(server, page_assets):
    css = next(name for name in page_assets if name.endswith(".css"))
    headers, _ = fetch(f"{server.http_url}/static/{css}")
    cache = headers["cache-control"]
    max_age = int(re.search(r"max-age=(\d+)", cache).group(1))
    assert max_age >= ONE_YEAR
    assert "immutable" in cache and "public" in cache


def test_unhashed_name_is_not_cached_for_long(server):
    headers, _ = fetch(f"{server.http_url}/static/chat/app.css")
    assert "immutable" not in headers["cache-control"]


@pytest.mark.parametrize(
    ("encoding", "decompress"), [("gzip", gzip.decompress), ("br", brotli.decompress)]
)
def test_hashed_file_is_sent_compressed_when_asked(
    server, page_assets, collected_static: Path, encoding, decompress
):
    js = next(name for name in page_assets if name.startswith("chat/chat."))
    headers, body = fetch(f"{server.http_url}/static/{js}", **{"Accept-Encoding": encoding})
    assert headers["content-encoding"] == encoding
    assert "accept-encoding" in headers["vary"].lower()
    assert decompress(body) == (collected_static / js).read_bytes()
    assert len(body) < len(decompress(body)) / 2


def test_brotli_is_preferred_when_both_are_accepted(server, page_assets):
    css = next(name for name in page_assets if name.endswith(".css"))
    headers, _ = fetch(f"{server.http_url}/static/{css}", **{"Accept-Encoding": "gzip, br"})
    assert headers["content-encoding"] == "br"


def test_uncompressed_without_accept_encoding(server, page_assets):
    css = next(name for name in page_assets if name.endswith(".css"))
    headers, _ = fetch(f"{server.http_url}/static/{css}")
    assert "content-encoding" not in headers


def test_module_imports_use_hashed_names_that_are_served(server, page_assets):
    """The ES module imports between the page's scripts are rewritten to hashed names, so a
    release never mixes cached old modules with new ones."""
    js = next(name for name in page_assets if name.startswith("chat/chat."))
    _, body = fetch(f"{server.http_url}/static/{js}")
    imports = re.findall(r"""from\s*"(\./[^"]+)\"""", body.decode())
    assert imports
    for relative in imports:
        assert re.fullmatch(r"\./[\w-]+\.[0-9a-f]{12}\.js", relative), relative
        headers, _ = fetch(f"{server.http_url}/static/chat/{relative[2:]}")
        assert "immutable" in headers["cache-control"]
