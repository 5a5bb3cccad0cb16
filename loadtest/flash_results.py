"""A target's flash-sale figures as the JSON and the report show them (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from loadtest import oversell
from loadtest.flash_run import SAMPLE_SKUS_MAX, RunFacts
from loadtest.recorder import Recorder


def target_figures(recorder: Recorder, facts: RunFacts, skus: Sequence[str],
                   stock: int) -> dict:
    """ops/s, latency, counts, the independent oversell checks and the time series."""
    stock_by_sku = dict.fromkeys(skus, stock)
    harness_oversold = oversell.oversold_by_sku(stock_by_sku, recorder.holds)
    readback_oversold = oversell.readback_oversold(stock_by_sku, facts.read)
    oversold_by_sku = {sku: max(harness_oversold.get(sku, 0), readback_oversold.get(sku, 0))
                       for sku in set(harness_oversold) | set(readback_oversold)}
    expected = oversell.expected_readback(recorder.holds, facts.read_from_s, facts.read_to_s)
    latency = {kind: histogram.summary() for kind, histogram in recorder.latency.items()}
    if facts.saturated_s:  # the closed curve: throughput while buyers were still waiting
        ops_per_s = facts.saturated_ops / facts.saturated_s
    else:
        ops_per_s = recorder.ops / facts.run_s if facts.run_s else 0.0
    return {
        "status": "ok",
        "ops": recorder.ops,
        "ops_per_s": round(ops_per_s, 1),
        "peak_ops_per_s": max(recorder.ops_by_second, default=0),
        "p50_ms": latency["all"]["p50_ms"],
        "p99_ms": latency["all"]["p99_ms"],
        "held": recorder.count("reserve", "held"),
        "rejected": recorder.count("reserve", "rejected"),
        "committed": recorder.count("commit", "committed"),
        "commit_refused": recorder.count("commit", "refused"),
        "released": recorder.count("release", "released"),
        # Refused Commits followed by a Release (a cart can be part committed, part expired).
        "releases_after_refused_commit": recorder.counts["release_after_refused_commit"],
        "failed_ops": sum(recorder.count(kind, "failed")
                          for kind in ("reserve", "commit", "release")),
        "attempt_errors": recorder.counts["attempt_errors"],
        "first_error": recorder.first_error,
        "oversold": sum(oversold_by_sku.values()),
        "oversold_by_sku": dict(sorted(oversold_by_sku.items())),
        "oversold_harness": sum(harness_oversold.values()),
        "oversold_readback": sum(readback_oversold.values()),
        "units_granted_peak": sum(oversell.peak_live_units(recorder.holds).values()),
        "readback_problems": oversell.readback_problems(expected, facts.read)[:20],
        "run_s": round(facts.run_s, 3),
        "saturated_s": round(facts.saturated_s, 3),
        "latency": latency,
        "latency_curve_ms": {kind: histogram.curve()
                             for kind, histogram in recorder.latency.items()},
        "throughput_per_s": list(recorder.ops_by_second),
        "latency_per_s": [{"p50_ms": second.percentile_ms(50),
                           "p99_ms": second.percentile_ms(99)}
                          for second in recorder.latency_by_second],
        "errors_per_s": list(recorder.errors_by_second),
        "divergence": divergence(recorder.holds, facts.samples, skus),
        "phases": {name: tally.summary() for name, tally in recorder.phases.items()},
        "faults": facts.faults,
    }


def divergence(holds: Sequence[oversell.HoldRecord], samples: Sequence[tuple[float, int]],
               skus: Sequence[str]) -> list[dict]:
    """Per sample: the target's reserved + committed against the units the harness knows
    were live then, over the sampled SKUs. Calls in flight and expiry sweeps make it > 0."""
    sampled = frozenset(skus[:SAMPLE_SKUS_MAX])
    harness = oversell.live_units_at(holds, [at_s for at_s, _ in samples], sampled)
    return [{"t_s": round(at_s, 3), "target_units": units, "harness_units": known,
             "divergence_units": units - known}
            for (at_s, units), known in zip(samples, harness)]


def skipped(reason: str) -> dict:
    """A target that could not run: reported, with no figures."""
    return {"status": "skipped", "reason": reason, "ops_per_s": None, "p50_ms": None,
            "p99_ms": None, "held": None, "rejected": None, "oversold": None}


def ratios(results: Mapping[str, dict]) -> dict:
    """The issue's targets as ratios of this run's figures (None where a side did not run)."""
    def ops(name: str) -> float | None:
        figures = results.get(name) or {}
        return figures.get("ops_per_s") if figures.get("status") == "ok" else None

    def peak(name: str) -> float | None:
        figures = results.get(name) or {}
        return figures.get("peak_ops_per_s") if figures.get("status") == "ok" else None

    engine, lua, pg = ops("engine"), ops("redis_lua"), ops("postgres")
    engine_peak, lua_peak, pg_peak = peak("engine"), peak("redis_lua"), peak("postgres")
    engine_oversold = (results.get("engine") or {}).get("oversold")
    return {
        "engine_vs_redis_lua": round(engine / lua, 3) if engine and lua else None,
        "engine_vs_postgres": round(engine / pg, 3) if engine and pg else None,
        "engine_vs_redis_lua_met": (engine / lua >= 1.0) if engine and lua else None,
        "engine_vs_postgres_met": (engine / pg >= 5.0) if engine and pg else None,
        "engine_vs_redis_lua_peak": round(engine_peak / lua_peak, 3)
        if engine_peak and lua_peak else None,
        "engine_vs_postgres_peak": round(engine_peak / pg_peak, 3)
        if engine_peak and pg_peak else None,
        "engine_oversold_zero": engine_oversold == 0 if engine_oversold is not None else None,
    }
