"""`availability loadtest flash-sale`: one workload against the engine, Redis+Lua and
PostgreSQL in the same run, oversells checked independently, optionally with faults."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass

from loadtest import chaos, flash_results, report
from loadtest.bench_serve import load_line, machine_line
from loadtest.engine_process import running_engine
from loadtest.flash_run import FlashRun, RunSettings
from loadtest.recorder import Recorder
from loadtest.targets import TargetUnavailable
from loadtest.workload import CLOSED, WorkloadSpec, build_buyers, sku_names

TARGETS = ("engine", "redis_lua", "postgres")
POSTGRES_DSN = "postgresql://postgres@127.0.0.1:5432/test"


@dataclass(frozen=True)
class FlashOptions:
    spec: WorkloadSpec
    settings: RunSettings
    targets: tuple[str, ...] = TARGETS
    # An engine already serving; None starts a private `availability serve`.
    address: str | None = None
    partitions: int = 4
    gateways: int = 1
    ray_address: str | None = None
    # The engine's journal and the Lua baseline's Redis; None: a private embedded one each.
    redis_url: str | None = None
    postgres_dsn: str = POSTGRES_DSN
    postgres_pool_size: int = 20
    chaos: bool = False
    chaos_pause_s: float = 2.0
    json_path: str | None = None
    report_path: str | None = None


def run(options: FlashOptions) -> dict:
    """Measure every target, write the JSON and report asked for, return the document."""
    run_id = f"{os.getpid():x}{time.time_ns() % 16**6:06x}"
    spec = options.spec
    buyers = build_buyers(spec)
    skus = sku_names(run_id, spec.skus)
    document: dict = {"machine": f"{machine_line()}; {load_line()} at the start",
                      "workload": {**dataclasses.asdict(spec), "run_id": run_id,
                                   "requests_in_flight_max":
                                       options.settings.requests_in_flight_max}}
    for name in TARGETS:
        if name not in options.targets:
            document[name] = flash_results.skipped("not asked for (--targets)")
    with contextlib.ExitStack() as stack:
        if "engine" in options.targets:
            document["engine"] = _measure_engine(options, stack, buyers, skus, run_id,
                                                 document)
        if "redis_lua" in options.targets:
            from loadtest.targets_redis_lua import RedisLuaTarget

            url = options.redis_url or stack.enter_context(_private_redis())
            document["redis_lua"] = _measure(
                RedisLuaTarget(url, run_id, options.settings.requests_in_flight_max),
                options, buyers, skus, run_id)
        if "postgres" in options.targets:
            from loadtest.targets_postgres import PostgresTarget

            document["postgres"] = _measure(
                PostgresTarget(options.postgres_dsn, run_id, options.postgres_pool_size),
                options, buyers, skus, run_id)
    document["ratios"] = flash_results.ratios(document)
    _write(options, document)
    return document


def _measure_engine(options: FlashOptions, stack: contextlib.ExitStack, buyers, skus,
                    run_id: str, document: dict) -> dict:
    from loadtest.targets_engine import EngineTarget

    namespace = f"loadtest-{run_id}"
    ray_address = options.ray_address
    if options.chaos:  # a driver in this process's Ray, so a partition can be killed
        ray_address = stack.enter_context(_ray_driver(ray_address, namespace))
    if options.address:
        address, engine = options.address, None
    else:
        gateways = max(options.gateways, 2) if options.chaos else options.gateways
        engine = stack.enter_context(running_engine(options.partitions, gateways, namespace,
                                                    ray_address, options.redis_url))
        address = engine.address
    faults, phase_of = [], (lambda at_s: "run")
    if options.chaos:
        faults = chaos.faults(engine, options.spec.duration_s, options.partitions,
                              options.chaos_pause_s, options.redis_url)
        phase_of = chaos.phase_of(options.spec.duration_s)
    figures = _measure(EngineTarget(address, run_id), options, buyers, skus, run_id,
                       faults, phase_of)
    if options.chaos and figures["status"] == "ok":
        document["chaos"] = {"costs": chaos.costs(figures["phases"], figures["faults"]),
                             "lost_or_doubled": figures["readback_problems"] or "none"}
    return figures


def _measure(target, options: FlashOptions, buyers, skus, run_id: str, faults=(),
             phase_of=lambda at_s: "run") -> dict:
    """One target through the whole workload; a target that cannot be set up is skipped."""
    async def measure() -> dict:
        try:
            await target.setup(skus, options.spec.stock)
        except TargetUnavailable as error:
            await target.close()
            return flash_results.skipped(str(error))
        try:
            recorder = Recorder(phase_of)
            facts = await FlashRun(target, buyers, skus, options.spec, options.settings,
                                   recorder, f"{run_id}-{target.name}", faults).run()
            return flash_results.target_figures(recorder, facts, skus, options.spec.stock)
        finally:
            await target.close()

    figures = asyncio.run(measure())
    if figures["status"] == "skipped":
        print(f"{target.name}: skipped: {figures['reason']}", file=sys.stderr)
    return figures


@contextlib.contextmanager
def _ray_driver(address: str | None, namespace: str) -> Iterator[str]:
    """Join (or start) Ray in this process; yields the address serve should join."""
    import ray

    ray.init(address=address, namespace=namespace, include_dashboard=False,
             configure_logging=False, log_to_driver=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@contextlib.contextmanager
def _private_redis() -> Iterator[str]:
    """An embedded redis-server for the Lua baseline, in a folder of its own."""
    from engine.embedded_redis import start_embedded_redis

    folder = tempfile.mkdtemp(prefix="avl-lua-", dir="/tmp")
    server = start_embedded_redis(folder)
    try:
        yield server.url
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _write(options: FlashOptions, document: dict) -> None:
    if options.json_path:
        with open(options.json_path, "w") as out:
            json.dump(document, out, indent=1)
    if options.report_path:
        report.write(options.report_path, report.flash_page(document))


def summary_lines(document: dict) -> list[str]:
    """What the command prints when it is done: a line per target, the ratios, chaos."""
    lines = []
    for name in TARGETS:
        figures = document.get(name) or {}
        if figures.get("status") != "ok":
            lines.append(f"{name:<10} skipped: {figures.get('reason', '')}")
            continue
        lines.append(f"{name:<10} {figures['ops_per_s']:>9,.0f} ops/s (peak "
                     f"{figures['peak_ops_per_s']:,}/s)  p50 {figures['p50_ms']:.1f} ms  "
                     f"p99 {figures['p99_ms']:.1f} ms  held {figures['held']:,}  rejected "
                     f"{figures['rejected']:,}  committed {figures['committed']:,}  failed "
                     f"{figures['failed_ops']:,}  oversold {figures['oversold']}")
        if figures["readback_problems"]:
            lines.append(f"{'':<10} read-back: {figures['readback_problems'][0]}")
    ratios = document["ratios"]
    for key, goal in (("engine_vs_redis_lua", 1.0), ("engine_vs_postgres", 5.0)):
        value = ratios[key]
        lines.append(f"{key}: " + ("not measured" if value is None else
                                   f"{value:.2f} (target >= {goal:g}: "
                                   f"{'met' if value >= goal else 'MISSED'})"))
    if document["workload"]["arrival"] != CLOSED:
        lines.append("(an open arrival curve credits a target that keeps up with the offered "
                     "rate, not its capacity: compare capacity with --arrival closed)")
    if "chaos" in document:
        for name, cost in document["chaos"]["costs"].items():
            lines.append(f"chaos {name}: {cost['what']}; {cost['attempt_errors']} attempt "
                         f"errors, {cost['failed_ops']} failed ops, p99 {cost['p99_ms']:.0f} "
                         f"ms (steady {cost['steady_p99_ms']:.0f} ms), max "
                         f"{cost['max_ms']:.0f} ms")
        lines.append(f"chaos: acknowledged lost or doubled: "
                     f"{document['chaos']['lost_or_doubled']}")
    return lines
