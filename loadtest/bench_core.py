"""Core benchmark: single-line Reserve throughput and memory of one PartitionState at 1M items.

Run: python loadtest/bench_core.py [--items N] [--locations L] [--rounds R] [--profile]
The last line is `reserves_per_s=<batch-1000 figure> bytes_per_sku_location=<figure>`.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import random
import statistics
import time
import tracemalloc

from engine.model import Reserve, ReserveLine
from engine.partition_state import PartitionState
from engine.process import tune_garbage_collector

# Reserves per round for each batch size: the small batches go one command at a time,
# so fewer of them keep the run short without changing their rate.
COMMANDS_PER_ROUND = {1: 5_000, 10: 20_000, 100: 50_000, 1000: 100_000}
# Enough holds that the tables' doublings average out instead of landing in the sample.
HOLDS_MEASURED = 400_000


def load_catalogue(items: int, locations: int) -> tuple[PartitionState, int]:
    """A state with `items` SKU-locations; returns it and the bytes it holds per row."""
    gc.collect()
    tracemalloc.start()
    state = PartitionState()
    skus_per_location = items // locations
    for location in range(locations):
        skus = [f"SKU-{n:08d}" for n in range(skus_per_location)]
        state.load_items(skus, [f"LOC-{location:03d}"] * len(skus), [1_000_000] * len(skus))
    gc.collect()
    held_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return state, held_bytes // state.items.size


def reserve_batches(state: PartitionState, batch_size: int, commands_total: int,
                    rng: random.Random, prefix: str = "") -> list[list[Reserve]]:
    skus_per_location = state.items.size // len(state.items.locations)
    batches, made = [], 0
    while made < commands_total:
        batch = []
        for _ in range(batch_size):
            made += 1
            line = ReserveLine(f"SKU-{rng.randrange(skus_per_location):08d}",
                               f"LOC-{rng.randrange(len(state.items.locations)):03d}", 1)
            batch.append(Reserve(f"key-{prefix}{batch_size}-{made}",
                                 f"r{prefix}{batch_size}-{made}", (line,)))
        batches.append(batch)
    return batches


def measure(state: PartitionState, batches: list[list[Reserve]], now_ms: int,
            read_results: bool = False) -> float:
    """Commands per second applying the batches back to back (and reading every result)."""
    commands = sum(len(batch) for batch in batches)
    started = time.perf_counter()
    for batch in batches:
        results = state.apply(batch, now_ms)
        if read_results:
            for _ in results:
                pass
    return commands / (time.perf_counter() - started)


def bytes_per_hold(state: PartitionState, rng: random.Random, now_ms: int) -> int:
    """Memory a granted single-line Reserve keeps: its hold and its idempotency entry."""
    gc.collect()
    tracemalloc.start()  # before the commands are built: the state keeps them
    batches = reserve_batches(state, 1000, HOLDS_MEASURED, rng, prefix="memory")
    for batch in batches:
        state.apply(batch, now_ms)
    batches.clear()
    gc.collect()
    held_bytes = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return held_bytes // HOLDS_MEASURED


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--locations", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=5, help="rounds per batch size")
    parser.add_argument("--profile", action="store_true", help="profile the batch-1000 run")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    rng = random.Random(args.seed)
    started = time.perf_counter()
    state, bytes_per_row = load_catalogue(args.items, args.locations)
    print(f"loaded {state.items.size:,} SKU-locations ({args.locations} locations) in "
          f"{time.perf_counter() - started:.1f} s: {bytes_per_row} bytes each")
    tune_garbage_collector()  # as a partition actor does once it has loaded
    now_ms = 1_700_000_000_000
    figures = {}
    for batch_size, total in COMMANDS_PER_ROUND.items():
        rounds = []
        for round_number in range(args.rounds):
            batches = reserve_batches(state, batch_size, total, rng, prefix=f"{round_number}-")
            profiling = args.profile and batch_size == 1000 and round_number == 0
            if profiling:
                profiler = cProfile.Profile()
                profiler.enable()
            rounds.append(measure(state, batches, now_ms))
            if profiling:
                profiler.disable()
                pstats.Stats(profiler).sort_stats("tottime").print_stats(12)
            now_ms += 1000
        # The median round: a round that holds a doubling of the big key tables (a copy and
        # fresh pages) runs markedly slower, and this machine is shared besides.
        figures[batch_size] = statistics.median(rounds)
        print(f"batch {batch_size:>5}: {figures[batch_size]:>12,.0f} reserves/s  (rounds: "
              + ", ".join(f"{r:,.0f}" for r in rounds) + ")")
    batches = reserve_batches(state, 1000, COMMANDS_PER_ROUND[1000], rng, prefix="read-")
    print(f"batch  1000 with every result built: {measure(state, batches, now_ms, True):,.0f}"
          " reserves/s (as the gateway reads them)")
    print(f"each held reservation with its remembered key: "
          f"{bytes_per_hold(state, rng, now_ms)} bytes")
    print(f"reserves_per_s={figures[1000]:.0f} bytes_per_sku_location={bytes_per_row}")


if __name__ == "__main__":
    main()
