"""Run the broadcast benchmark: baselines and product side by side, one command.

    .venv/bin/python -m benchmarks.run --quick     # a few minutes
    .venv/bin/python -m benchmarks.run             # full run, about 12 minutes (2 cores)
    .venv/bin/python -m benchmarks.run --no-uvicorn  # full run without uvicorn x2
    .venv/bin/python -m benchmarks.run --profile   # py-spy profile of daphne under load
    .venv/bin/python -m benchmarks.run --metrics-cost --repeat 3  # CPU with and without metrics

Loopback only (127.0.0.1). Every server and generator process is stopped at the end, also
on error or Ctrl-C. Results: a table on stdout and benchmarks/results/<time>.json (and a
plot with --plot). See docs/performance.md for how to read them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import platform
import secrets
import subprocess
import sys
import time
from array import array
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks import servers
from benchmarks.loadgen import ClientSpec, GenSpec, generator_process, raise_open_files

RESULTS = Path(__file__).resolve().parent / "results"
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
PG_ADMIN_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")


@dataclass(frozen=True)
class Scenario:
    """One load shape."""

    name: str
    clients: int
    senders: int = 0
    rate: float = 0.0  # messages per second per sender ("rate" mode)
    mode: str = "rate"  # "rate", "window" or "idle"
    duration: float = 8.0
    window: int = 10


FULL_SCENARIOS = [
    Scenario("100c 5x10/s", 100, 5, 10, duration=8),
    Scenario("300c 5x10/s", 300, 5, 10, duration=8),
    Scenario("1000c 1x2/s", 1000, 1, 2, duration=8),
    Scenario("1000c 5x10/s", 1000, 5, 10, duration=10),
    Scenario("100c 10 win10", 100, 10, mode="window", duration=6),
    Scenario("1000 idle", 1000, mode="idle"),
    Scenario("5000 idle", 5000, mode="idle"),
]
QUICK_SCENARIOS = [
    Scenario("100c 5x10/s", 100, 5, 10, duration=5),
    Scenario("1000c 1x2/s", 1000, 1, 2, duration=5),
    Scenario("100c 10 win10", 100, 10, mode="window", duration=4),
    Scenario("1000 idle", 1000, mode="idle"),
]


POOLED = (("DATABASE_CONN_MAX_AGE", "60"),)
# chat.metrics switched off: every counter a no-op (what counting costs, --metrics-cost).
METRICS_OFF = (("CHAT_METRICS", "false"),)
NO_METRICS = " nometrics"
# --metrics-cost: the load shapes where CPU per delivery means something.
METRICS_COST_SCENARIOS = [
    Scenario("100c 5x10/s", 100, 5, 10, duration=8),
    Scenario("1000c 5x10/s", 1000, 5, 10, duration=10),
    Scenario("100c 10 win10", 100, 10, mode="window", duration=6),
]

# --per-message: one audience (100 sockets), three message rates; the slope of CPU against
# messages is what a message costs the servers beyond its deliveries' share.
PER_MESSAGE_SCENARIOS = [
    Scenario("100c 2x5/s", 100, 2, 5, duration=10),
    Scenario("100c 5x10/s", 100, 5, 10, duration=10),
    Scenario("100c 10x10/s", 100, 10, 10, duration=10),
]


def catalog(db: str) -> list[servers.ServerSpec]:
    """Every configuration `--servers` can pick (names are prefixes: "daphne" is all)."""
    return [
        servers.ServerSpec("bare loop", "bare"),
        servers.ServerSpec("ws.broadcast", "broadcast"),
        servers.ServerSpec(f"daphne x1 {db}", "daphne", 1, db),
        servers.ServerSpec(f"daphne x2 {db}", "daphne", 2, db),
        servers.ServerSpec("daphne x1 sqlite", "daphne", 1, "sqlite"),
        servers.ServerSpec("daphne x2 sqlite", "daphne", 2, "sqlite"),
        servers.ServerSpec(f"daphne x1 {db} conn60", "daphne", 1, db, POOLED),
        servers.ServerSpec(f"daphne x2 {db} conn60", "daphne", 2, db, POOLED),
        servers.ServerSpec(f"daphne x1 {db}{NO_METRICS}", "daphne", 1, db, METRICS_OFF),
        servers.ServerSpec(f"daphne x2 {db}{NO_METRICS}", "daphne", 2, db, METRICS_OFF),
        servers.ServerSpec(f"uvicorn x1 {db}", "uvicorn", 1, db),
        servers.ServerSpec(f"uvicorn x2 {db}", "uvicorn", 2, db),
        servers.ServerSpec(f"uvicorn x2 {db} conn60", "uvicorn", 2, db, POOLED),
        # channels-redis's layers, for comparison only (benchmarks/settings_layers.py).
        servers.ServerSpec(f"daphne x2 {db} pubsub", "daphne", 2, db, layer="pubsub"),
        servers.ServerSpec(f"daphne x2 {db} core", "daphne", 2, db, layer="core"),
    ]


def server_specs(*, quick: bool, pg: bool, uvicorn: bool, pick: str) -> list[servers.ServerSpec]:
    """The configurations under test (baselines first), deduplicated by name."""
    db = "pg" if pg else "sqlite"
    every = list({s.name: s for s in catalog(db)}.values())
    if pick:
        # A full name picks that configuration only ("daphne x1 pg", not its "conn60" variant);
        # anything else is a prefix ("daphne" is every daphne configuration).
        keep = [p.strip() for p in pick.split(",") if p.strip()]
        known = {s.name for s in every}
        return [
            s
            for s in every
            if any(s.name == k if k in known else s.name.startswith(k) for k in keep)
        ]
    names = ["bare loop", "ws.broadcast", f"daphne x1 {db}", f"daphne x2 {db}"]
    if not quick and pg:
        names += ["daphne x2 sqlite"]
    if uvicorn:
        names += [f"uvicorn x2 {db}"]
    return [s for s in every if s.name in names]


# --- one scenario against one running server -------------------------------------------------


def _percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, round(q / 100 * (len(sorted_values) - 1))))
    return sorted_values[k]


def _recv(conn: Any, timeout: float, what: str) -> Any:
    if not conn.poll(timeout):
        raise TimeoutError(f"generator did not report {what} within {timeout:.0f}s")
    return conn.recv()


def run_scenario(
    running: servers.Running, scenario: Scenario, *, gens: int, profiler: Any = None
) -> dict[str, Any]:
    """Connect the clients, run the load, collect and combine the generators' reports."""
    tag = secrets.token_hex(4)
    ports = running.ports
    senders = min(scenario.senders, scenario.clients)
    per_gen: list[list[ClientSpec]] = [[] for _ in range(gens)]
    for i in range(scenario.clients):
        port = ports[(i // gens) % len(ports)]
        per_gen[i % gens].append(
            ClientSpec(index=i, host=servers.HOST, port=port, sender=i if i < senders else -1)
        )
    connect_timeout = min(45.0, 20.0 + scenario.clients / 100)
    ctx = multiprocessing.get_context("spawn")
    procs = []
    pipes = []
    result: dict[str, Any] = {"scenario": asdict(scenario), "server": running.spec.name}
    try:
        for g in range(gens):
            spec = GenSpec(
                gen=g,
                tag=tag,
                clients=per_gen[g],
                mode=scenario.mode,
                rate=scenario.rate or 1.0,
                window=scenario.window,
                duration=scenario.duration,
                connect_timeout=connect_timeout,
                total_senders=max(1, senders),
            )
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=generator_process, args=(child, spec), daemon=True)
            proc.start()
            child.close()
            procs.append(proc)
            pipes.append(parent)
        for conn in pipes:
            assert _recv(conn, 60, "ready")[0] == "ready"
        rss_before = running.rss_bytes()
        t_go = time.monotonic() + 0.3
        # An idle scenario is profiled while it connects (a connect storm); the others under load.
        stop_profile = profiler(running, scenario) if profiler and scenario.mode == "idle" else None
        connect_cpu_before = running.cpu_seconds()
        for conn in pipes:
            conn.send(("connect", t_go))
        connected = [_recv(conn, connect_timeout + 30, "connected")[1] for conn in pipes]
        connect_cpu = running.cpu_seconds() - connect_cpu_before
        if stop_profile:
            result["profile"] = stop_profile()
        n_ok = sum(c["ok"] for c in connected)
        durations = sorted(d for c in connected for d in c["durations"])
        failed: dict[str, int] = {}
        for c in connected:
            for k, v in c["failed"].items():
                failed[k] = failed.get(k, 0) + v
        result.update(
            connected=n_ok,
            connect_failed=failed,
            connect_all_s=max(c["last_hello"] for c in connected) - t_go,
            connect_p50_ms=_percentile(durations, 50) * 1000,
            connect_p99_ms=_percentile(durations, 99) * 1000,
            # Server CPU over the connect phase per connected socket (handshake, hello,
            # presence), in ms.
            connect_cpu_ms=connect_cpu * 1000 / max(1, n_ok),
        )
        # Let coalesced presence broadcasts and handshake work settle before measuring memory.
        settle_end = time.monotonic() + 1.0 + scenario.clients / 2500
        while time.monotonic() < settle_end:
            time.sleep(0.1)
        rss_after = running.rss_bytes()
        result["rss_mib"] = rss_after / 2**20
        result["mem_per_socket_kib"] = (rss_after - rss_before) / max(1, n_ok) / 1024
        if scenario.mode == "idle":
            for conn in pipes:
                conn.send(("stop",))
            result["ok"] = n_ok == scenario.clients and running.alive()
            return result
        cpu_before = running.cpu_seconds()
        redis_before = servers.redis_cpu_seconds(REDIS_URL) if running.spec.is_product else 0
        t0 = time.monotonic() + 0.3
        for conn in pipes:
            conn.send(("start", t0))
        stop_profile = profiler(running, scenario) if profiler else None
        done = [_recv(conn, scenario.duration + 90, "done")[1] for conn in pipes]
        cpu_used = running.cpu_seconds() - cpu_before
        if running.spec.is_product:
            # The servers' own count (chat.metrics), beside what the clients received.
            result["metrics_deliveries"] = servers.metric_sum(
                running, "chat_deliveries_total", kind="message"
            )
        redis_used = (
            servers.redis_cpu_seconds(REDIS_URL) - redis_before if running.spec.is_product else 0
        )
        for conn in pipes:
            conn.send(("stop",))
        if stop_profile:
            result["profile"] = stop_profile()
        result.update(_combine(done, scenario, t0, n_ok, cpu_used, redis_used))
        result["ok"] = running.alive()
        return result
    finally:
        for proc in procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=5)
        for conn in pipes:
            conn.close()


def _combine(
    done: list[dict[str, Any]],
    scenario: Scenario,
    t0: float,
    connected: int,
    cpu_used: float,
    redis_used: float,
) -> dict[str, Any]:
    sent: dict[int, int] = {}
    received: dict[int, int] = {}
    for d in done:
        sent.update(d["sent"])
        for key, n in d["received"].items():
            received[key] = received.get(key, 0) + n
    messages = sum(sent.values())
    expected = messages * connected
    deliveries = sum(received.values())
    latency = array("d")
    offset = array("d")
    for d in done:
        latency.frombytes(d["latency"])
        offset.frombytes(d["sent_offset"])
    lat_sorted = sorted(latency)
    last_delivery = max(d["last_delivery"] for d in done)
    span = max(1e-3, last_delivery - t0)
    # Does latency grow through the run? p99 of the first and last quarter of send times.
    quarter = scenario.duration / 4
    first = sorted(v for v, o in zip(latency, offset, strict=True) if o < quarter)
    last = sorted(v for v, o in zip(latency, offset, strict=True) if o >= 3 * quarter)
    p99_first = _percentile(first, 99) * 1000
    p99_last = _percentile(last, 99) * 1000
    gen_cpu = sum(d["cpu_seconds"] for d in done)
    wall = max(d["wall"] for d in done)
    return {
        "messages": messages,
        "deliveries": deliveries,
        "deliveries_per_s": deliveries / span,
        "messages_per_s": messages / scenario.duration,
        "lost": max(0, expected - deliveries),
        "lost_pct": 100 * max(0, expected - deliveries) / max(1, expected),
        "duplicates": sum(d["duplicates"] for d in done),
        "errors": sum(d["errors"] for d in done),
        "closed_during_run": sum(d["closed_during_run"] for d in done),
        "p50_ms": _percentile(lat_sorted, 50) * 1000,
        "p95_ms": _percentile(lat_sorted, 95) * 1000,
        "p99_ms": _percentile(lat_sorted, 99) * 1000,
        "max_ms": (lat_sorted[-1] * 1000) if lat_sorted else float("nan"),
        "p99_first_quarter_ms": p99_first,
        "p99_last_quarter_ms": p99_last,
        "keeps_up": bool(
            lat_sorted and p99_last <= 2 * p99_first + 20 and expected - deliveries == 0
        ),
        "server_cpu_s": cpu_used,
        "server_cpu_us_per_delivery": 1e6 * cpu_used / max(1, deliveries),
        "redis_cpu_s": redis_used,
        "gen_cpu_s": gen_cpu,
        "gen_cpu_cores": gen_cpu / max(1e-3, wall),
    }


# --- output -----------------------------------------------------------------------------------

COLUMNS = [
    ("server", "server", "{}"),
    ("scenario", "scenario", "{}"),
    ("deliv/s", "deliveries_per_s", "{:.0f}"),
    ("p50 ms", "p50_ms", "{:.1f}"),
    ("p95 ms", "p95_ms", "{:.1f}"),
    ("p99 ms", "p99_ms", "{:.1f}"),
    ("max ms", "max_ms", "{:.0f}"),
    ("lost", "lost", "{}"),
    ("dup", "duplicates", "{}"),
    ("conn s", "connect_all_s", "{:.2f}"),
    ("ms cpu/conn", "connect_cpu_ms", "{:.2f}"),
    ("us cpu/deliv", "server_cpu_us_per_delivery", "{:.1f}"),
    ("KiB/sock", "mem_per_socket_kib", "{:.1f}"),
    ("gen cores", "gen_cpu_cores", "{:.2f}"),
]


def _cell(row: dict[str, Any], key: str, fmt: str) -> str:
    if key == "scenario":
        return row["scenario"]["name"]
    value = row.get(key)
    if value is None:
        return "-"
    if isinstance(value, float) and value != value:
        return "-"
    return fmt.format(value)


def table(rows: list[dict[str, Any]], *, markdown: bool = False) -> str:
    """The results as a text (or Markdown) table, one row per server and scenario."""
    cells = [[_cell(r, key, fmt) for _, key, fmt in COLUMNS] for r in rows]
    heads = [h for h, _, _ in COLUMNS]
    if markdown:
        lines = ["| " + " | ".join(heads) + " |", "|" + "---|" * len(heads)]
        lines += ["| " + " | ".join(c) + " |" for c in cells]
        return "\n".join(lines)
    widths = [max([len(h), *(len(c[i]) for c in cells)]) for i, h in enumerate(heads)]
    fmt_line = "  ".join(f"{{:<{w}}}" if i < 2 else f"{{:>{w}}}" for i, w in enumerate(widths))
    out = [fmt_line.format(*heads)]
    out += [fmt_line.format(*c) for c in cells]
    return "\n".join(out)


# --- the issue's targets (issue 9): ratios to the bare loop in the same run -------------------

Find = Callable[[str | None, str], dict[str, Any] | None]


@dataclass(frozen=True)
class Target:
    """One line of the targets printout."""

    what: str
    met: bool | None  # None: not measured in this run, or shown for information only
    detail: str
    info: bool = False  # a configuration shown for comparison, not a pass/fail target


# The figures VsBare compares: key -> (name, unit, decimals).
METRICS = {
    "deliveries_per_s": ("deliveries/s", "", 0),
    "server_cpu_us_per_delivery": ("CPU/delivery", " us", 1),
    "p99_ms": ("p99", " ms", 1),
    "connect_all_s": ("connect time", " s", 2),
}


@dataclass(frozen=True)
class VsBare:
    """One figure of a scenario against the bare loop's in the same run, with a ratio limit."""

    what: str
    scenario: str
    key: str  # one of METRICS
    limit: float
    at_least: bool = False  # the figure must be >= limit x the bare loop's (else <=)
    no_loss: bool = False
    all_connected: bool = False
    servers: tuple[str, ...] = ("x1", "x2")

    def check(self, find: Find, bare: str | None, name: str, info: bool) -> Target:
        metric, unit, digits = METRICS[self.key]
        also = "no loss, " if self.no_loss else "all connected, " if self.all_connected else ""
        op = ">=" if self.at_least else "<="
        label = f"{self.what}, {name}: {also}{metric} {op} {self.limit:.1f}x bare"
        prod, base = find(name, self.scenario), find(bare, self.scenario)
        if not prod or not base:
            return Target(label, None, "not measured", info)
        p, b = prod[self.key], base[self.key]
        ratio = p / b if b > 0 else float("inf")
        met = ratio >= self.limit if self.at_least else ratio <= self.limit
        detail = f"{p:.{digits}f} vs bare {b:.{digits}f}{unit}, {ratio:.2f}x"
        if self.no_loss:
            met = met and prod["lost"] == 0
            detail = f"lost {prod['lost']}, {detail}"
        if self.all_connected:
            clients = prod["scenario"]["clients"]
            met = met and prod["connected"] == clients
            detail = f"{prod['connected']}/{clients} connected, {detail}"
        return Target(label, None if info else met, detail, info)


@dataclass(frozen=True)
class KeepsUp:
    """Latency steady through the run: `keeps_up` of `_combine` (quarters' p99, no loss)."""

    scenario: str = "1000c 5x10/s"
    servers: tuple[str, ...] = ("x1",)

    def check(self, find: Find, bare: str | None, name: str, info: bool) -> Target:
        label = f"1000c x 50 msg/s ({self.scenario}), {name}: keeps up"
        prod = find(name, self.scenario)
        if not prod:
            return Target(label, None, "not measured", info)
        first, last = prod["p99_first_quarter_ms"], prod["p99_last_quarter_ms"]
        detail = (
            f"p99 first quarter {first:.0f} ms, last {last:.0f} ms, "
            f"{last / max(first, 1e-9):.2f}x (limit 2x + 20 ms), lost {prod['lost']}, "
            f"{prod['deliveries_per_s']:.0f} deliv/s"
        )
        return Target(label, None if info else prod["keeps_up"], detail, info)


@dataclass(frozen=True)
class IdleMemory:
    """RSS growth per connected idle socket, in every idle scenario of the run."""

    limit_kib: float = 32.0
    scenarios: tuple[str, ...] = ("1000 idle", "5000 idle")
    servers: tuple[str, ...] = ("x1", "x2")

    def check(self, find: Find, bare: str | None, name: str, info: bool) -> Target:
        label = f"memory per idle socket, {name}: <= {self.limit_kib:.0f} KiB"
        parts = []
        worst = None
        for scenario in self.scenarios:
            prod, base = find(name, scenario), find(bare, scenario)
            if prod:
                kib = prod["mem_per_socket_kib"]
                worst = kib if worst is None else max(worst, kib)
                ref = f" (bare {base['mem_per_socket_kib']:.1f})" if base else ""
                parts.append(f"{scenario} {kib:.1f} KiB{ref}")
        if worst is None:
            return Target(label, None, "not measured", info)
        detail = f"{', '.join(parts)}; worst {worst / self.limit_kib:.2f}x the limit"
        return Target(label, None if info else worst <= self.limit_kib, detail, info)


# In the issue's order; `servers` says for which of daphne x1 and x2 each one is a target.
TARGETS: list[VsBare | KeepsUp | IdleMemory] = [
    VsBare(
        "saturation (100c 10 win10)",
        "100c 10 win10",
        "deliveries_per_s",
        1.0,
        at_least=True,
        servers=("x2",),
    ),
    VsBare("1000c 5x10/s", "1000c 5x10/s", "server_cpu_us_per_delivery", 1.0),
    VsBare("100c 5x10/s", "100c 5x10/s", "server_cpu_us_per_delivery", 1.5),
    VsBare("100c x 50 msg/s (100c 5x10/s)", "100c 5x10/s", "p99_ms", 2.0, no_loss=True),
    VsBare("1000c x 2 msg/s (1000c 1x2/s)", "1000c 1x2/s", "p99_ms", 1.0),
    KeepsUp(),
    VsBare("1000 sockets (1000 idle)", "1000 idle", "connect_all_s", 1.5, all_connected=True),
    VsBare("5000 sockets (5000 idle)", "5000 idle", "connect_all_s", 2.5, all_connected=True),
    IdleMemory(),
]


def targets(rows: list[dict[str, Any]]) -> list[Target]:
    """The issue's targets for daphne x1 and x2, each met, missed or not measured, with the
    numbers and the ratio to the bare loop; then uvicorn x2's figures for information."""

    def server(prefix: str) -> str | None:
        return next((r["server"] for r in rows if r["server"].startswith(prefix)), None)

    def find(name: str | None, scenario: str) -> dict[str, Any] | None:
        for r in rows:
            if r["server"] == name and r["scenario"]["name"] == scenario:
                return r
        return None

    bare = server("bare")
    daphne = {w: server(f"daphne {w}") or f"daphne {w}" for w in ("x1", "x2")}
    out = [t.check(find, bare, daphne[w], False) for t in TARGETS for w in t.servers]
    uvicorn = server("uvicorn x2")
    if uvicorn:
        info = [t.check(find, bare, uvicorn, True) for t in TARGETS]
        out += [t for t in info if t.detail != "not measured"]
    return out


def targets_text(rows: list[dict[str, Any]], *, markdown: bool = False) -> str:
    """The targets, one a line, and how many were met."""
    found = targets(rows)
    lines = []
    for t in found:
        mark = "info" if t.info else "met" if t.met else "MISSED" if t.met is not None else "n/a"
        lines.append(
            f"- {t.what}: **{mark}** ({t.detail})" if markdown else f"{mark:7} {t.what}: {t.detail}"
        )
    judged = [t for t in found if not t.info]
    met = sum(t.met is True for t in judged)
    missed = sum(t.met is False for t in judged)
    lines.append(
        f"targets: {met} met, {missed} missed, {len(judged) - met - missed} not measured "
        f"(of {len(judged)})"
    )
    return "\n".join(lines)


# --- what metrics cost (--metrics-cost) ------------------------------------------------------


def metrics_cost(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per scenario and configuration: mean server CPU per delivery with metrics and with
    CHAT_METRICS=false (the "... nometrics" twin), over the repeats of this run."""

    def mean_cpu(server: str, scenario: str) -> tuple[float, int] | None:
        found = [
            r["server_cpu_us_per_delivery"]
            for r in rows
            if r["server"] == server
            and r["scenario"]["name"] == scenario
            and "server_cpu_us_per_delivery" in r
        ]
        return (sum(found) / len(found), len(found)) if found else None

    out = []
    pairs = sorted(
        {(r["server"], r["scenario"]["name"]) for r in rows if not r["server"].endswith(NO_METRICS)}
    )
    for server, scenario in pairs:
        on, off = mean_cpu(server, scenario), mean_cpu(server + NO_METRICS, scenario)
        if on is None or off is None:
            continue
        out.append(
            {
                "server": server,
                "scenario": scenario,
                "us_per_delivery_on": on[0],
                "us_per_delivery_off": off[0],
                "runs": min(on[1], off[1]),
                "difference_pct": 100 * (on[0] - off[0]) / off[0] if off[0] else float("nan"),
            }
        )
    return out


def metrics_cost_text(rows: list[dict[str, Any]]) -> str:
    """One line per scenario: CPU per delivery with and without metrics."""
    lines = [
        f"- {c['scenario']}, {c['server']}: {c['us_per_delivery_on']:.2f} us per delivery with "
        f"metrics, {c['us_per_delivery_off']:.2f} without ({c['difference_pct']:+.1f} %, "
        f"mean of {c['runs']} runs each; run-to-run noise here is 10-40 %)"
        for c in metrics_cost(rows)
    ]
    return "\n".join(lines) if lines else "metrics cost: no pair with and without metrics"


def per_message(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per server: a least-squares line of server CPU seconds against messages sent, over
    the --per-message scenarios (same audience and duration, three rates). The slope is the
    CPU of one message with its deliveries to 100 sockets; the intercept, the CPU a scenario
    spends whatever the rate (timers, the drain)."""
    fits = []
    for server in dict.fromkeys(r["server"] for r in rows):
        points = [
            (float(r["messages"]), float(r["server_cpu_s"]))
            for r in rows
            if r["server"] == server and "messages" in r
        ]
        xs = {x for x, _ in points}
        if len(xs) < 2:
            continue
        n = len(points)
        mean_x = sum(x for x, _ in points) / n
        mean_y = sum(y for _, y in points) / n
        slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / sum(
            (x - mean_x) ** 2 for x, _ in points
        )
        fits.append(
            {
                "server": server,
                "points": n,
                "us_per_message": slope * 1e6,
                "intercept_s": mean_y - slope * mean_x,
            }
        )
    return fits


def per_message_text(rows: list[dict[str, Any]]) -> str:
    """One line per server, and each product's cost over the bare loop's per message."""
    fits = per_message(rows)
    bare = next((f for f in fits if f["server"] == "bare loop"), None)
    lines = []
    for f in fits:
        line = (
            f"- {f['server']}: {f['us_per_message']:.0f} us of server CPU per message to 100 "
            f"sockets (intercept {f['intercept_s']:.3f} s per scenario, {f['points']} runs)"
        )
        if bare is not None and f is not bare:
            extra = f["us_per_message"] - bare["us_per_message"]
            line += (
                f"; {extra:+.0f} us over the bare loop "
                f"({f['us_per_message'] / bare['us_per_message']:.2f}x)"
            )
        lines.append(line)
    return "\n".join(lines) if lines else "per message: fewer than two rates per server"


# --- profiling --------------------------------------------------------------------------------


def py_spy_profiler(outdir: Path, seconds: int) -> Any:
    """A hook that records every product process with py-spy during the load (the first
    one's file is `profile-<server>-<scenario>.txt`, the others' end in `-w2`, `-w3`...)."""

    def start(running: servers.Running, scenario: Scenario) -> Any:
        if not running.spec.is_product:
            return None
        label = "".join(c if c.isalnum() else "_" for c in f"{running.spec.name}-{scenario.name}")
        procs = []
        paths = []
        for n, pid in enumerate(running.pids, start=1):
            path = outdir / f"profile-{label}{'' if n == 1 else f'-w{n}'}.txt"
            cmd_raw = [
                str(servers.BIN / "py-spy"),
                "record",
                "-p",
                str(pid),
                "-d",
                str(seconds),
                "-r",
                "200",
                "--format",
                "raw",
                "-o",
                str(path),
                "--nonblocking",
                # Only samples holding the GIL: where the Python CPU goes, not who waits.
                "--gil",
            ]
            procs.append(
                subprocess.Popen(
                    cmd_raw,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    start_new_session=True,
                )
            )
            paths.append(str(path))

        def finish() -> str:
            for proc in procs:
                try:
                    proc.wait(timeout=seconds + 30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
            # The first worker's profile is summarised; the others are beside it.
            return paths[0]

        return finish

    return start


def summarize_profile(path: str, top: int = 25) -> str:
    """Self and inclusive sample shares per function from py-spy's collapsed stacks."""
    self_counts: dict[str, int] = {}
    incl_counts: dict[str, int] = {}
    total = 0
    with open(path) as f:
        for line in f:
            stack, _, count_s = line.rstrip("\n").rpartition(" ")
            # A frame's text can run over several lines (a name with a newline in it).
            if not stack or not count_s.isdigit():
                continue
            count = int(count_s)
            frames = stack.split(";")
            total += count
            leaf = _short(frames[-1])
            self_counts[leaf] = self_counts.get(leaf, 0) + count
            for name in {_short(fr) for fr in frames}:
                incl_counts[name] = incl_counts.get(name, 0) + count
    lines = [f"{total} samples", "", "self %  function"]
    for name, n in sorted(self_counts.items(), key=lambda kv: -kv[1])[:top]:
        lines.append(f"{100 * n / total:5.1f}  {name}")
    lines += ["", "incl %  function"]
    for name, n in sorted(incl_counts.items(), key=lambda kv: -kv[1])[: top * 2]:
        lines.append(f"{100 * n / total:5.1f}  {name}")
    return "\n".join(lines)


def _short(frame: str) -> str:
    # "func (path/to/file.py:123)" -> "func (file.py)"; strips the line so counts merge.
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    file = where.rsplit(":", 1)[0]
    parts = file.split("/")
    if "site-packages" in parts:
        file = "/".join(parts[parts.index("site-packages") + 1 :])
    else:
        file = "/".join(parts[-2:])
    return f"{name} ({file})"


# --- main -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer scenarios, shorter runs")
    parser.add_argument("--no-pg", action="store_true", help="SQLite only, even if PG answers")
    parser.add_argument(
        "--uvicorn",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="the product under uvicorn x2 too (default: yes in the full run, no with --quick)",
    )
    parser.add_argument(
        "--servers",
        default="",
        help="comma-separated name prefixes from the catalog (e.g. 'bare,daphne x2 pg')",
    )
    parser.add_argument("--scenarios", default="", help="comma-separated scenario name prefixes")
    parser.add_argument("--gens", type=int, default=2, help="load generator processes")
    parser.add_argument("--profile", action="store_true", help="py-spy the product under load")
    parser.add_argument("--plot", default="", help="write the plot to this PNG path")
    parser.add_argument("--markdown", action="store_true", help="print the table as Markdown")
    parser.add_argument("--keep-logs", action="store_true", help="keep server logs")
    parser.add_argument(
        "--metrics-cost",
        action="store_true",
        help="CPU per delivery of daphne x1 with metrics and with CHAT_METRICS=false, "
        "alternating in one run (--servers picks others; each gets its nometrics twin)",
    )
    parser.add_argument(
        "--per-message",
        action="store_true",
        help="100 sockets at three message rates: CPU per message, from a line fit "
        "(default servers: the bare loop and daphne x1/x2 on the database)",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="run every server and scenario this many times"
    )
    args = parser.parse_args(argv)

    raise_open_files()
    pg = not args.no_pg and servers.pg_reachable(PG_ADMIN_URL)
    scenarios = QUICK_SCENARIOS if args.quick else FULL_SCENARIOS
    pick = args.servers or ("daphne x1" if args.profile else "")
    uvicorn = not args.quick if args.uvicorn is None else args.uvicorn
    if args.metrics_cost:
        db = "pg" if pg else "sqlite"
        base = [p.strip() for p in (args.servers or f"daphne x1 {db}").split(",") if p.strip()]
        pick = ",".join(name for b in base for name in (b, b + NO_METRICS))
        scenarios = METRICS_COST_SCENARIOS
        if args.quick:
            scenarios = [Scenario(**{**asdict(s), "duration": 4}) for s in scenarios]
    if args.per_message:
        db = "pg" if pg else "sqlite"
        pick = args.servers or f"bare loop,daphne x1 {db},daphne x2 {db}"
        scenarios = PER_MESSAGE_SCENARIOS
    specs = server_specs(quick=args.quick, pg=pg, uvicorn=uvicorn, pick=pick)
    if args.profile:
        scenarios = [
            Scenario("100c 10 win10", 100, 10, mode="window", duration=12),
            Scenario("100c 5x10/s", 100, 5, 10, duration=12),
            Scenario("1000c 5x10/s", 1000, 5, 10, duration=12),
            Scenario("5000 idle", 5000, mode="idle"),
        ]
    if args.scenarios:
        keep = [p.strip() for p in args.scenarios.split(",")]
        scenarios = [s for s in scenarios if any(s.name.startswith(k) for k in keep)]

    RESULTS.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    workdir = servers.make_workdir()
    dbs = servers.Databases(workdir=workdir, pg_admin_url=PG_ADMIN_URL if pg else None)
    profiler = py_spy_profiler(RESULTS, seconds=10) if args.profile else None
    rows: list[dict[str, Any]] = []
    started = time.monotonic()
    print(
        f"# {len(specs)} servers x {len(scenarios)} scenarios, {args.gens} generator processes, "
        f"PostgreSQL {'yes' if pg else 'no'}",
        flush=True,
    )
    # Scenario by scenario, each scenario's servers one after another (the bare loop first):
    # a ratio then compares figures measured within a minute or two of each other. This
    # shared machine has slow spells of tens of seconds (every server's figures, the bare
    # loop's included, then run up to half again as costly), and a server-by-server order
    # charged them to whichever servers ran in them. With --metrics-cost, with and without
    # metrics alternate (and their order is swapped every repeat), so that drift hits both
    # alike. The table lists the rows server by server either way.
    plan = [
        (n, spec, scenario)
        for _ in range(max(1, args.repeat))
        for scenario in scenarios
        for n, spec in enumerate(specs)
    ]
    if args.metrics_cost:
        plan = [
            (n, spec, scenario)
            for rep in range(max(1, args.repeat))
            for scenario in scenarios
            for n, spec in (list(enumerate(specs))[:: -1 if rep % 2 else 1])
        ]
    try:
        dbs.setup({s.db for s in specs if s.db})
        for n, spec, scenario in plan:
            prefix = f"bench{os.getpid()}x{n}{secrets.token_hex(2)}"
            running = servers.start(
                spec, logdir=workdir, db_urls=dbs.urls, redis_url=REDIS_URL, prefix=prefix
            )
            try:
                row = run_scenario(running, scenario, gens=args.gens, profiler=profiler)
            except Exception as exc:
                row = {
                    "server": spec.name,
                    "scenario": asdict(scenario),
                    "error": f"{type(exc).__name__}: {exc}",
                    "log_tail": running.log_tail(1500),
                }
            finally:
                servers.stop(running)
                if running.redis_prefix:
                    servers.clear_redis(REDIS_URL, running.redis_prefix)
            rows.append(row)
            print(_progress(row, time.monotonic() - started), flush=True)
    finally:
        dbs.teardown()
        servers.remove_workdir(workdir, keep=args.keep_logs)
    rows = rows_by_server(rows, specs, scenarios)

    out = {
        "when": stamp,
        "machine": {
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
        },
        "postgresql": pg,
        "generators": args.gens,
        "seconds": time.monotonic() - started,
        "rows": rows,
    }
    good = [r for r in rows if "error" not in r]
    out["targets"] = [asdict(t) for t in targets(good)]
    if args.metrics_cost:
        out["metrics_cost"] = metrics_cost(good)
    if args.per_message:
        out["per_message"] = per_message(good)
    kind = "profile" if args.profile else "quick" if args.quick else "full"
    if args.metrics_cost:
        kind = f"metrics-cost-{kind}"
    if args.per_message:
        kind = f"per-message-{kind}"
    path = RESULTS / f"{kind}-{stamp}.json"
    path.write_text(json.dumps(out, indent=1))
    print()
    print(table(good, markdown=args.markdown))
    print()
    if args.metrics_cost:
        print(metrics_cost_text(good))
    elif args.per_message:
        print(per_message_text(good))
    else:
        print(targets_text(good, markdown=args.markdown))
    for r in rows:
        if "error" in r:
            print(f"\nERROR {r['server']} / {r['scenario']['name']}: {r['error']}")
        if "profile" in r:
            print(f"\n## profile {r['server']} / {r['scenario']['name']}\n")
            print(summarize_profile(r["profile"]))
    if args.plot:
        from benchmarks.plot import plot

        plot(good, Path(args.plot))
        print(f"\nplot: {args.plot}")
    print(f"\nresults: {path}  ({out['seconds']:.0f} s)")
    return 0


def rows_by_server(
    rows: list[dict[str, Any]], specs: list[servers.ServerSpec], scenarios: list[Scenario]
) -> list[dict[str, Any]]:
    """The rows server by server in the catalog's order, each server's scenarios in the
    run's order (repeats in the order they ran), however the run interleaved them."""
    server_at = {spec.name: n for n, spec in enumerate(specs)}
    scenario_at = {scenario.name: n for n, scenario in enumerate(scenarios)}
    return sorted(
        rows,
        key=lambda r: (
            server_at.get(r["server"], len(server_at)),
            scenario_at.get(r["scenario"]["name"], len(scenario_at)),
        ),
    )


def _progress(row: dict[str, Any], elapsed: float) -> str:
    name = f"[{elapsed:5.0f}s] {row['server']:<18} {row['scenario']['name']:<14}"
    if "error" in row:
        return f"{name} ERROR {row['error']}"
    if row["scenario"]["mode"] == "idle":
        return (
            f"{name} connected {row['connected']} in {row['connect_all_s']:.2f}s, "
            f"{row['mem_per_socket_kib']:.1f} KiB/socket"
        )
    counted = row.get("metrics_deliveries")
    return (
        f"{name} {row['deliveries_per_s']:8.0f} deliv/s  p99 {row['p99_ms']:8.1f} ms  "
        f"lost {row['lost']}  cpu {row['server_cpu_us_per_delivery']:.1f} us/deliv  "
        f"gen {row['gen_cpu_cores']:.2f} cores"
        + (f"  server-counted {counted:.0f} of {row['deliveries']}" if counted is not None else "")
    )


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
