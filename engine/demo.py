"""`availability demo`: start the engine, play a short retail story over gRPC, show availability."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
import time

from inventory.v1 import availability_pb2 as pb

from engine.config import DurabilityConfig
from engine.embedded_redis import DEMO_DATA_DIR, redis_for
from engine.journal_store import forget_keys

LOCATIONS = ("dc-east", "dc-west", "store-012")
HOT_SKU = "SKU-000001"
HOLD_TTL_S = 2
EXPIRY_WAIT_S = 10.0
RECEIPTS_PER_CALL = 1_000


def run(skus: int, partitions: int, ray_address: str | None = None,
        durability: DurabilityConfig | None = None, data_dir: str = DEMO_DATA_DIR,
        out=print) -> None:
    """Start Redis (embedded unless given), Ray, the partition actors and a gateway on a free
    port; play; shut down, leaving nothing of the demo in Redis."""
    import ray

    from engine.partition_actor import start_partitions
    from gateway.partitions import RayPartitions

    # Its own namespace and keys, so a demo never meets an engine's (or an earlier demo's).
    namespace = f"availability-demo-{os.getpid()}-{time.time_ns()}"
    durability = dataclasses.replace(durability or DurabilityConfig(), key_prefix=namespace)
    with redis_for(durability, data_dir) as durability:
        ray.init(address=ray_address, namespace=namespace,
                 include_dashboard=False, configure_logging=False, log_to_driver=False)
        try:
            handles = start_partitions(partitions, namespace, durability=durability)
            asyncio.run(_serve_and_play(RayPartitions(handles), skus, out,
                                        durability.redis_url, namespace))
        finally:
            ray.shutdown()
            forget_keys(durability.redis_url, namespace)


async def _serve_and_play(partitions, skus: int, out, redis_url: str, namespace: str) -> None:
    from engine.config import GatewayConfig
    from engine.demo_erp import DemoErp
    from gateway.client import AvailabilityClient
    from gateway.server import Gateway

    gateway = Gateway(partitions, GatewayConfig())
    port = await gateway.start("127.0.0.1", 0)
    erp = DemoErp(redis_url, namespace, partitions.count)
    try:
        await asyncio.wait_for(gateway.serving.wait(), 60)
        await erp.start()
        out(f"Serving inventory.v1.AvailabilityService on 127.0.0.1:{port} "
            f"({partitions.count} partition actors), with a simulated ERP in step.")
        async with AvailabilityClient(f"127.0.0.1:{port}") as client:
            await play(client, skus, out, erp)
        await erp.report(out)
    finally:
        await erp.stop()
        await gateway.stop(grace_s=5)


def sample_catalogue(skus: int, seed: int = 1) -> list[tuple[str, str, int]]:
    rng = random.Random(seed)
    return [(f"SKU-{n:06d}", location, rng.randrange(0, 40))
            for n in range(1, skus + 1) for location in LOCATIONS]


def movement(event_id: str, source: str, kind: int, sku: str, location: str, quantity: int,
             **fields) -> pb.Movement:
    return pb.Movement(event_id=event_id, source=source, type=kind, sku=sku,
                       location=location, quantity=quantity, **fields)


async def play(client, skus: int, out, erp) -> None:
    """The story, told through the client: every number printed comes back from the engine.
    What the ERP itself sends (the import, a count, a receipt) is in its ledger already."""
    started_s = time.monotonic()
    catalogue = sample_catalogue(skus)
    for sku, location, on_hand in catalogue:
        erp.knows(sku, location, on_hand)
    erp.knows(HOT_SKU, "dc-east", 25)  # its count
    receipts = [movement(f"erp-import-{n}", "erp", pb.MOVEMENT_TYPE_RECEIPT, *row)
                for n, row in enumerate(catalogue) if row[2]]
    for start in range(0, len(receipts), RECEIPTS_PER_CALL):
        await client.apply_movements(receipts[start:start + RECEIPTS_PER_CALL])
    await client.apply_movements([movement("erp-count-1", "erp", pb.MOVEMENT_TYPE_CYCLE_COUNT,
                                           HOT_SKU, "dc-east", 25,
                                           occurred_at_unix_ms=time.time_ns() // 1_000_000)])
    out(f"Loaded {len(catalogue):,} SKU-locations through ApplyMovements "
        f"in {time.monotonic() - started_s:.1f} s.\n")

    out(f"Flash sale: 40 shoppers at once each reserve 1 unit of {HOT_SKU} at dc-east "
        "(25 on hand).")
    results = await asyncio.gather(*(
        client.reserve([(HOT_SKU, "dc-east", 1)], idempotency_key=f"cart-{n}",
                       ttl_seconds=HOLD_TTL_S) for n in range(40)))
    held = [r for r in results if r.status == pb.RESERVATION_STATUS_HELD]
    out(f"  held {len(held)}, rejected {len(results) - len(held)}: nothing oversold.")
    retry = await client.reserve([(HOT_SKU, "dc-east", 1)], idempotency_key="cart-0",
                                 ttl_seconds=HOLD_TTL_S)
    out(f"  a retry of cart-0 returns its first answer: "
        f"{retry.reservation_id or 'rejected'}\n")

    out("10 orders are placed, 5 carts are abandoned, the rest are left to expire.")
    await asyncio.gather(*(
        client.commit(r.reservation_id, idempotency_key=f"commit-{n}", order_ref=f"order-{n}")
        for n, r in enumerate(held[:10])))
    await asyncio.gather(*(
        client.release(r.reservation_id, idempotency_key=f"release-{n}", reason="abandoned")
        for n, r in enumerate(held[10:15])))
    out("The warehouse ships 4 orders; the store sells 2 at the till; 12 units arrive.\n")
    await client.apply_movements(
        [movement(f"wms-ship-{n}", "wms", pb.MOVEMENT_TYPE_SHIPMENT, HOT_SKU, "dc-east", 1,
                  order_ref=f"order-{n}") for n in range(4)]
        + [movement("pos-1", "pos", pb.MOVEMENT_TYPE_SALE, HOT_SKU, "store-012", 2),
           movement("erp-po-7", "erp", pb.MOVEMENT_TYPE_RECEIPT, HOT_SKU, "dc-east", 12)])
    erp.adds(HOT_SKU, "dc-east", 12)  # its purchase order arrived
    expired = await _wait_for_expiry(client, len(held) - 15)
    out(f"Once their {HOLD_TTL_S}-second TTL passes, {expired} abandoned holds expire by "
        "themselves.\n")

    rows = await client.get_availability([(HOT_SKU, location) for location in LOCATIONS]
                                         + [("SKU-000002", "dc-west")])
    _print_table(rows, out)


async def _wait_for_expiry(client, left_to_expire: int) -> int:
    """Poll until the partitions' own sweep has expired the holds nobody came back for."""
    deadline = time.monotonic() + EXPIRY_WAIT_S
    while True:
        (hot,) = await client.get_availability([(HOT_SKU, "dc-east")])
        if hot.reserved == 0 or time.monotonic() > deadline:
            return left_to_expire - hot.reserved
        await asyncio.sleep(0.2)


def _print_table(rows, out) -> None:
    columns = {"on_hand": "on_hand", "reserved": "reserved", "committed": "committed",
               "safety_stock": "safety", "damaged": "damaged", "quality_control": "qc",
               "incoming": "incoming", "available_to_sell": "ATS"}
    header = f"{'sku':<11} {'location':<10} " + " ".join(f"{c:>9}" for c in columns.values())
    out(header)
    out("-" * len(header))
    for row in rows:
        out(f"{row.sku:<11} {row.location:<10} "
            + " ".join(f"{getattr(row, c):>9}" for c in columns))
