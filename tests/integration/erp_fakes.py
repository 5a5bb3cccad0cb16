"""An in-memory ERP with idempotency keys and scripted failures, and journaling partitions."""

from __future__ import annotations

import time
from collections.abc import Sequence

from engine.durable_partition import DurablePartition
from engine.erp_client import AdjustmentLine, ErpRejected, ErpRetryLater, OnHand
from engine.journal_store import JournalStore
from engine.routing import partition_of


class ScriptedErp:
    """Applies each idempotency key once; `script` answers the next calls with failures."""

    def __init__(self) -> None:
        self.on_hand_by_item: dict[tuple[str, str], int] = {}
        self.committed_by_item: dict[tuple[str, str], int] = {}
        self.bodies: dict[str, tuple] = {}
        self.script: list[Exception] = []
        self.calls: list[tuple[float, str]] = []  # (monotonic time, key) of every call
        self.apply_then_fail = False  # apply the batch, then lose the answer

    async def post_adjustments(self, idempotency_key: str, batch_id: str,
                               lines: Sequence[AdjustmentLine]) -> None:
        self.calls.append((time.monotonic(), idempotency_key))
        if self.script:
            raise self.script.pop(0)
        body = tuple(lines)
        if idempotency_key in self.bodies:
            if self.bodies[idempotency_key] != body:
                raise ErpRejected(409, "key used with another body")
            return
        self.bodies[idempotency_key] = body
        for line in lines:
            item = (line.sku, line.location)
            self.on_hand_by_item[item] = self.on_hand_by_item.get(item, 0) + line.on_hand_delta
            self.committed_by_item[item] = (self.committed_by_item.get(item, 0)
                                            + line.committed_delta)
        if self.apply_then_fail:
            raise ErpRetryLater("answer lost after applying")

    async def on_hand(self):
        for (sku, location), on_hand in sorted(self.on_hand_by_item.items()):
            yield OnHand(sku, location, on_hand)

    async def close(self) -> None:
        pass


def down(count: int) -> list[Exception]:
    return [ErpRetryLater("503 down") for _ in range(count)]


class JournaledPartitions:
    """`count` partitions in this process, journaling to Redis under `prefix` (no Ray)."""

    def __init__(self, client, prefix: str, count: int) -> None:
        client.set(f"{prefix}:partitions", count)
        self.partitions = [DurablePartition(p, JournalStore(client, p, prefix))
                           for p in range(count)]
        for partition in self.partitions:
            partition.recover()

    def apply(self, movements: Sequence) -> list:
        """Apply each movement in its SKU's partition."""
        return [result for movement in movements for result in self.apply_to(movement.sku,
                                                                              [movement])]

    def apply_to(self, sku: str, commands: Sequence) -> list:
        """Apply commands as one batch in `sku`'s partition (a cart of that SKU, say)."""
        return self.partitions[partition_of(sku, len(self.partitions))].apply(commands)

    def on_hand(self) -> dict[tuple[str, str], int]:
        figures = {}
        for partition in self.partitions:
            state = partition.host.state
            for row in range(state.items.size):
                key = (state.items.row_sku[row],
                       state.items.locations[state.items.row_location[row]])
                figures[key] = int(state.items.columns["on_hand"][row])
        return figures
