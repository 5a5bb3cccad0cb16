"""ERP sync: ERP calls per 10,000 movements (coalescing) and sync lag, against a limited ERP.

    python loadtest/bench_erp.py [--rate 2000] [--seconds 30] [--erp-rps 10] [--items 10000]

Movements are applied at `--rate` per second to two journaled partitions in this process
(the actors' DurablePartition without Ray), against a real Redis (keys under a fresh prefix,
deleted after). The ERP simulator runs as its own process (`availability sim erp`) limited
to `--erp-rps` calls per second, and the sync job drains into it. The baseline, in the same
run, is what a connector that posts each movement costs: one call per movement.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import subprocess
import sys
import threading
import time
import urllib.request
import uuid

from engine.config import ErpSyncConfig
from engine.durable_partition import DurablePartition
from engine.erp_client import RestErp
from engine.erp_sync import ErpSync
from engine.journal_store import JournalStore, connect, forget_keys
from engine.model import Movement, MovementType
from engine.routing import partition_of

PARTITIONS = 2
LOCATIONS = ("dc-1", "store-7")
# Movements are applied every tick, in one batch per partition, as a gateway would.
TICK_S = 0.01
LISTENING = re.compile(r"listening on (?P<host>\S+):(?P<port>\d+)")


def start_simulator(erp_rps: float) -> tuple[subprocess.Popen, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "engine.cli", "sim", "erp", "--port", "0",
         "--rate-limit-rps", str(erp_rps), "--rate-limit-burst", "1"],
        stdout=subprocess.PIPE, text=True)
    for line in process.stdout:
        if match := LISTENING.search(line):
            return process, f"http://{match['host']}:{match['port']}"
    raise RuntimeError("the ERP simulator exited before listening")


def apply_movements(partitions: list[DurablePartition], rate: int, seconds: float,
                    items: int, stop: threading.Event, counted: list[int]) -> None:
    """Apply `rate` movements a second for `seconds`, paced per tick (skewed towards hot SKUs)."""
    rng = random.Random(1)
    per_tick, number, started = max(1, round(rate * TICK_S)), 0, time.monotonic()
    skus = [f"SKU-{n:06d}" for n in range(items // len(LOCATIONS))]
    while not stop.is_set() and time.monotonic() - started < seconds:
        batches: list[list[Movement]] = [[] for _ in partitions]
        for _ in range(per_tick):
            number += 1
            sku = skus[min(int(rng.paretovariate(1.2)) - 1, len(skus) - 1)]
            kind = rng.choice((MovementType.SALE, MovementType.SALE, MovementType.RECEIPT))
            batches[partition_of(sku, len(partitions))].append(
                Movement(f"bench-{number}", rng.choice(("pos", "wms", "marketplace")), kind,
                         sku, rng.choice(LOCATIONS), rng.randint(1, 3)))
        for partition, batch in zip(partitions, batches, strict=True):
            if batch:
                partition.apply(batch)
        counted[0] = number
        time.sleep(max(0.0, started + number / rate - time.monotonic()))


async def run(args: argparse.Namespace) -> dict:
    prefix = f"bench-erp-{uuid.uuid4().hex[:8]}"
    client = connect(args.redis_url)
    client.set(f"{prefix}:partitions", PARTITIONS)
    partitions = [DurablePartition(p, JournalStore(client, p, prefix)) for p in range(PARTITIONS)]
    for partition in partitions:
        partition.recover()
    simulator, erp_url = start_simulator(args.erp_rps)
    erp = RestErp(erp_url)
    sync = ErpSync(client, erp, PARTITIONS, ErpSyncConfig(key_prefix=prefix,
                                                           window_s=args.window_s))
    stop, counted = asyncio.Event(), [0]
    stop_load = threading.Event()
    try:
        syncing = asyncio.create_task(sync.run(stop))
        await asyncio.to_thread(apply_movements, partitions, args.rate, args.seconds,
                                args.items, stop_load, counted)
        deadline = time.monotonic() + 120
        while sync.backlog_commands() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        drained = sync.backlog_commands() == 0
        stop.set()
        await syncing
    finally:
        stop_load.set()
        await erp.close()
        with urllib.request.urlopen(f"{erp_url}/_sim/stats") as answer:
            erp_stats = json.load(answer)
        simulator.terminate()
        simulator.wait(10)
        forget_keys(args.redis_url, prefix)
    movements = counted[0]
    calls = erp_stats["requests_total"]
    return {
        "movements": movements, "seconds": args.seconds, "rate_per_s": args.rate,
        "erp_rps_limit": args.erp_rps, "drained": drained,
        "erp_calls": calls, "erp_calls_accepted": sync.stats.requests["ok"],
        "erp_calls_rate_limited": erp_stats["statuses"].get("429", 0),
        "lines_posted": sync.stats.lines_posted,
        "erp_calls_per_10k_movements": round(calls * 10_000 / max(movements, 1), 1),
        "baseline_calls_per_10k_movements": 10_000,
        "coalescing_ratio": round(movements / max(calls, 1), 1),
        "sync_lag_ms_p50": sync.stats.lag_ms_percentile(0.50),
        "sync_lag_ms_p99": sync.stats.lag_ms_percentile(0.99),
        "sync_lag_ms_max": sync.stats.lag_ms_percentile(1.0),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rate", type=int, default=2_000, help="movements per second")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--erp-rps", type=float, default=10.0, help="the ERP's rate limit")
    parser.add_argument("--items", type=int, default=10_000, help="SKU-locations moved")
    parser.add_argument("--window-s", type=float, default=ErpSyncConfig.window_s)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379")
    figures = asyncio.run(run(parser.parse_args()))
    print(json.dumps(figures, indent=2))
    print(f"ERP calls per 10,000 movements: {figures['erp_calls_per_10k_movements']} "
          f"(one call per movement: 10,000; {figures['coalescing_ratio']}x fewer); "
          f"sync lag p99 {figures['sync_lag_ms_p99']} ms")


if __name__ == "__main__":
    main()
