"""Readiness and liveness (chat.health, /healthz/ready, /healthz/live), without Redis."""

from __future__ import annotations

from typing import Any

import pytest
from channels.layers import channel_layers
from django.test import Client

from chat import health, presence
from tests.support.environment import REDIS_PREFIX

READY = "/healthz/ready"
LIVE = "/healthz/live"


def decide(**overrides: Any) -> dict[str, str]:
    checks: dict[str, Any] = {
        "database": None,
        "channel_layer": None,
        "heartbeat_age": None,
        "stale_after": 30.0,
    }
    checks.update(overrides)
    return health.readiness(**checks)


# --- the decision -------------------------------------------------------------------------


def test_ready_when_every_check_passes() -> None:
    assert decide() == {}


def test_ready_with_a_fresh_heartbeat() -> None:
    assert decide(heartbeat_age=5.0) == {}


def test_ready_without_a_heartbeat_to_keep() -> None:
    assert decide(heartbeat_age=None) == {}


def test_not_ready_when_the_database_fails() -> None:
    assert decide(database="OperationalError: gone") == {"database": "OperationalError: gone"}


def test_not_ready_when_the_subscription_is_down() -> None:
    assert list(decide(channel_layer="down")) == ["channel_layer"]


def test_not_ready_when_the_heartbeat_is_stale() -> None:
    assert list(decide(heartbeat_age=31.0)) == ["presence"]


def test_a_stale_heartbeat_is_explained() -> None:
    assert decide(heartbeat_age=31.0)["presence"] == "heartbeat 31s old (stale after 30s)"


def test_a_heartbeat_exactly_at_the_limit_is_still_fresh() -> None:
    assert decide(heartbeat_age=30.0) == {}


def test_every_failure_is_named() -> None:
    failed = decide(database="x", channel_layer="y", heartbeat_age=99.0)
    assert sorted(failed) == ["channel_layer", "database", "presence"]


def test_stale_after_is_two_beats_of_the_presence_ttl(settings) -> None:
    settings.CHAT_PRESENCE_TTL = 45
    assert health.heartbeat_stale_after() == 30.0


# --- the channel layer check --------------------------------------------------------------


class StatusLayer:
    """A layer that reports its own subscription (the broadcast layer's `chat.status`)."""

    extensions = ["groups", "chat.status"]

    def __init__(self, *, subscribed: bool, connects: bool = False) -> None:
        self.subscribed = subscribed
        self.connects = connects

    def status(self) -> dict[str, Any]:
        return {"subscribed": self.subscribed, "worker": "w1"}

    async def wait_connected(self, timeout: float = 5) -> bool:
        return self.connects


async def test_layer_check_reads_a_live_subscription(monkeypatch) -> None:
    monkeypatch.setattr(health, "get_channel_layer", lambda: StatusLayer(subscribed=True))
    assert await health.check_channel_layer() is None


async def test_layer_check_names_a_subscription_that_is_down(monkeypatch) -> None:
    monkeypatch.setattr(health, "get_channel_layer", lambda: StatusLayer(subscribed=False))
    assert await health.check_channel_layer() == "this worker's Redis subscription is down"


async def test_layer_check_waits_for_a_subscription_just_started(monkeypatch) -> None:
    layer = StatusLayer(subscribed=False, connects=True)
    monkeypatch.setattr(health, "get_channel_layer", lambda: layer)
    assert await health.check_channel_layer() is None


async def test_layer_check_sends_no_ping_for_a_layer_with_status(monkeypatch, settings) -> None:
    # An unreachable REDIS_URL: a fresh PING would fail, the worker's subscription is live.
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    monkeypatch.setattr(health, "get_channel_layer", lambda: StatusLayer(subscribed=True))
    assert await health.check_channel_layer() is None


async def test_layer_check_on_the_in_memory_layer_is_ok() -> None:
    assert await health.check_channel_layer() is None


# --- the presence heartbeat accessor ------------------------------------------------------


async def test_no_heartbeat_age_before_any_tracker() -> None:
    assert presence.heartbeat_age() is None


async def test_no_heartbeat_age_without_redis(settings) -> None:
    settings.REDIS_URL = ""
    tracker = presence.get_tracker()
    await tracker.join("s1", "Ana")
    try:
        assert presence.heartbeat_age() is None
    finally:
        await presence.close_worker()


async def test_heartbeat_age_counts_from_the_last_lease_write(settings, redis_url) -> None:
    settings.REDIS_URL = redis_url
    settings.CHAT_REDIS_PREFIX = REDIS_PREFIX
    channel_layers.backends = {}
    tracker = presence.get_tracker()
    try:
        await tracker.join("s1", "Ana")
        await tracker.sync()
        age = presence.heartbeat_age()
        assert age is not None and age < 1
    finally:
        await presence.close_worker()
        channel_layers.backends = {}


async def test_a_failed_lease_write_does_not_refresh_the_heartbeat(settings) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    channel_layers.backends = {}
    tracker = presence.get_tracker()
    try:
        await tracker.join("s1", "Ana")
        before = tracker.lease_at
        await tracker.sync()
        assert tracker.lease_at == before
    finally:
        await presence.close_worker()
        channel_layers.backends = {}


# --- the views ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_ready_is_200_on_the_in_memory_layer(client: Client) -> None:
    assert client.get(READY).status_code == 200


@pytest.mark.django_db
def test_ready_body_reports_each_check(client: Client) -> None:
    assert client.get(READY).json() == {
        "status": "ok",
        "database": "ok",
        "channel_layer": "ok",
        "presence": "idle",
        "layer": "in-memory",
    }


@pytest.mark.django_db
def test_healthz_answers_like_ready(client: Client) -> None:
    assert client.get("/healthz").json() == client.get(READY).json()


@pytest.mark.django_db
def test_ready_is_503_naming_a_stale_heartbeat(client: Client, monkeypatch) -> None:
    monkeypatch.setattr(presence, "heartbeat_age", lambda: 600.0)
    response = client.get(READY)
    assert (response.status_code, list(response.json()["failed"])) == (503, ["presence"])


@pytest.mark.django_db
def test_ready_reports_a_fresh_heartbeat(client: Client, monkeypatch) -> None:
    monkeypatch.setattr(presence, "heartbeat_age", lambda: 1.0)
    assert client.get(READY).json()["presence"] == "ok"


@pytest.mark.django_db
def test_ready_is_503_naming_the_layer(client: Client, monkeypatch) -> None:
    monkeypatch.setattr(health, "get_channel_layer", lambda: StatusLayer(subscribed=False))
    response = client.get(READY)
    assert (response.status_code, list(response.json()["failed"])) == (503, ["channel_layer"])


def test_live_is_200_when_the_database_fails(client: Client, monkeypatch) -> None:
    def broken() -> None:
        raise RuntimeError("database is down")

    monkeypatch.setattr(health, "_database_ok", broken)
    assert client.get(LIVE).status_code == 200


def test_live_checks_no_dependency(client: Client, settings) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    assert client.get(LIVE).json() == {"status": "ok"}
