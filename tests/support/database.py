"""The test database as child processes and other connections see it."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator


def database_url(settings_dict: dict) -> str:
    """A DATABASE_URL for the database the test process is using."""
    engine = settings_dict["ENGINE"]
    if engine.endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    if engine.endswith("postgresql"):
        user = settings_dict.get("USER") or ""
        password = settings_dict.get("PASSWORD") or ""
        auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = settings_dict.get("HOST") or "127.0.0.1"
        port = settings_dict.get("PORT") or "5432"
        return f"postgres://{auth}{host}:{port}/{settings_dict['NAME']}"
    raise RuntimeError(f"unsupported engine for live tests: {engine}")


@contextlib.contextmanager
def table_locked(*, reads: bool = False) -> Iterator[None]:
    """Lock the messages table of the test database from another connection: against
    writes, or with `reads` against reads too (PostgreSQL only: SQLite in WAL mode never
    blocks readers)."""
    from django.db import connection

    settings = connection.settings_dict
    if connection.vendor == "sqlite":
        assert not reads, "SQLite in WAL mode cannot block readers"
        other = sqlite3.connect(settings["NAME"], isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        try:
            yield
        finally:
            other.execute("ROLLBACK")
            other.close()
    else:
        import psycopg

        other = psycopg.connect(
            host=settings["HOST"] or "127.0.0.1",
            port=settings["PORT"] or 5432,
            user=settings["USER"],
            password=settings["PASSWORD"] or None,
            dbname=settings["NAME"],
        )
        mode = "ACCESS EXCLUSIVE" if reads else "EXCLUSIVE"
        other.execute(f"LOCK TABLE chat_message IN {mode} MODE")
        try:
            yield
        finally:
            other.rollback()
            other.close()
