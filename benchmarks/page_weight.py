"""What the chat page costs a browser: the HTML, the CSS and every ES module it imports, as
served by one daphne with debug off (hashed, compressed static files), per encoding.

    .venv/bin/python -m benchmarks.page_weight

It migrates an SQLite file and collects the static files into a temporary folder, starts
daphne on a free port of 127.0.0.1 (no Redis), follows the page's `<link>` and `<script>`
tags and the modules' static and dynamic imports (comments, such as JSDoc type imports, are
not requests), and prints the number of requests and the bytes of the response bodies with
`Accept-Encoding: identity`, `gzip` and `br` (headers not counted). The README's table
("Static files") comes from it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from benchmarks import servers

ASSET = re.compile(r'(?:href|src)="(/static/[^"]+\.(?:css|js))"')
IMPORT = re.compile(r'(?:from\s+|import\s*\(\s*|import\s+)"(\./[^"]+\.js)"')
BLOCK_COMMENT = re.compile(r"/\*.*?\*/", re.S)
LINE_COMMENT = re.compile(r"^\s*//.*$", re.M)


def _get(port: int, path: str, encoding: str) -> tuple[bytes, str | None]:
    request = urllib.request.Request(
        f"http://{servers.HOST}:{port}{path}", headers={"Accept-Encoding": encoding}
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 (http, loopback)
        return response.read(), response.headers.get("Cache-Control")


def assets(port: int, html: str) -> list[str]:
    """Every static path the page makes a browser fetch, in discovery order."""
    seen: list[str] = []
    queue = ASSET.findall(html)
    while queue:
        path = queue.pop(0)
        if path in seen:
            continue
        seen.append(path)
        if path.endswith(".js"):
            code = _get(port, path, "identity")[0].decode()
            code = LINE_COMMENT.sub("", BLOCK_COMMENT.sub("", code))
            folder = path.rsplit("/", 1)[0]
            queue += [f"{folder}/{name[2:]}" for name in IMPORT.findall(code)]
    return seen


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="page-weight-"))
    db = f"sqlite:///{work}/db.sqlite3"
    servers.migrate(db)
    env = servers.product_env(
        db_url=db, redis_url="", prefix="page-weight", extra={"DJANGO_STATIC_ROOT": str(work)}
    )
    env.pop("REDIS_URL")
    manage = [sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"]
    subprocess.run(manage, cwd=servers.ROOT, env=env, check=True, timeout=120)
    port = servers.free_port()
    command = [str(servers.BIN / "daphne"), "-b", servers.HOST, "-p", str(port)]
    proc = subprocess.Popen(
        [*command, "chatproject.asgi:application"],
        cwd=servers.ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                _get(port, "/healthz/live", "identity")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        html = _get(port, "/", "identity")[0]
        paths = assets(port, html.decode())
        modules = sum(path.endswith(".js") for path in paths)
        print(
            f"requests: {1 + len(paths)} (the HTML, {len(paths) - modules} CSS, {modules} modules)"
        )
        print(f"HTML: {len(html) / 1000:.1f} kB (sent uncompressed)")
        for encoding in ("identity", "gzip", "br"):
            total = len(_get(port, "/", encoding)[0])
            caching = set()
            for path in paths:
                body, cache_control = _get(port, path, encoding)
                total += len(body)
                caching.add(cache_control)
            cached = ", ".join(map(str, caching))
            print(f"{encoding}: {total / 1000:.1f} kB; static files cached: {cached}")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
