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
