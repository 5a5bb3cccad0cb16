"""How fast one WatchAvailability stream is: updates/s it sustains, and the time from a change
being applied to its update reaching the client (p50/p99), against a real `availability serve`.

    python loadtest/bench_watch.py [--skus 20000] [--seconds 10] [--probes 200]

It starts `availability serve` on port 0 with a private --data-dir (its own Ray and
embedded Redis), loads --skus SKUs, opens one watch of the `default` channel, then:
1. throughput: senders apply +1 adjustments round-robin over the SKUs as fast as they can
   for --seconds; the watcher counts updates (two per change: the location and the
   SKU's network figure; coalescing may merge changes of a SKU read between polls);
2. latency: --probes single changes, one at a time, each on a SKU of its own; the clock
   runs from ApplyMovements returning to the update's arrival.
The last line is `watch_updates_per_s=N latency_ms_p50=X latency_ms_p99=Y`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time

from inventory.v1 import availability_pb2 as pb

from gateway.client import AvailabilityClient
from loadtest.engine_process import running_engine

LOCATION = "dc-1"


def movement(event_id: str, sku: str, kind: int, quantity: int) -> pb.Movement:
    return pb.Movement(event_id=event_id, source="bench", type=kind, sku=sku,
                       location=LOCATION, quantity=quantity)


async def load(client: AvailabilityClient, skus: list[str]) -> None:
    for start in range(0, len(skus), 1_000):
        await client.apply_movements([movement(f"load-{sku}", sku, pb.MOVEMENT_TYPE_RECEIPT, 100)
                                      for sku in skus[start:start + 1_000]], timeout=60)


class Watcher:
    """One stream: counts updates and notes when each (sku, location) last arrived."""

    def __init__(self, client: AvailabilityClient) -> None:
        self.updates = 0
        self.snapshot_done = asyncio.Event()
        self.snapshot_updates = 0
        self.arrivals: dict[str, float] = {}
        self.wanted: set[str] = set()
        self._task = asyncio.create_task(self._read(client))

    async def _read(self, client: AvailabilityClient) -> None:
        async for update in client.watch(channel=""):
            if update.kind == pb.UPDATE_KIND_SNAPSHOT_COMPLETE:
                self.snapshot_done.set()
                continue
            if not self.snapshot_done.is_set():
                self.snapshot_updates += 1
                continue
            self.updates += 1
            if update.sku in self.wanted and update.location:
                self.arrivals[update.sku] = time.perf_counter()

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task


async def throughput(client: AvailabilityClient, watcher: Watcher, skus: list[str],
                     seconds: float, senders: int = 4) -> tuple[float, float]:
    """(updates/s received, changes/s applied) while senders apply as fast as they can."""
    applied = 0
    end = time.perf_counter() + seconds

    async def send(sender: int) -> None:
        nonlocal applied
        batch = 0
        while time.perf_counter() < end:
            batch += 1
            chosen = skus[(sender * 997 + batch * 500) % len(skus):][:500]
            await client.apply_movements([
                movement(f"adj-{sender}-{batch}-{n}", sku, pb.MOVEMENT_TYPE_ADJUSTMENT, 1)
                for n, sku in enumerate(chosen)], timeout=60)
            applied += len(chosen)

    before, started = watcher.updates, time.perf_counter()
    await asyncio.gather(*(send(sender) for sender in range(senders)))
    elapsed = time.perf_counter() - started
    await asyncio.sleep(1.0)  # the last poll round's updates, still on their way
    return (watcher.updates - before) / (elapsed + 1.0), applied / elapsed


async def latency(client: AvailabilityClient, watcher: Watcher, probes: int) -> list[float]:
    """Milliseconds from a change's ApplyMovements returning to its update arriving."""
    taken = []
    for probe in range(probes):
        sku = f"probe-{probe}"
        watcher.wanted.add(sku)
        await client.apply_movements([movement(f"probe-{probe}", sku, pb.MOVEMENT_TYPE_RECEIPT,
                                               5)], timeout=30)
        applied_at = time.perf_counter()
        deadline = applied_at + 10.0
        while sku not in watcher.arrivals and time.perf_counter() < deadline:
            await asyncio.sleep(0.001)
        if sku in watcher.arrivals:
            taken.append((watcher.arrivals[sku] - applied_at) * 1000)
        await asyncio.sleep(0.02)  # probes apart, so each measures one poll round
    return taken


async def bench(target: str, skus_count: int, seconds: float, probes: int) -> None:
    skus = [f"w-{n:06d}" for n in range(skus_count)]
    async with AvailabilityClient(target) as client:
        await load(client, skus)
        watcher = Watcher(client)
        started = time.perf_counter()
        await asyncio.wait_for(watcher.snapshot_done.wait(), 120)
        snapshot_s = time.perf_counter() - started
        print(f"snapshot: {watcher.snapshot_updates} updates in {snapshot_s:.2f} s "
              f"({watcher.snapshot_updates / snapshot_s:,.0f}/s)", flush=True)
        received, applied = await throughput(client, watcher, skus, seconds)
        print(f"throughput: {received:,.0f} updates/s received while {applied:,.0f} "
              f"changes/s were applied ({seconds:g} s)", flush=True)
        taken = await latency(client, watcher, probes)
        await watcher.close()
    quantiles = statistics.quantiles(taken, n=100) if len(taken) >= 2 else [float("nan")] * 99
    print(f"latency: {len(taken)}/{probes} probes, p50 {quantiles[49]:.1f} ms, "
          f"p99 {quantiles[98]:.1f} ms, max {max(taken, default=float('nan')):.1f} ms")
    print(f"watch_updates_per_s={received:.0f} latency_ms_p50={quantiles[49]:.1f} "
          f"latency_ms_p99={quantiles[98]:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skus", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--partitions", type=int, default=4)
    args = parser.parse_args()
    with running_engine(args.partitions, 1, "bench-watch", ingest_workers=1) as engine:
        asyncio.run(bench(engine.address, args.skus, args.seconds, args.probes))


if __name__ == "__main__":
    main()
