"""Figures of a run, its JSON-ready document, and the self-contained HTML report."""

from __future__ import annotations

import base64
import json
import re

import pytest

from loadtest import chaos, flash_results, report
from loadtest.flash_run import RunFacts
from loadtest.oversell import HoldRecord
from loadtest.recorder import Recorder

SKUS = ["A", "B"]


def recorded(oversell: bool = False) -> tuple[Recorder, RunFacts]:
    """A small run: holds on A and B, one commit; `oversell` plants a third unit on A."""
    recorder = Recorder()
    for n in range(3 if oversell else 2):
        recorder.op_done("reserve", n * 0.1, n * 0.1 + 0.005, "held")
        recorder.holds.append(HoldRecord("A", 1, n * 0.1, n * 0.1 + 0.005, 10.0))
    recorder.op_done("reserve", 0.5, 0.6, "rejected")
    recorder.op_done("commit", 1.0, 1.01, "committed")
    recorder.attempt_failed(1.2, TimeoutError("slow"))
    facts = RunFacts(run_s=2.0, samples=[(0.05, 1), (1.5, 2)], read={"A": (2, 0), "B": (0, 0)},
                     read_from_s=2.0, read_to_s=2.01)
    return recorder, facts


def test_target_figures_hold_the_issue_fields_and_the_series():
    """ops/s, percentiles, held, rejected, oversold and the time series are all there."""
    figures = flash_results.target_figures(*recorded(), SKUS, stock=2)
    assert figures["ops"] == 4 and figures["ops_per_s"] == 2.0
    assert (figures["held"], figures["rejected"], figures["committed"]) == (2, 1, 1)
    assert figures["oversold"] == 0 and figures["readback_problems"] == []
    assert figures["throughput_per_s"] == [3, 1] and figures["errors_per_s"] == [0, 1]
    # Second 0 answered three reserves of 5, 5 and 100 ms; second 1 the 10 ms commit.
    assert [s["p99_ms"] for s in figures["latency_per_s"]] == [pytest.approx(100, rel=0.01),
                                                               pytest.approx(10, rel=0.01)]
    assert figures["p99_ms"] > figures["p50_ms"] > 0
    assert [p["divergence_units"] for p in figures["divergence"]] == [0, 0]
    json.dumps(figures)  # the JSON holds the same figures as the report


def test_target_figures_report_a_planted_oversell_from_the_harness_records():
    """Three live units on a stock of two: oversold 1, whatever the target claims."""
    figures = flash_results.target_figures(*recorded(oversell=True), SKUS, stock=2)
    assert figures["oversold"] == 1 and figures["oversold_harness"] == 1
    assert figures["oversold_by_sku"] == {"A": 1}


def test_ratios_are_none_for_a_skipped_target():
    """A skipped PostgreSQL leaves its ratio unmeasured, not zero."""
    figures = flash_results.target_figures(*recorded(), SKUS, stock=2)
    ratios = flash_results.ratios({"engine": figures, "redis_lua": figures,
                                   "postgres": flash_results.skipped("unreachable")})
    assert ratios["engine_vs_redis_lua"] == 1.0 and ratios["engine_vs_redis_lua_met"]
    assert ratios["engine_vs_postgres"] is None and ratios["engine_oversold_zero"]


def test_flash_page_is_self_contained_with_embedded_pngs():
    """The HTML carries every figure as a base64 PNG data URI and no external link."""
    figures = flash_results.target_figures(*recorded(), SKUS, stock=2)
    document = {"engine": figures, "redis_lua": figures,
                "postgres": flash_results.skipped("PostgreSQL unreachable"),
                "workload": {"buyers": 3}, "machine": "test machine"}
    document["ratios"] = flash_results.ratios(document)
    page = report.flash_page(document)
    images = re.findall(r"src='data:image/png;base64,([^']+)'", page)
    assert len(images) == 5
    assert all(base64.b64decode(image).startswith(b"\x89PNG") for image in images)
    assert "http://" not in page and "https://" not in page
    assert "PostgreSQL unreachable" in page


def test_chaos_phases_and_costs_split_a_run_by_fault():
    """Instants before the first fault are steady; each fault's window runs to the next."""
    phase = chaos.phase_of(100.0)
    assert [phase(t) for t in (10, 30, 60, 90)] == ["steady", "partition_kill",
                                                    "gateway_kill", "redis_pause"]
    costs = chaos.costs({"steady": {"p99_ms": 5.0}, "redis_pause": {"attempt_errors": 3,
                                                                    "p99_ms": 900.0}},
                        [{"name": "redis_pause", "at_s": 75.0, "what": "SIGSTOP"}])
    assert costs["redis_pause"]["attempt_errors"] == 3
    assert costs["redis_pause"]["steady_p99_ms"] == 5.0
    assert costs["partition_kill"]["what"] == "not reached"


def test_capacity_page_embeds_its_figures():
    """The capacity report draws each body's steps, engine and bare."""
    steps = [{"concurrency": c, "requests_per_s": 100.0 * c, "mean_ms": 1.0} for c in (1, 4)]
    document = {"machine": "m", "capacity": {"bodies": {"reserve_replay": {
        "what": "replays", "engine": steps, "bare": steps, "engine_peak_per_s": 400.0,
        "bare_peak_per_s": 400.0, "ratio": 1.0, "engine_saturation_concurrency": 4}}}}
    assert report.capacity_page(document).count("data:image/png;base64,") == 1
