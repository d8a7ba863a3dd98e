"""What the benchmark computes from its rows (benchmarks/run.py), without running servers."""

from __future__ import annotations

import pytest

from benchmarks.run import per_message, per_message_text, table


def _row(server: str, messages: int, cpu_s: float) -> dict[str, object]:
    return {
        "server": server,
        "scenario": {"name": f"100c {messages}"},
        "messages": messages,
        "server_cpu_s": cpu_s,
    }


def test_per_message_is_the_slope_of_cpu_against_messages() -> None:
    rows = [
        # 2 ms a message, 0.1 s whatever the rate.
        *(_row("daphne x1 pg", m, 0.1 + 0.002 * m) for m in (100, 500, 1000)),
        *(_row("bare loop", m, 0.05 + 0.001 * m) for m in (100, 500, 1000)),
        _row("one rate only", 500, 1.0),
    ]
    fits = {f["server"]: f for f in per_message(rows)}
    assert set(fits) == {"daphne x1 pg", "bare loop"}
    assert fits["daphne x1 pg"]["us_per_message"] == pytest.approx(2000)
    assert fits["daphne x1 pg"]["intercept_s"] == pytest.approx(0.1)
    assert fits["bare loop"]["us_per_message"] == pytest.approx(1000)
    text = per_message_text(rows)
    assert "daphne x1 pg: 2000 us of server CPU per message" in text
    assert "+1000 us over the bare loop (2.00x)" in text


def test_the_table_shows_the_cpu_of_a_connection() -> None:
    row = {"server": "bare loop", "scenario": {"name": "1000 idle"}, "connect_cpu_ms": 0.314}
    header, line = table([row]).splitlines()
    assert "ms cpu/conn" in header
    assert "0.31" in line


def test_a_run_scenario_by_scenario_is_tabled_server_by_server() -> None:
    """The run interleaves the servers scenario by scenario (a ratio compares figures
    measured close together); the table and the JSON list them server by server."""
    from benchmarks.run import Scenario, rows_by_server
    from benchmarks.servers import ServerSpec

    specs = [ServerSpec("bare loop", "bare"), ServerSpec("daphne x1 pg", "daphne")]
    scenarios = [Scenario("100c", 100), Scenario("1000 idle", 1000, mode="idle")]
    ran = [
        {"server": spec.name, "scenario": {"name": scenario.name}, "rep": rep}
        for rep in range(2)
        for scenario in scenarios
        for spec in specs
    ]
    tabled = [
        (r["server"], r["scenario"]["name"], r["rep"])
        for r in rows_by_server(ran, specs, scenarios)
    ]
    assert tabled == [
        ("bare loop", "100c", 0),
        ("bare loop", "100c", 1),
        ("bare loop", "1000 idle", 0),
        ("bare loop", "1000 idle", 1),
        ("daphne x1 pg", "100c", 0),
        ("daphne x1 pg", "100c", 1),
        ("daphne x1 pg", "1000 idle", 0),
        ("daphne x1 pg", "1000 idle", 1),
    ]
