"""`python -m bench abuse`'s verdicts and table on canned outcomes (the attacks themselves run
against a live server only in the benchmark)."""

from __future__ import annotations

from typing import Any

from bench.commands.abuse import met, render


def outcome(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "slow-readers",
        "description": "connections that never read",
        "statuses": {"closed by server": 64, "429": 986},
        "notes": [],
        "healthz": {"median_s": 0.01, "max_s": 0.2, "count": 300, "refused": {}},
        "upload": {"median_s": 0.05, "max_s": 0.4, "count": 120, "refused": {}},
        "idle_rss_mib": 800,
        "peak_rss_over_idle_mib": 60,
        "settled_rss_over_idle_mib": 10,
        "peak_fds": 120,
        "disk_growth_mib": 0.0,
        "log_500s": 0,
        "log_tracebacks": 0,
        "close_max_s": 16.0,
        "open_after_s": 0,
    }
    return base | changes


def test_every_target_must_hold() -> None:
    assert met(outcome())
    slow = {"median_s": 0.1, "max_s": 0.6, "count": 10, "refused": {}}
    for changes in (
        {"healthz": slow},
        {"upload": {"median_s": 0.1, "max_s": 0.5, "count": 10, "refused": {"503": 1}}},
        {"log_tracebacks": 3},
        {"log_500s": 1},
        {"settled_rss_over_idle_mib": 150},
        {"disk_growth_mib": 500.0},
        {"close_max_s": 25.0},
        {"open_after_s": 2},
    ):
        assert not met(outcome(**changes)), changes


def test_the_table_has_a_row_per_attack_and_run() -> None:
    text = render(
        [
            {"processes": 1, "outcomes": [outcome()]},
            {"processes": 2, "outcomes": [outcome(log_tracebacks=4)]},
        ]
    )
    assert "**1 worker process(es)**" in text and "**2 worker process(es)**" in text
    rows = [line for line in text.splitlines() if line.startswith("| slow-readers")]
    assert len(rows) == 2
    assert rows[0].rstrip().endswith("yes |") and rows[1].rstrip().endswith("**no** |")
    assert "0 / 4" in rows[1]
