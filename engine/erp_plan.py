"""What the sync job sends the ERP: changes summed per SKU-location over a window, in batches."""

from __future__ import annotations

from typing import NamedTuple

import msgpack

from engine.erp_client import AdjustmentLine
from engine.journal import LedgerEntry


class Window:
    """Journal entries read since the last checkpoint, summed per SKU-location.

    Changes whose source is the ERP's own are left out (the ERP made them); what nets to
    zero is not sent at all. `reached` is the last seq read per partition: the checkpoint
    once the ERP has taken everything.
    """

    def __init__(self, erp_sources: tuple[str, ...], lines_max: int) -> None:
        self._erp_sources = frozenset(erp_sources)
        self._lines_max = lines_max
        self.totals: dict[tuple[str, str], list[int]] = {}
        self.reached: dict[int, int] = {}
        # When each entry with something to send was applied: its sync lag is measured
        # from there once the ERP acknowledges it.
        self.change_times_ms: list[int] = []

    def add(self, partition: int, entry: LedgerEntry) -> None:
        sent = False
        for change in entry.ledger_changes:
            if change.source in self._erp_sources:
                continue
            total = self.totals.setdefault((change.sku, change.location), [0, 0])
            total[0] += change.on_hand_delta
            total[1] += change.committed_delta
            sent = True
        if sent:
            self.change_times_ms.append(entry.now_ms)
        self.reached[partition] = entry.last_seq

    @property
    def full(self) -> bool:
        return len(self.totals) >= self._lines_max

    def lines(self) -> list[AdjustmentLine]:
        """Non-zero net changes, in (sku, location) order so a plan reads the same each time."""
        return [AdjustmentLine(sku, location, on_hand_delta, committed_delta)
                for (sku, location), (on_hand_delta, committed_delta) in sorted(self.totals.items())
                if on_hand_delta or committed_delta]


class Plan(NamedTuple):
    """One window's batches, saved before the first is posted, so a restarted job posts the
    same batches under the same keys (and the ERP's idempotency drops the ones it has)."""

    sync_id: str
    number: int
    batches: tuple[tuple[AdjustmentLine, ...], ...]
    # Per partition, the seq the readers are checkpointed to once every batch is settled.
    reached: dict[int, int]
    oldest_change_ms: int

    def key(self, index: int) -> str:
        """The batch's idempotency key and batch id: unique per engine, plan and batch."""
        return f"{self.sync_id}-{self.number}-{index}"

    def encode(self) -> bytes:
        return msgpack.packb([self.sync_id, self.number, [list(map(list, b)) for b in self.batches],
                              list(self.reached.items()), self.oldest_change_ms])

    @classmethod
    def decode(cls, data: bytes) -> Plan:
        sync_id, number, batches, reached, oldest_change_ms = msgpack.unpackb(data, raw=False)
        return cls(sync_id, number,
                   tuple(tuple(AdjustmentLine(*line) for line in batch) for batch in batches),
                   dict(reached), oldest_change_ms)


def plan_window(window: Window, sync_id: str, number: int, batch_lines_max: int) -> Plan:
    lines = window.lines()
    batches = tuple(tuple(lines[start:start + batch_lines_max])
                    for start in range(0, len(lines), batch_lines_max))
    return Plan(sync_id, number, batches, dict(window.reached),
                min(window.change_times_ms, default=0))
