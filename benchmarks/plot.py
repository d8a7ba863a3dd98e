"""The plot of docs/performance.md: p99 latency and deliveries/s against client count.

python -m benchmarks.plot benchmarks/results/full-<time>.json docs/performance.png
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

# The rate scenarios with the same total load (5 senders x 10 msg/s) at growing client counts.
CURVE = {"100c 5x10/s": 100, "300c 5x10/s": 300, "1000c 5x10/s": 1000}
SATURATION = "100c 10 win10"


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Write a PNG with three panels: p99 and deliveries/s per client count, saturation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    servers = list(dict.fromkeys(r["server"] for r in rows))
    fig, (ax_lat, ax_rate, ax_sat) = plt.subplots(1, 3, figsize=(15, 4.8))
    for server in servers:
        points = sorted(
            (CURVE[r["scenario"]["name"]], r)
            for r in rows
            if r["server"] == server and r["scenario"]["name"] in CURVE and "p99_ms" in r
        )
        if not points:
            continue
        xs = [x for x, _ in points]
        style = "--" if not server.startswith(("daphne", "uvicorn")) else "-"
        ax_lat.plot(xs, [r["p99_ms"] for _, r in points], style, marker="o", label=server)
        ax_rate.plot(
            xs, [r["deliveries_per_s"] for _, r in points], style, marker="o", label=server
        )
    ax_lat.set(
        xscale="log",
        yscale="log",
        xlabel="clients",
        ylabel="p99 latency (ms, log)",
        title="p99 latency, 5 senders x 10 msg/s",
    )
    ax_rate.set(
        xscale="log",
        xlabel="clients",
        ylabel="deliveries per second",
        title="deliveries/s, 5 senders x 10 msg/s",
    )
    sat = [
        (r["server"], r["deliveries_per_s"]) for r in rows if r["scenario"]["name"] == SATURATION
    ]
    if sat:
        ax_sat.barh([s for s, _ in sat][::-1], [v for _, v in sat][::-1], color="tab:gray")
        ax_sat.set(xlabel="deliveries per second", title="saturation: 100 clients, 10x window 10")
        ax_sat.xaxis.set_major_formatter(lambda value, _pos: f"{value / 1000:.0f}k")
        ax_sat.grid(True, axis="x", alpha=0.3)
    for ax in (ax_lat, ax_rate):
        ax.grid(True, which="both", alpha=0.3)
        ax.set_xticks([100, 300, 1000], labels=["100", "300", "1000"])
    ax_lat.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    data = json.loads(Path(sys.argv[1]).read_text())
    plot([r for r in data["rows"] if "error" not in r], Path(sys.argv[2]))
