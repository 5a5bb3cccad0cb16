"""Smoke run of `availability loadtest retail-day`: a few simulated hours, small numbers."""

from __future__ import annotations

import json
import subprocess

from tests.e2e.conftest import AVAILABILITY

COMMAND_TIMEOUT_S = 120


def test_retail_day_writes_json_and_report_with_both_sides_judged_by_the_shelves(tmp_path):
    """Per-channel oversells and undersells for the engine and the baseline, ERP calls, sync
    lag, divergence over time; the engine's storefront never oversells."""
    figures, page = tmp_path / "day.json", tmp_path / "day.html"
    run = subprocess.run(
        [*AVAILABILITY, "loadtest", "retail-day", "--hours-simulated", "8", "--stores", "12",
         "--skus", "10", "--no-progress", "--json", str(figures), "--report", str(page)],
        capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
    assert run.returncode == 0, run.stderr[-3_000:]
    document = json.loads(figures.read_text())
    for side in ("engine", "baseline"):
        assert set(document[side]["channels"]) == {"web", "marketplace-a", "marketplace-b"}
        assert document[side]["divergence"][-1]["t_h"] == 8.0
        assert document[side]["sync_lag"]["changes"] > 0
        assert document[side]["erp_calls_total"] > 0
    assert document["engine"]["channels"]["web"]["oversold_units"] == 0
    assert document["engine"]["oversold_honoured_units"] == 0
    assert "target (engine oversells 0, baseline more than 0)" in run.stdout
    html = page.read_text()
    assert html.count("data:image/png;base64,") == 3 and "What is simulated" in html
