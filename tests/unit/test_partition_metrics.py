"""What a partition tells operators: holds live and due soon, journal write latency, and the
figures its actor answers (no Ray: the durable partition and writer alone)."""

from __future__ import annotations

from engine.config import PartitionConfig
from engine.durable_partition import DurablePartition
from engine.journal_writer import JournalWriter
from engine.model import Commit, Release
from tests.unit.partition_helpers import reserve
from tests.unit.waiting import Clock, wait_until

NOW_MS = 1_700_000_000_000
SKUS = [f"sku-{number}" for number in range(40)]


def partition_with_holds() -> tuple[DurablePartition, Clock]:
    """40 items; a run of 20 single-line holds for 30 s (numpy path), two 300 s holds, one
    hold committed and one released."""
    clock = Clock(NOW_MS)
    partition = DurablePartition(0, None, PartitionConfig(vectorized_run_min=16),
                                 clock_ms=clock)
    partition.host.state.load_items(SKUS, ["dc"] * len(SKUS), [10] * len(SKUS))
    partition.apply([reserve(f"run-{n}", (SKUS[n], "dc", 1), ttl_seconds=30)
                     for n in range(20)])
    partition.apply([reserve(f"long-{n}", (SKUS[30 + n], "dc", 1), (SKUS[35], "dc", 1),
                             ttl_seconds=300) for n in range(2)])
    partition.apply([reserve("gone-1", (SKUS[38], "dc", 1), ttl_seconds=30),
                     reserve("gone-2", (SKUS[39], "dc", 1), ttl_seconds=30)])
    partition.apply([Commit("res-gone-1", "c-1"), Release("res-gone-2", "r-2")])
    return partition, clock


def test_count_holds_counts_live_holds_and_those_due_soon():
    """Run holds and object holds both count; committed and released ones do not."""
    partition, _ = partition_with_holds()
    book = partition.host.state.reservations
    assert book.count_holds(NOW_MS + 60_000) == (22, 20)
    assert book.count_holds(NOW_MS + 10_000) == (22, 0)
    assert book.count_holds(NOW_MS + 600_000) == (22, 22)


def test_metrics_adds_holds_to_status_without_a_journal():
    """A partition without a journal reports holds and its status, and no journal figures."""
    partition, clock = partition_with_holds()
    clock.now_ms += 31_000
    partition.tick()  # the run's holds expire
    figures = partition.metrics()
    assert figures["holds_live"] == 2 and figures["holds_expiring"] == 0
    assert figures["holds_expiring_within_s"] == 60
    assert figures["journal"] == "off" and "journal_write_latency" not in figures
    assert figures["seq"] == partition.host.state.seq


def test_journal_writer_records_each_write_in_its_latency_histogram():
    """Every successful group-commit write is one observation; a failed one is not."""
    calls = []
    writer = JournalWriter(calls.append, lambda error: None)
    for seq in (1, 2, 3):
        writer.submit(seq, b"entry").wait(5)
    assert wait_until(lambda: sum(writer.write_latency.counts) == len(calls))
    snapshot = writer.write_latency.snapshot()
    assert sum(snapshot["counts"]) == len(calls) >= 1
    assert snapshot["sum_ms"] >= 0 and len(snapshot["counts"]) == len(snapshot["buckets_ms"]) + 1
