"""`availability demo`: a sample catalogue, a short retail story, and the availability it leaves."""

from __future__ import annotations

import random
import time
from collections.abc import Callable

from engine.ids import ReservationIdSource
from engine.model import (
    Commit,
    Expire,
    Movement,
    MovementType,
    Release,
    Reserve,
    ReserveLine,
)
from engine.partition_state import PartitionState
from engine.routing import partition_of

LOCATIONS = ("dc-east", "dc-west", "store-012")
HOT_SKU = "SKU-000001"


class Engine:
    """Partitions of the pure core in one process; the serving layer puts each in an actor."""

    def __init__(self, partitions: int, clock_ms: Callable[[], int]) -> None:
        self.partitions = [PartitionState() for _ in range(partitions)]
        self.clock_ms = clock_ms
        self.ids = ReservationIdSource(clock_ms)

    def owner(self, sku: str) -> int:
        return partition_of(sku, len(self.partitions))

    def reserve(self, key: str, sku: str, location: str, quantity: int, **options):
        partition = self.owner(sku)
        command = Reserve(key, self.ids.mint(partition), (ReserveLine(sku, location, quantity),),
                          **options)
        return self.partitions[partition].apply([command], self.clock_ms())[0]

    def apply(self, sku: str, commands: list):
        return list(self.partitions[self.owner(sku)].apply(commands, self.clock_ms()))

    def load(self, catalogue: list[tuple[str, str, int]]) -> None:
        for number, partition in enumerate(self.partitions):
            rows = [row for row in catalogue if self.owner(row[0]) == number]
            partition.load_items([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows])

    def availability(self, items: list[tuple[str, str]]):
        return [self.partitions[self.owner(sku)].query([(sku, location)]).items[0]
                for sku, location in items]


def sample_catalogue(skus: int, seed: int = 1) -> list[tuple[str, str, int]]:
    rng = random.Random(seed)
    return [(f"SKU-{n:06d}", location, rng.randrange(0, 40))
            for n in range(1, skus + 1) for location in LOCATIONS]


def run(skus: int, partitions: int, out=print) -> None:
    now_ms = [int(time.time() * 1000)]
    engine = Engine(partitions, lambda: now_ms[0])
    engine.load(sample_catalogue(skus))
    engine.apply(HOT_SKU, [Movement("erp-count-1", "erp", MovementType.CYCLE_COUNT, HOT_SKU,
                                    "dc-east", 25, now_ms[0])])
    out(f"Loaded {skus * len(LOCATIONS):,} SKU-locations into {partitions} partitions.\n")

    out(f"Flash sale: 40 shoppers each reserve 1 unit of {HOT_SKU} at dc-east (25 on hand).")
    results = [engine.reserve(f"cart-{n}", HOT_SKU, "dc-east", 1, ttl_seconds=60)
               for n in range(40)]
    held = [r for r in results if r.reservation_id]
    out(f"  held {len(held)}, rejected {len(results) - len(held)}: nothing oversold.")
    retry = engine.reserve("cart-0", HOT_SKU, "dc-east", 1, ttl_seconds=60)
    out(f"  a retry of cart-0 returns its first reservation: {retry.reservation_id}\n")

    out("10 orders are placed, 5 carts are abandoned, the rest are left to expire.")
    engine.apply(HOT_SKU, [Commit(r.reservation_id, f"commit-{n}", f"order-{n}")
                           for n, r in enumerate(held[:10])])
    engine.apply(HOT_SKU, [Release(r.reservation_id, f"release-{n}", "abandoned")
                           for n, r in enumerate(held[10:15])])
    out("The warehouse ships 4 orders; the store sells 2 at the till; 12 units arrive.\n")
    engine.apply(HOT_SKU, [Movement(f"wms-ship-{n}", "wms", MovementType.SHIPMENT, HOT_SKU,
                                    "dc-east", 1, order_ref=f"order-{n}") for n in range(4)])
    engine.apply(HOT_SKU, [
        Movement("pos-1", "pos", MovementType.SALE, HOT_SKU, "store-012", 2),
        Movement("erp-po-7", "erp", MovementType.RECEIPT, HOT_SKU, "dc-east", 12)])
    now_ms[0] += 61_000
    expired = engine.apply(HOT_SKU, [Expire()])[0].expired
    out(f"A minute later {expired} abandoned holds have expired by themselves.\n")

    _print_table(engine.availability([(HOT_SKU, location) for location in LOCATIONS]
                                     + [("SKU-000002", "dc-west")]), out)


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
