"""chat.metrics: who may read /metrics, what moves the counters, and what the dashboard reads.

Counters are per process and never reset, so each test compares before and after.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from channels.testing import WebsocketCommunicator
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from chat import broadcast, metrics
from chat.layers import RedisBroadcastChannelLayer
from chatproject.asgi import application
from tests.support.environment import REDIS_PREFIX

ROOT = Path(__file__).resolve().parent.parent
DASHBOARD = ROOT / "deploy" / "grafana-dashboard.json"
ORIGIN = (b"origin", b"http://localhost")
FOREIGN = "203.0.113.7"
TOKEN = "s3cret-metrics-token"


# Each test gets its own in-memory layer (its queues belong to one event loop).
pytestmark = pytest.mark.usefixtures("fresh_layer")


def value(name: str, **labels: str) -> float:
    """A sample of the chat's registry (0 when it has not been recorded yet)."""
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


# --- who may read /metrics ---------------------------------------------------------------


def test_loopback_addresses_are_allowed_by_default() -> None:
    assert metrics.address_allowed("127.0.0.1")
    assert metrics.address_allowed("::1")


def test_an_ipv4_mapped_loopback_address_is_allowed() -> None:
    assert metrics.address_allowed("::ffff:127.0.0.1")


def test_a_foreign_address_is_not_allowed() -> None:
    assert not metrics.address_allowed(FOREIGN)


def test_an_unparsable_address_is_not_allowed() -> None:
    assert not metrics.address_allowed("-")


def test_an_address_inside_a_configured_network_is_allowed(settings: Any) -> None:
    settings.CHAT_METRICS_ALLOW = ["10.0.0.0/8", "203.0.113.0/24"]
    assert metrics.address_allowed(FOREIGN)
    assert not metrics.address_allowed("127.0.0.1")


def test_a_malformed_allow_entry_is_a_configuration_error(settings: Any) -> None:
    settings.CHAT_METRICS_ALLOW = ["10.0.0.0/33"]
    with pytest.raises(ImproperlyConfigured):
        metrics.allowed_networks()


def test_no_token_is_accepted_while_the_token_is_empty(settings: Any) -> None:
    settings.CHAT_METRICS_TOKEN = ""
    assert not metrics.token_allowed("Bearer ")
    assert not metrics.token_allowed("Bearer")


def test_the_right_bearer_token_is_accepted(settings: Any) -> None:
    settings.CHAT_METRICS_TOKEN = TOKEN
    assert metrics.token_allowed(f"Bearer {TOKEN}")
    assert metrics.token_allowed(f"bearer {TOKEN}")


def test_a_wrong_or_differently_sent_token_is_refused(settings: Any) -> None:
    settings.CHAT_METRICS_TOKEN = TOKEN
    assert not metrics.token_allowed(f"Bearer {TOKEN}x")
    assert not metrics.token_allowed(f"Basic {TOKEN}")
    assert not metrics.token_allowed(TOKEN)
    assert not metrics.token_allowed(None)


# --- the /metrics view (Django's test client; REMOTE_ADDR is what daphne --proxy-headers sets)


def test_metrics_are_served_to_a_loopback_client(client: Client) -> None:
    response = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    names = {family.name for family in text_string_to_metric_families(response.text)}
    assert {"chat_build_info", "chat_messages_stored", "chat_fan_out_seconds"} <= names


def test_metrics_are_refused_to_a_foreign_address(client: Client) -> None:
    response = client.get("/metrics", REMOTE_ADDR=FOREIGN)
    assert response.status_code == 403
    assert b"chat_" not in response.content


def test_metrics_are_refused_to_a_foreign_address_without_a_token(
    client: Client, settings: Any
) -> None:
    settings.CHAT_METRICS_TOKEN = TOKEN
    assert client.get("/metrics", REMOTE_ADDR=FOREIGN).status_code == 403


def test_metrics_are_refused_with_a_wrong_token(client: Client, settings: Any) -> None:
    settings.CHAT_METRICS_TOKEN = TOKEN
    response = client.get(
        "/metrics", REMOTE_ADDR=FOREIGN, headers={"Authorization": "Bearer not-the-token"}
    )
    assert response.status_code == 403


def test_metrics_are_served_with_the_right_token(client: Client, settings: Any) -> None:
    settings.CHAT_METRICS_TOKEN = TOKEN
    response = client.get(
        "/metrics", REMOTE_ADDR=FOREIGN, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == 200
    assert b"chat_build_info" in response.content


def test_metrics_are_refused_to_a_post(client: Client) -> None:
    assert client.post("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 405


def test_metrics_are_not_found_when_switched_off(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(metrics, "ENABLED", False)
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 404


def test_switched_off_metrics_register_nothing_and_count_nothing() -> None:
    code = (
        "import django; django.setup()\n"
        "from chat import metrics, presence, layers, consumers\n"
        "metrics.HANDSHAKES_REFUSED.labels(reason='origin').inc()\n"
        "metrics.fanned_out({'id': 1}, sockets=5, seconds=0.1)\n"
        "assert list(metrics.REGISTRY.collect()) == []\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "CHAT_METRICS": "false",
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


# --- build information -------------------------------------------------------------------


def test_build_info_names_the_version_layer_and_server() -> None:
    samples = [
        sample
        for family in metrics.REGISTRY.collect()
        for sample in family.samples
        if sample.name == "chat_build_info"
    ]
    assert len(samples) == 1
    labels = samples[0].labels
    assert (labels["version"], labels["layer"]) == (metrics.project_version(), "memory")
    # No server under pytest unless a test imported daphne's command line.
    assert labels["server"] in {"unknown", "daphne"}
    assert samples[0].value == 1


def test_the_version_comes_from_pyproject() -> None:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert f'version = "{metrics.project_version()}"' in text


# --- counters moved by the consumer (in-memory layer) --------------------------------------


async def _open(headers: list[tuple[bytes, bytes]] | None = None) -> WebsocketCommunicator:
    comm = WebsocketCommunicator(application, "/ws/chat/", headers=headers or [ORIGIN])
    return comm


@pytest.mark.django_db(transaction=True)
async def test_a_foreign_origin_is_counted_as_refused() -> None:
    before = value("chat_handshakes_refused_total", reason="origin")
    comm = await _open([(b"origin", b"http://evil.example")])
    connected, _ = await comm.connect()
    assert not connected
    assert value("chat_handshakes_refused_total", reason="origin") == before + 1


@pytest.mark.django_db(transaction=True)
async def test_an_accepted_handshake_is_counted() -> None:
    before = value("chat_handshakes_accepted_total")
    comm = await _open()
    try:
        assert (await comm.connect())[0]
        assert json.loads(await comm.receive_from())["type"] == "hello"
        assert value("chat_handshakes_accepted_total") == before + 1
    finally:
        await comm.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_handshake_over_the_address_cap_is_counted_as_refused(settings: Any) -> None:
    settings.CHAT_MAX_SOCKETS_PER_IP = 1
    before = value("chat_handshakes_refused_total", reason="per_address")
    first, second = await _open(), await _open()
    try:
        assert (await first.connect())[0]
        await first.receive_from()
        assert not (await second.connect())[0]
        assert value("chat_handshakes_refused_total", reason="per_address") == before + 1
    finally:
        await first.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_refused_frame_is_counted_by_its_code() -> None:
    received = value("chat_frames_received_total")
    refused = value("chat_frames_refused_total", code="invalid_json")
    comm = await _open()
    try:
        assert (await comm.connect())[0]
        await comm.receive_from()
        await comm.send_to(text_data="not json")
        while json.loads(await comm.receive_from())["type"] != "error":
            pass
        assert value("chat_frames_received_total") == received + 1
        assert value("chat_frames_refused_total", code="invalid_json") == refused + 1
    finally:
        await comm.disconnect()


@pytest.mark.django_db(transaction=True)
async def test_a_stored_message_is_counted_once_and_its_resend_not_again() -> None:
    before = value("chat_messages_stored_total")
    comm = await _open()
    frame = '{"type":"message","body":"counted","client_id":"m1"}'
    try:
        assert (await comm.connect())[0]
        await comm.receive_from()
        for _ in range(2):
            await comm.send_to(text_data=frame)
            while json.loads(await comm.receive_from())["type"] != "message":
                pass
        assert value("chat_messages_stored_total") == before + 1
    finally:
        await comm.disconnect()


# --- daphne's slow-reader bound ------------------------------------------------------------


def test_a_slow_reader_cut_off_is_counted() -> None:
    from chat.daphne_server import build_server_class

    server_class = build_server_class(max_backlog=10, grace=0, fast_write=True)
    protocol_class: Any = server_class.websocket_protocol  # type: ignore[attr-defined]
    # Only what `_over_backlog` reads: an open socket with 100 bytes waiting unsent.
    socket = protocol_class.__new__(protocol_class)
    socket.state = socket.STATE_OPEN
    socket.transport = SimpleNamespace(dataBuffer=b"x" * 100, offset=0, _tempDataLen=0)
    socket.client_addr = (FOREIGN, 40000)
    aborted: list[bool] = []
    socket.dropConnection = lambda abort: aborted.append(abort)
    before = value("chat_slow_reader_disconnects_total")
    assert socket._over_backlog()
    assert aborted == [True]
    assert value("chat_slow_reader_disconnects_total") == before + 1


# --- the broadcast layer counts once per message, not per socket ----------------------------


@pytest.fixture
async def layer(redis_url: str) -> Any:
    layer = RedisBroadcastChannelLayer(hosts=[redis_url], prefix=f"{REDIS_PREFIX}:layer")
    yield layer
    await layer.flush()


@pytest.mark.redis
async def test_a_fan_out_is_counted_once_with_every_local_socket(
    layer: RedisBroadcastChannelLayer, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[Any, int]] = []
    original = metrics.fanned_out

    def recording(event: dict[str, Any], *, sockets: int, seconds: float) -> None:
        calls.append((event.get("id"), sockets))
        original(event, sockets=sockets, seconds=seconds)

    monkeypatch.setattr(metrics, "fanned_out", recording)
    channels = [await layer.new_channel() for _ in range(5)]
    for name in channels:
        await layer.group_add(broadcast.GROUP, name)
    assert await layer.wait_connected(5)
    delivered = value("chat_deliveries_total", kind="message")
    fan_outs = value("chat_fan_out_seconds_count")
    await layer.group_send(broadcast.GROUP, broadcast.frame_event("{}", message_id=7))
    for name in channels:
        await asyncio.wait_for(layer.receive(name), 3)
    assert calls == [(7, 5)]
    assert value("chat_deliveries_total", kind="message") == delivered + 5
    assert value("chat_fan_out_seconds_count") == fan_outs + 1


# --- the Grafana dashboard ---------------------------------------------------------------

_METRIC_NAME = re.compile(r"\b((?:chat|process|python)_[a-z0-9_]+)\b")


def _dashboard_exprs() -> list[str]:
    def walk(node: Any) -> Iterator[str]:
        if isinstance(node, dict):
            for key, item in node.items():
                if key == "expr" and isinstance(item, str):
                    yield item
                else:
                    yield from walk(item)
        elif isinstance(node, list):
            for item in node:
                yield from walk(item)

    return list(walk(json.loads(DASHBOARD.read_text(encoding="utf-8"))))


def test_the_dashboard_queries_several_chat_metrics() -> None:
    names = {name for expr in _dashboard_exprs() for name in _METRIC_NAME.findall(expr)}
    assert len({name for name in names if name.startswith("chat_")}) >= 10


def test_every_metric_the_dashboard_queries_exists() -> None:
    exposed = {sample.name for family in metrics.REGISTRY.collect() for sample in family.samples}
    queried = {name for expr in _dashboard_exprs() for name in _METRIC_NAME.findall(expr)}
    assert queried - exposed == set()
