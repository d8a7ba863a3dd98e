"""Moved to tests/support (servers, database); this name stays for test modules written on
parallel branches against it. Import from tests.support in new code."""

from tests.support.database import database_url, table_locked
from tests.support.servers import (
    ARTIFACTS,
    ROOT,
    Daphne,
    PrivateRedis,
    Runserver,
    ServerProcess,
    Uvicorn,
    base_env,
    free_port,
)

__all__ = [
    "ARTIFACTS",
    "ROOT",
    "Daphne",
    "PrivateRedis",
    "Runserver",
    "ServerProcess",
    "Uvicorn",
    "base_env",
    "database_url",
    "free_port",
    "table_locked",
]
