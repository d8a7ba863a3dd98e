"""Moved to tests/support/client.py; this name stays for test modules written on parallel
branches against it. Import from tests.support.client in new code."""

from tests.support.client import ChatClient

__all__ = ["ChatClient"]
