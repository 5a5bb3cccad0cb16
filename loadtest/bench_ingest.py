"""Ingest: movements/s from XADD on the events stream to applied, journaled and acknowledged.

    python loadtest/bench_ingest.py [--events 200000] [--workers 2] [--partitions 4]

Loads `--events` receipts onto a fresh stream, then starts local Ray, journaling partition
actors and ingest workers in this process (as `serve` runs them) and times them until
every entry is acknowledged. It checks that every unit arrived once, and reports the
batch sizes: entries per XREADGROUP and movements per partition call.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
import uuid

import redis.asyncio as aioredis
from inventory.v1 import availability_pb2 as pb

from engine.config import DurabilityConfig, GatewayConfig
from engine.journal_store import forget_keys
from engine.model import GetAvailability, ItemRef
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


async def measure(args: argparse.Namespace, handles: list) -> None:
    client = aioredis.from_url(args.redis_url)
    suffix = uuid.uuid4().hex[:8]
    config = IngestConfig(stream=f"bench:{suffix}:events",
                          dead_letters=f"bench:{suffix}:events:dlq")
    try:
        print(f"loading {args.events:,} events onto {config.stream} ...", flush=True)
        expected = await load(client, config.stream, args.events, args.skus)
        await ensure_group(client, config)
        partitions = CountingPartitions(handles)
        router = Router(partitions, GatewayConfig())
        workers = [IngestWorker(client, router, config=config) for _ in range(args.workers)]
        stop = asyncio.Event()
        started = time.perf_counter()
        running = [asyncio.create_task(worker.run(stop)) for worker in workers]
        while sum(w.stats.applied + w.stats.duplicates + w.stats.dead_lettered
                  for w in workers) < args.events:
            await asyncio.sleep(0.01)
        elapsed_s = time.perf_counter() - started
        stop.set()
        await asyncio.gather(*running)
        pending = (await client.xpending(config.stream, config.group))["pending"]
        skus = sorted(expected)
        answers = []
        for start in range(0, len(skus), 1_000):
            query = GetAvailability(tuple(ItemRef(s, LOCATION) for s in skus[start:start + 1000]))
            answers += (await router.get_availability(query)).items
        arrived_once = {item.sku: item.on_hand for item in answers} == expected
        rate = args.events / elapsed_s
        print(f"{args.events:,} movements applied, journaled and acknowledged in "
              f"{elapsed_s:.2f} s: {rate:,.0f} movements/s (target >= {TARGET_PER_S:,}: "
              f"{'met' if rate >= TARGET_PER_S else 'MISSED'})")
        print(f"  {args.workers} worker(s), {len(handles)} partitions; movements per partition "
              f"call {partitions.commands / max(partitions.calls, 1):,.0f} "
              f"({partitions.calls:,} calls); entries per read up to "
              f"{config.batch_entries_max:,}")
        print(f"  checks: every unit arrived once: {'yes' if arrived_once else 'NO'}; "
              f"pending entries left: {pending}; dead letters: "
              f"{sum(w.stats.dead_lettered for w in workers)}")
        print(f"movements_per_s={rate:.0f}")
        if not arrived_once or pending:
            raise SystemExit("bench_ingest: a check failed")
    finally:
        await client.delete(config.stream, config.dead_letters)
        await client.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--skus", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--partitions", type=int, default=4)
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
