"""`availability loadtest retail-day`: the same seeded day against the engine and the
point-to-point baseline, judged by the physical truth; JSON and an HTML report."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from dataclasses import dataclass

from loadtest.retail_world import RetailConfig

SIMULATED = (
    "Simulated clock, in process. The engine side is the real core: Router, PartitionHosts "
    "(LocalPartitions), channel rules, reservations, the channel publisher with velocity "
    "buffers, the marketplace simulator, and the ERP sync job's windowing posting into the "
    "ERP simulator's ledger. Not exercised: gRPC, Ray, the Redis journal, the sync job's "
    "HTTP client (`availability demo` runs all of those, at a human pace). The world "
    "(shoppers, marketplace buyers, tills, store outages, shrink, WMS picks, returns, ERP "
    "receipts and counts) and the point-to-point baseline are models. Online channels sell "
    "DC stock only; stores sell at the till only. Oversells and undersells are judged by "
    "the physical truth, never by the system under test.")


@dataclass(frozen=True)
class RetailOptions:
    config: RetailConfig = RetailConfig()
    speed: float | None = None  # simulated seconds per wall second; None: as fast as it goes
    json_path: str | None = None
    report_path: str | None = None
    progress: bool = True


def run(options: RetailOptions) -> dict:
    return asyncio.run(_run(options))


async def _run(options: RetailOptions) -> dict:
    from loadtest.bench_serve import load_line, machine_line
    from loadtest.retail_baseline import PointToPoint
    from loadtest.retail_day import RetailDay
    from loadtest.retail_engine import InProcessEngine

    config = options.config
    document: dict = {"machine": f"{machine_line()}; {load_line()} at the start",
                      "workload": dataclasses.asdict(config), "simulated": SIMULATED}
    for name, system in (("engine", InProcessEngine(config)),
                         ("baseline", PointToPoint(config))):
        document[name] = await RetailDay(config, system).run(
            options.speed, _progress(name, config) if options.progress else None)
    engine, baseline = document["engine"], document["baseline"]
    document["targets"] = {
        "engine_oversold_units": engine["oversold_units"],
        "engine_oversold_honoured_units": engine["oversold_honoured_units"],
        "baseline_oversold_units": baseline["oversold_units"],
        "met": engine["oversold_units"] == 0 and baseline["oversold_units"] > 0,
    }
    _write(options, document)
    return document


def _progress(name: str, config: RetailConfig):
    def show(now_s: float, day) -> None:
        if now_s % (6 * 3_600) < config.tick_s:
            tallies = day.truth.tallies
            print(f"{name:<9} {now_s / 3_600:5.1f}/{config.hours_simulated:g} h simulated  "
                  f"orders {sum(t.orders for t in tallies.values()):,}  "
                  f"oversold {sum(t.oversold_units for t in tallies.values()):,} units",
                  file=sys.stderr, flush=True)
    return show


def _write(options: RetailOptions, document: dict) -> None:
    from loadtest import report

    if options.json_path:
        with open(options.json_path, "w", encoding="utf-8") as out:
            json.dump(document, out, indent=2)
    if options.report_path:
        report.write(options.report_path, report.retail_page(document))


def summary_lines(document: dict) -> list[str]:
    """Per channel, engine against baseline; then ERP calls, sync lag and the target."""
    engine, baseline = document["engine"], document["baseline"]
    lines = [f"{'channel':<15} {'':>9} {'sold':>7} {'oversold':>9} {'cancelled':>9} "
             f"{'undersold':>9}  (units)"]
    for channel in engine["channels"]:
        for name, side in (("engine", engine), ("baseline", baseline)):
            tally = side["channels"][channel]
            lines.append(f"{channel:<15} {name:>9} {tally['units']:>7,} "
                         f"{tally['oversold_units']:>9,} {tally['cancelled_units']:>9,} "
                         f"{tally['undersold_units']:>9,}")
    for name, side in (("engine", engine), ("baseline", baseline)):
        lag = side["sync_lag"]
        calls = ", ".join(f"{purpose} {count:,}" for purpose, count in side["erp_calls"].items())
        lines.append(f"{name}: ERP calls {side['erp_calls_total']:,} ({calls}); sync lag "
                     f"p50 {lag['p50_s']:,.0f} s, p99 {lag['p99_s']:,.0f} s, max "
                     f"{lag['max_s']:,.0f} s, {lag['pending_at_end']:,} changes not in the ERP "
                     f"at the end; ran {side['run_s']:.1f} s")
    targets = document["targets"]
    lines.append(
        f"target (engine oversells 0, baseline more than 0): "
        f"{'met' if targets['met'] else 'MISSED'}: engine {targets['engine_oversold_units']} "
        f"oversold units ({targets['engine_oversold_honoured_units']} of them honoured), "
        f"baseline {targets['baseline_oversold_units']}")
    return lines
