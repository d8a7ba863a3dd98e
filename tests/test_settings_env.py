"""The environment helper behind settings."""

import pytest
from django.core.exceptions import ImproperlyConfigured

from chatproject.env import env_bool, env_int, env_list, env_str


def test_env_str_default(monkeypatch):
    monkeypatch.delenv("X_TEST", raising=False)
    assert env_str("X_TEST", default="d") == "d"


def test_env_bool_true(monkeypatch):
    monkeypatch.setenv("X_TEST", "Yes")
    assert env_bool("X_TEST", default=False) is True


def test_env_bool_false(monkeypatch):
    monkeypatch.setenv("X_TEST", "0")
    assert env_bool("X_TEST", default=True) is False


def test_env_bool_rejects_garbage(monkeypatch):
    monkeypatch.setenv("X_TEST", "maybe")
    with pytest.raises(ImproperlyConfigured):
        env_bool("X_TEST", default=False)


def test_env_int_zero_allowed(monkeypatch):
    monkeypatch.setenv("X_TEST", "0")
    assert env_int("X_TEST", default=5) == 0


def test_env_int_rejects_negative(monkeypatch):
    monkeypatch.setenv("X_TEST", "-1")
    with pytest.raises(ImproperlyConfigured):
        env_int("X_TEST", default=5)


def test_env_int_rejects_text(monkeypatch):
    monkeypatch.setenv("X_TEST", "ten")
    with pytest.raises(ImproperlyConfigured):
        env_int("X_TEST", default=5)


def test_env_list_splits_and_trims(monkeypatch):
    monkeypatch.setenv("X_TEST", " a.example , b.example,, ")
    assert env_list("X_TEST", default=[]) == ["a.example", "b.example"]


def test_log_records_leave_out_what_no_format_prints():
    """Python's logging HOWTO ("Optimization"): no caller, thread, process name or task,
    and with the text format no process id (a system call per record)."""
    import logging

    from django.conf import settings

    assert settings.LOG_FORMAT == "text"
    record = logging.getLogger("chat.test").makeRecord(
        "chat.test", logging.INFO, "(unknown file)", 0, "connect session=%s", ("s",), None
    )
    assert (record.threadName, record.processName, record.taskName, record.process) == (
        None,
        None,
        None,
        None,
    )
    # The HOWTO's switch (`logging._srcfile`): a logger does not look for its caller.
    seen: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = seen.append  # type: ignore[method-assign]
    logger = logging.getLogger("chat.test.caller")
    logger.addHandler(handler)
    try:
        logger.warning("where from?")
    finally:
        logger.removeHandler(handler)
    assert (seen[0].funcName, seen[0].lineno) == ("(unknown function)", 0)
    text = logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s").format(record)
    assert text.endswith(" INFO chat.test connect session=s")
