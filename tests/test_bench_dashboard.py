"""bench/bench_dashboard.py --quick runs end to end and prints every ratio (no timing asserted)."""

from __future__ import annotations

import importlib.util

from tests.conftest import REPO


def test_bench_dashboard_quick_prints_every_ratio(capsys):
    spec = importlib.util.spec_from_file_location(
        "bench_dashboard", REPO / "bench" / "bench_dashboard.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--quick", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    for name in (
        "redraw / tick",
        "redraw 2000 / 200",
        "inspector 1999 / 1",
        "tick (no new step)",
        "link restore",
        "first draw 2000 / 200",
    ):
        assert name in out
