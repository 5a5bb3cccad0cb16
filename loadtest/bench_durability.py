"""Durability: recovery time of a big partition, and the longest reservation stall of a snapshot.

    python loadtest/bench_durability.py [--items 1000000] [--entries 100000] [--redis-url URL]

Both run in this process against a real Redis (keys under a fresh prefix, deleted after):
the partition is the actor's DurablePartition without Ray around it.
"""

from __future__ import annotations

import argparse
import functools
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from engine import compactor
from engine.config import DurabilityConfig
from engine.durable_partition import DurablePartition
from engine.journal_store import JournalStore, connect, forget_keys
from engine.model import Movement, MovementType, Reserve, ReserveLine
from engine.process import tune_garbage_collector
from engine.snapshot_writer import SnapshotWriter

LOCATION = "DC-1"
STOCK_PER_ITEM = 1_000_000
RECOVERY_TARGET_S = 10.0
# Snapshots taken while reservations run, for the stall figure.
SNAPSHOTS = 5


class Clock:
    """Wall time, or wall time pushed ahead (to make a snapshot due at once)."""

    def __init__(self) -> None:
        self.ahead_ms = 0

    def __call__(self) -> int:
        return time.time_ns() // 1_000_000 + self.ahead_ms


def sku(n: int) -> str:
    return f"SKU-{n:08d}"


def hold(n: int, items: int, rng: random.Random) -> Reserve:
    return Reserve(f"bench-{n}", f"r0-{n:032x}", (ReserveLine(sku(rng.randrange(items)),
                                                              LOCATION, 1),))


def build_partition(url: str, prefix: str, items: int, entries: int, compacting: bool = False,
                    durability: DurabilityConfig | None = None) -> DurablePartition:
    """A journaled partition: `items` SKU-locations in its snapshot, then `entries` journal
    entries of one hold each after it. With `compacting`, later snapshots are taken as the
    actor's are, by a compactor process."""
    clock = Clock()
    durability = durability or DurabilityConfig(snapshot_every_commands=10**12)
    store = JournalStore(connect(url), 0, prefix)
    snapshots = SnapshotWriter(store, functools.partial(compactor.command, url, prefix, 0,
                                                        None)) if compacting else None
    partition = DurablePartition(0, store, durability=durability, clock_ms=clock,
                                 snapshots=snapshots)
    partition.recover()
    partition.host.state.load_items([sku(n) for n in range(items)], [LOCATION] * items,
                                    [STOCK_PER_ITEM] * items)
    # One journaled change makes a snapshot due; it holds every item loaded above.
    partition.apply([Movement("bench-receipt", "wms", MovementType.RECEIPT, sku(0), LOCATION, 1)])
    clock.ahead_ms = int(1000 * durability.snapshot_interval_s) + 1
    partition.tick()
    clock.ahead_ms = 0
    rng = random.Random(1)
    applied = [partition.start([hold(n, items, rng)]) for n in range(entries)]
    if applied and not all(applied[-1].results()):
        raise RuntimeError("the last entry was not journaled")
    return partition


def measure_recovery(url: str, items: int, entries: int) -> tuple[float, bool]:
    """Seconds for a fresh partition to load the snapshot and replay the journal, and
    whether it then equals the partition it was journaled from."""
    prefix = f"bench-recovery-{os.getpid()}-{time.time_ns()}"
    try:
        live = build_partition(url, prefix, items, entries)
        rebuilt = DurablePartition(0, JournalStore(connect(url), 0, prefix))
        started = time.perf_counter()
        rebuilt.recover()
        seconds = time.perf_counter() - started
        state, expected = rebuilt.host.state, live.host.state
        same = (state.seq == expected.seq and state.items.size == expected.items.size
                and all((state.items.columns[name][:state.items.size]
                         == expected.items.columns[name][:expected.items.size]).all()
                        for name in expected.items.columns))
        return seconds, same
    finally:
        forget_keys(url, prefix)


@dataclass
class Stalls:
    """Reservation latencies during snapshots against those outside them (one run)."""

    spawn_ms_max: float
    during_ms_max: float
    outside_ms_max: float
    outside_ms_p99: float
    snapshots: int
    reservations: int
    compaction_s: float


def measure_snapshot_stall(url: str, items: int) -> Stalls:
    """Reserve in a loop on one thread while the timer thread has snapshots taken by a
    compactor process, as the actor does."""
    prefix = f"bench-stall-{os.getpid()}-{time.time_ns()}"
    durability = DurabilityConfig(key_prefix=prefix, snapshot_every_commands=10**12,
                                  snapshot_interval_s=0.001)
    try:
        partition = build_partition(url, prefix, items, 0, compacting=True,
                                    durability=durability)
        tune_garbage_collector()  # as the actor does once recovered
        writer = partition.snapshots
        latencies: list[tuple[float, float]] = []  # (start, ms)
        windows: list[tuple[float, float]] = []
        stop = threading.Event()
        reserving = threading.Thread(target=_reserve_until, args=(partition, items, stop,
                                                                  latencies))
        reserving.start()
        time.sleep(1.0)  # a baseline before any snapshot
        for _ in range(SNAPSHOTS):
            taken = writer.taken
            started = time.perf_counter()
            partition.tick()  # due at once: the interval is 1 ms
            while writer.taken == taken:
                time.sleep(0.005)
                partition.tick()
            windows.append((started, time.perf_counter()))
            time.sleep(0.5)
        stop.set()
        reserving.join()
        # A reservation is "during" a snapshot if its wait overlaps one at all.
        def overlaps(at: float, ms: float) -> bool:
            return any(at <= b and at + ms / 1000 >= a for a, b in windows)
        compaction_s = sum(b - a for a, b in windows) / len(windows)
        during = [ms for at, ms in latencies if overlaps(at, ms)]
        outside = sorted(ms for at, ms in latencies if not overlaps(at, ms))
        return Stalls(writer.longest_stall_ms, max(during, default=0.0), outside[-1],
                      outside[int(0.99 * (len(outside) - 1))], writer.taken, len(latencies),
                      compaction_s)
    finally:
        forget_keys(url, prefix)


def _reserve_until(partition: DurablePartition, items: int, stop: threading.Event,
                   latencies: list[tuple[float, float]]) -> None:
    rng, n = random.Random(2), 10**9
    while not stop.is_set():
        n += 1
        started = time.perf_counter()
        partition.apply([hold(n, items, rng)])
        latencies.append((started, 1000 * (time.perf_counter() - started)))


def report(url: str, items: int, entries: int, out: Callable[[str], None] = print) -> dict:
    """Measure both and print them; returns the figures."""
    out(f"recovery of a partition of {items:,} items with {entries:,} journal entries ...")
    seconds, same = measure_recovery(url, items, entries)
    verdict = "met" if seconds <= RECOVERY_TARGET_S else "MISSED"
    out(f"  recovered in {seconds:.2f} s (target <= {RECOVERY_TARGET_S:g} s: {verdict}); "
        f"state equal to the live one: {'yes' if same else 'NO'}")
    out(f"snapshot stall: reservations on a {items:,}-item partition during {SNAPSHOTS} "
        "snapshots ...")
    stalls = measure_snapshot_stall(url, items)
    out(f"  starting the compactor (the only time the partition's lock waits on a snapshot): "
        f"longest {stalls.spawn_ms_max:.1f} ms")
    out(f"  each snapshot took the compactor {stalls.compaction_s:.1f} s on average")
    out(f"  longest reservation during a snapshot {stalls.during_ms_max:.1f} ms; outside "
        f"snapshots: longest {stalls.outside_ms_max:.1f} ms, p99 {stalls.outside_ms_p99:.2f} ms "
        f"({stalls.reservations:,} reservations)")
    if not same:
        raise SystemExit("bench_durability: the recovered state differs from the live one")
    return {"recovery_s": seconds, "spawn_ms_max": stalls.spawn_ms_max,
            "stall_during_snapshot_ms": stalls.during_ms_max,
            "stall_outside_ms": stalls.outside_ms_max}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    figures = report(args.redis_url, args.items, args.entries)
    print(" ".join(f"{name}={value:.3f}" for name, value in figures.items()))


if __name__ == "__main__":
    main()
