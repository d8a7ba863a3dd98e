"""benchmarks/settings_layers.py: channels-redis's layers for the benchmark only."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.support.servers import ROOT

_PRINT_BACKEND = (
    "from django.conf import settings; print(settings.CHANNEL_LAYERS['default']['BACKEND'])"
)


def _backend(settings_module: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); " + _PRINT_BACKEND],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={
            "PATH": "/usr/bin:/bin",
            "DJANGO_SETTINGS_MODULE": settings_module,
            "DJANGO_SECRET_KEY": "test-only-not-a-secret",
            "REDIS_URL": "redis://127.0.0.1:6379/0",
            **env,
        },
    )


@pytest.mark.parametrize(
    ("layer", "backend"),
    [
        ("broadcast", "chat.layers.RedisBroadcastChannelLayer"),
        ("pubsub", "channels_redis.pubsub.RedisPubSubChannelLayer"),
        ("core", "channels_redis.core.RedisChannelLayer"),
    ],
)
def test_the_benchmark_settings_pick_the_layer(layer: str, backend: str) -> None:
    done = _backend("benchmarks.settings_layers", BENCH_CHAT_LAYER=layer)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == backend


def test_the_product_settings_ignore_the_benchmarks_variable() -> None:
    done = _backend("chatproject.settings", BENCH_CHAT_LAYER="pubsub")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "chat.layers.RedisBroadcastChannelLayer"
