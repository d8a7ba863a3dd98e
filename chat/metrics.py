"""Every Prometheus metric of the chat, in one place; served per worker at /metrics.

Each daphne (or uvicorn) process is one worker with its own numbers: Prometheus scrapes
every worker and adds them up (`sum(...)`), so nothing is shared between processes. The
metrics live in this module's own `REGISTRY` (with the process, platform and garbage
collector metrics prometheus-client offers), not in prometheus-client's global one.

What counting costs: nothing per delivery. The broadcast path counts once per message per
worker (`fanned_out`: the number of local sockets handed the frame, and the fan-out time);
handshakes, client frames and errors are counted once each; open sockets and the online
list are read when Prometheus scrapes (`Gauge.set_function`, set by chat.presence). With
`CHAT_METRICS=false` every metric below is a stand-in whose methods do nothing, and
/metrics answers 404 (for benchmarks: `python -m benchmarks.run --metrics-cost`).

Who may read /metrics (`allowed`): clients whose address is in `CHAT_METRICS_ALLOW`
(CIDRs; loopback by default), or a request with `Authorization: Bearer
<CHAT_METRICS_TOKEN>` (no token access while the token is empty). The address is the one
every other limit uses (`REMOTE_ADDR`, which `daphne --proxy-headers` takes from
`X-Forwarded-For`).
"""

from __future__ import annotations

import hmac
import ipaddress
import sys
import time
import tomllib
from collections.abc import Callable, Iterable
from typing import Any, cast

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from chat import protocol

ENABLED: bool = settings.CHAT_METRICS

# Why a handshake was refused (chat_handshakes_refused_total{reason}).
REFUSED_ORIGIN = "origin"  # a foreign, missing or look-alike Origin (before the consumer)
REFUSED_PER_ADDRESS = "per_address"  # CHAT_MAX_SOCKETS_PER_IP reached
REFUSED_BANNED = "banned"  # a moderator's ban
REFUSED_LAYER = "layer"  # the channel layer (Redis) is down
REFUSED_DATABASE = "database"  # history unreadable: closed with 4013 right after the accept
REFUSED_REASONS = (
    REFUSED_ORIGIN,
    REFUSED_PER_ADDRESS,
    REFUSED_BANNED,
    REFUSED_LAYER,
    REFUSED_DATABASE,
)
# A frame over CHAT_MAX_FRAME is not answered with an error frame but closed with 4009.
FRAME_TOO_BIG = "frame_too_big"
FRAME_ERROR_CODES = (*protocol.ERROR_CODES, FRAME_TOO_BIG)
# Where a database or Redis error happened (chat_database_errors_total{where}, ...).
DATABASE_WHERE = ("store", "history", "window", "moderation", "handshake")
REDIS_WHERE = ("subscription", "publish", "presence")
# Seconds: a fan-out to 10 sockets takes tens of microseconds, to 1,000 a few milliseconds.
FAN_OUT_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
)


class _Off:
    """Stands in for every metric while CHAT_METRICS is off: each method does nothing."""

    def labels(self, *values: str, **labels: str) -> _Off:
        """Itself: a labelled child does nothing either."""
        return self

    def inc(self, amount: float = 1) -> None:
        """Nothing."""

    def observe(self, amount: float) -> None:
        """Nothing."""

    def set_function(self, f: Callable[[], float]) -> None:
        """Nothing."""


_OFF = _Off()

# Only built when metrics are on; the process/platform/gc collectors come along.
REGISTRY = CollectorRegistry(auto_describe=True)
if ENABLED:
    # No `*_created` series beside every counter: half the text, and Prometheus ignores them.
    disable_created_metrics()  # type: ignore[no-untyped-call]
    ProcessCollector(registry=REGISTRY)
    PlatformCollector(registry=REGISTRY)
    GCCollector(registry=REGISTRY)


def _counter(name: str, documentation: str, labelnames: Iterable[str] = ()) -> Counter:
    if not ENABLED:
        return cast(Counter, _OFF)
    return Counter(name, documentation, labelnames=tuple(labelnames), registry=REGISTRY)


def _gauge(name: str, documentation: str) -> Gauge:
    if not ENABLED:
        return cast(Gauge, _OFF)
    return Gauge(name, documentation, registry=REGISTRY)


def _histogram(name: str, documentation: str, buckets: tuple[float, ...]) -> Histogram:
    if not ENABLED:
        return cast(Histogram, _OFF)
    return Histogram(name, documentation, buckets=buckets, registry=REGISTRY)


# --- sockets and handshakes ----------------------------------------------------------------

OPEN_SOCKETS = _gauge(
    "chat_open_sockets",
    "WebSockets open on this worker and greeted (in its part of the online list); read "
    "at scrape time.",
)
PRESENCE_SIZE = _gauge(
    "chat_presence_size",
    "People in the online list as this worker sees it (every worker's sessions, the "
    "others' as of the last refresh); read at scrape time.",
)
HANDSHAKES_ACCEPTED = _counter(
    "chat_handshakes_accepted",
    "WebSocket handshakes accepted and greeted with `hello`.",
)
HANDSHAKES_REFUSED = _counter(
    "chat_handshakes_refused",
    "WebSocket handshakes refused, by reason: origin, per_address (CHAT_MAX_SOCKETS_PER_IP), "
    "banned, layer (Redis down), database (history unreadable: closed with 4013).",
    ["reason"],
)
SLOW_READER_DISCONNECTS = _counter(
    "chat_slow_reader_disconnects",
    "Sockets aborted because more than CHAT_MAX_BACKLOG bytes waited unsent for them "
    "(under daphne only).",
)

# --- frames and messages -------------------------------------------------------------------

FRAMES_RECEIVED = _counter(
    "chat_frames_received",
    "Frames received from clients (text or binary), before any check.",
)
FRAMES_REFUSED = _counter(
    "chat_frames_refused",
    "Client frames refused, by the code of the error frame sent back (frame_too_big: "
    "closed with 4009 instead).",
    ["code"],
)
MESSAGES_STORED = _counter(
    "chat_messages_stored",
    "Messages stored by this worker (new rows; a resend of a stored client_id is not counted).",
)
MESSAGES_PUBLISHED_LATE = _counter(
    "chat_messages_published_late",
    "Stored messages whose publish failed (Redis down) and that were published after the "
    "layer reconnected.",
)
DELIVERIES = _counter(
    "chat_deliveries",
    "Broadcast frames handed to this worker's sockets: per frame, the number of local "
    "sockets in its group (kind=message for stored messages, other for presence, typing "
    "and retract). Counted once per frame by the broadcast layer (chat.layers).",
    ["kind"],
)
FAN_OUT_SECONDS = _histogram(
    "chat_fan_out_seconds",
    "Time this worker took to hand one broadcast frame to all of its local sockets.",
    FAN_OUT_BUCKETS,
)

# --- the channel layer, the database, Redis ------------------------------------------------

LAYER_RECONNECTS = _counter(
    "chat_layer_reconnects",
    "Times this worker's Redis subscription was restored after it broke.",
)
DATABASE_ERRORS = _counter(
    "chat_database_errors",
    "Database operations that failed, by where: store (a batch of messages), history "
    "(a handshake), window (the recent-message window), moderation.",
    ["where"],
)
REDIS_ERRORS = _counter(
    "chat_redis_errors",
    "Redis operations that failed, by where: subscription (lost), publish, presence.",
    ["where"],
)

# Children bound once: the broadcast path does no label lookup.
_DELIVERED_MESSAGES = DELIVERIES.labels(kind="message")
_DELIVERED_OTHER = DELIVERIES.labels(kind="other")
if ENABLED:
    # Every labelled series exists from the start (at 0), so rates and dashboards work
    # before the first event.
    for _reason in REFUSED_REASONS:
        HANDSHAKES_REFUSED.labels(reason=_reason)
    for _code in FRAME_ERROR_CODES:
        FRAMES_REFUSED.labels(code=_code)
    for _where in DATABASE_WHERE:
        DATABASE_ERRORS.labels(where=_where)
    for _where in REDIS_WHERE:
        REDIS_ERRORS.labels(where=_where)


def fanned_out(event: dict[str, Any], *, sockets: int, seconds: float) -> None:
    """Count one broadcast frame handed to `sockets` local sockets in `seconds`: once per
    frame per worker, never per socket."""
    if not ENABLED:
        return
    if event.get("id") is not None:
        _DELIVERED_MESSAGES.inc(sockets)
    else:
        _DELIVERED_OTHER.inc(sockets)
    FAN_OUT_SECONDS.observe(seconds)


# --- build information ---------------------------------------------------------------------


def project_version() -> str:
    """The version in pyproject.toml ("unknown" if it cannot be read)."""
    try:
        with (settings.BASE_DIR / "pyproject.toml").open("rb") as file:
            return str(tomllib.load(file)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"


def server_name() -> str:
    """The server running this process: daphne, uvicorn, runserver, or unknown (tests)."""
    if "daphne.management.commands.runserver" in sys.modules:
        return "runserver"
    if "daphne.cli" in sys.modules:
        return "daphne"
    if "uvicorn" in sys.modules:
        return "uvicorn"
    return "unknown"


def layer_name() -> str:
    """The channel layer: `broadcast` (the product's, over Redis), `memory`, or the class
    name of another that a benchmark configured."""
    backend = str(settings.CHANNEL_LAYERS["default"]["BACKEND"])
    name = backend.rsplit(".", 1)[-1]
    return {"RedisBroadcastChannelLayer": "broadcast", "InMemoryChannelLayer": "memory"}.get(
        name, name
    )


class BuildInfoCollector:
    """chat_build_info: version, channel layer and server, as labels of a constant 1."""

    def __init__(self) -> None:
        self.version = project_version()
        self.started = time.time()

    def collect(self) -> Iterable[Metric]:
        """The build information (the server is looked up at scrape time: the application
        is imported before the server that runs it)."""
        info = GaugeMetricFamily(
            "chat_build_info",
            "The running chat: version (pyproject.toml), layer and server; always 1.",
            labels=["version", "layer", "server"],
        )
        info.add_metric([self.version, layer_name(), server_name()], 1)
        yield info

    def describe(self) -> Iterable[Metric]:
        """The same metric without value, for the registry's name check."""
        return self.collect()


if ENABLED:
    REGISTRY.register(BuildInfoCollector())


# --- access to /metrics --------------------------------------------------------------------


def allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """CHAT_METRICS_ALLOW parsed; ImproperlyConfigured for an entry that is no CIDR."""
    networks = []
    for entry in settings.CHAT_METRICS_ALLOW:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"CHAT_METRICS_ALLOW: {entry!r} is not an address or CIDR network"
            ) from None
    return networks


def address_allowed(address: str) -> bool:
    """Whether a client address lies in CHAT_METRICS_ALLOW."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        # A dual-stack listener reports IPv4 clients as ::ffff:a.b.c.d.
        ip = ip.ipv4_mapped
    return any(ip in network for network in allowed_networks())


def token_allowed(authorization: str | None) -> bool:
    """Whether an Authorization header carries `Bearer <CHAT_METRICS_TOKEN>` (never while
    the token is empty); compared in constant time."""
    token = settings.CHAT_METRICS_TOKEN
    if not token or not authorization:
        return False
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(credentials.strip().encode(), token.encode())


def allowed(*, address: str, authorization: str | None) -> bool:
    """Whether a request may read /metrics: by its client address or by the token."""
    return token_allowed(authorization) or address_allowed(address)


if ENABLED:
    # A mistyped CHAT_METRICS_ALLOW stops the worker at start, not at the first scrape.
    allowed_networks()
