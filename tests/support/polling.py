"""Waiting for a condition instead of sleeping a fixed time (a busy machine is slower)."""

import time
from collections.abc import Callable


def wait_for(check: Callable[[], object], *, timeout: float = 10.0) -> None:
    """Poll `check` until it returns something true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
