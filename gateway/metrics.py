"""Every Prometheus metric a gateway or ingest process exports, in a registry of its own.

Counted as they happen: RPCs (gateway/rpc_metrics.py), partition calls (MeteredPartitions)
and hot SKUs. Read at scrape time: lane queues, ingest workers' counters, and the figures
that gateway/ops_poll.py last polled from the partition actors and Redis.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from gateway.hot_skus import HotSkus

if TYPE_CHECKING:
    from gateway.ops_poll import OpsView

# RPC latency bounds in seconds: a Reserve takes a millisecond or two, a loaded one tens.
RPC_BUCKETS_S = (0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256,
                 0.512, 1.0, 2.5, 5.0, 10.0)
# Commands per partition call: one alone when idle, up to LaneLimits.batch_commands_max.
BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2000)
# Label values of sources are the sources' own names: only this many are exported.
SOURCES_MAX = 50
INGEST_OUTCOMES = ("applied", "duplicates", "dead_lettered", "retried")


class GatewayMetrics:
    """The metrics of one process; `registry` is what /metrics serves."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry = registry or CollectorRegistry()
        self.rpc_duration = Histogram(
            "availability_rpc_duration_seconds", "RPC latency by method and status code",
            ["method", "code"], buckets=RPC_BUCKETS_S, registry=registry)
        self.rpc_refusals = Counter(
            "availability_rpc_refusals", "RPCs answered with a status other than OK (method "
            "BatchCommand: one command of a Batch)", ["method", "code"], registry=registry)
        self.reservations = Counter(
            "availability_reservations", "Reserve answers by reservation status",
            ["status"], registry=registry)
        self.reserve_lines = Counter(
            "availability_reserve_lines", "Reserve lines by line code", ["code"],
            registry=registry)
        self.movement_results = Counter(
            "availability_movement_results", "ApplyMovements results by movement code",
            ["code"], registry=registry)
        self.batch_commands = Histogram(
            "availability_partition_batch_commands", "Commands per partition call",
            ["partition"], buckets=BATCH_BUCKETS, registry=registry)
        self.call_duration = Histogram(
            "availability_partition_call_duration_seconds",
            "Partition call round trip, journal write included", ["partition"],
            buckets=RPC_BUCKETS_S, registry=registry)
        self.hot_skus = HotSkus()
        self.calls_in_flight: list[int] = []

    def metered(self, partitions):
        """`partitions` with every call's size and duration counted here."""
        self.calls_in_flight = [0] * partitions.count
        return MeteredPartitions(partitions, self)

    def watch_lanes(self, lanes: Sequence) -> None:
        """Export each lane's queue depth (and calls in flight) at scrape time."""
        self.registry.register(_LaneCollector(lanes, self.calls_in_flight))

    def watch_ingest(self, workers: Sequence) -> None:
        """Export the counters of these ingest workers (their `stats`) at scrape time."""
        self.registry.register(_IngestStatsCollector(workers))

    def watch_polls(self, view: Callable[[], OpsView | None]) -> None:
        """Export what the poller last read from the partitions and Redis."""
        self.registry.register(_PolledCollector(view))


class MeteredPartitions:
    """A Partitions whose `apply` calls are counted; everything else is the wrapped one's."""

    def __init__(self, partitions, metrics: GatewayMetrics) -> None:
        self._partitions = partitions
        self.count = partitions.count
        self._in_flight = metrics.calls_in_flight
        # Children resolved once: a label lookup per call would cost more than the call's
        # own bookkeeping.
        self._sizes = [metrics.batch_commands.labels(str(p)) for p in range(self.count)]
        self._durations = [metrics.call_duration.labels(str(p)) for p in range(self.count)]

    def __getattr__(self, name: str):
        return getattr(self._partitions, name)

    async def apply(self, partition: int, commands):
        self._sizes[partition].observe(len(commands))
        self._in_flight[partition] += 1
        started = time.perf_counter()
        try:
            return await self._partitions.apply(partition, commands)
        finally:
            self._in_flight[partition] -= 1
            self._durations[partition].observe(time.perf_counter() - started)


class _LaneCollector:
    def __init__(self, lanes: Sequence, in_flight: list[int]) -> None:
        self._lanes, self._in_flight = lanes, in_flight

    def collect(self):
        queued = GaugeMetricFamily("availability_lane_queued_commands",
                                   "Commands queued in the gateway for a partition, not sent",
                                   labels=["partition"])
        flying = GaugeMetricFamily("availability_lane_calls_in_flight",
                                   "Partition calls sent and not yet answered",
                                   labels=["partition"])
        for partition, lane in enumerate(self._lanes):
            queued.add_metric([str(partition)], lane.queued)
            if partition < len(self._in_flight):
                flying.add_metric([str(partition)], self._in_flight[partition])
        yield queued
        yield flying


class _IngestStatsCollector:
    def __init__(self, workers: Sequence) -> None:
        self._workers = workers

    def collect(self):
        stats = [worker.stats for worker in self._workers]
        entries = CounterMetricFamily("availability_ingest_entries",
                                      "Events-stream entries by what the workers did",
                                      labels=["outcome"])
        for outcome in INGEST_OUTCOMES:
            entries.add_metric([outcome], sum(getattr(s, outcome) for s in stats))
        yield entries
        for name, attribute, text in (
                ("gaps", "sequence_gaps", "Source sequence numbers skipped"),
                ("regressions", "sequence_regressions",
                 "Source sequence numbers that went back or repeated")):
            family = CounterMetricFamily(f"availability_ingest_sequence_{name}", text,
                                         labels=["source"])
            for source, count in summed(getattr(s, attribute) for s in stats):
                family.add_metric([source], count)
            yield family


def summed(counters) -> list[tuple[str, int]]:
    """Counts per key over several counters, the SOURCES_MAX largest."""
    total: dict[str, int] = {}
    for counter in counters:
        for key, count in counter.items():
            total[key] = total.get(key, 0) + count
    return sorted(total.items(), key=lambda item: -item[1])[:SOURCES_MAX]


# Figures of each partition's metrics(): (name, help, key in the actor's answer).
_PARTITION_GAUGES = (
    ("seq", "Last sequence number the partition applied", "seq"),
    ("items", "SKU-locations the partition holds", "items"),
    ("holds_live", "Holds live (granted, not committed, released or expired)", "holds_live"),
    ("holds_expiring", "Live holds due to expire within the next 60 s", "holds_expiring"),
    ("snapshot_age_seconds", "Time since the partition's last snapshot (or recovery)",
     "snapshot_age_s"),
)


class _PolledCollector:
    def __init__(self, view: Callable[[], OpsView | None]) -> None:
        self._view = view

    def collect(self):
        view = self._view()
        if view is None:
            return
        yield from _partition_families(view.partitions)
        if view.readers is not None:
            yield from _reader_families(view.readers)
        if view.ingest is not None:
            yield from _ingest_families(view.ingest)
        if view.erp_sync:  # the erp-sync job's own name for it, seen from here
            yield GaugeMetricFamily("availability_erp_sync_breaker_state",
                                    "ERP circuit breaker of the running erp-sync job: "
                                    "0 closed, 1 half-open, 2 open",
                                    value=view.erp_sync["breaker_state"])


def _partition_families(partitions: Sequence[dict | None]):
    up = GaugeMetricFamily("availability_partition_up",
                           "1 if the partition answered the last poll, else 0",
                           labels=["partition"])
    journal_up = GaugeMetricFamily("availability_partition_journal_up",
                                   "1 if the partition can write its journal, else 0",
                                   labels=["partition"])
    gauges = {key: GaugeMetricFamily(f"availability_partition_{name}", text,
                                     labels=["partition"])
              for name, text, key in _PARTITION_GAUGES}
    lag = GaugeMetricFamily("availability_partition_snapshot_lag_commands",
                            "Commands journaled since the last snapshot (replayed on restart)",
                            labels=["partition"])
    writes = HistogramMetricFamily("availability_partition_journal_write_seconds",
                                   "Round trip of one group-commit journal write to Redis",
                                   labels=["partition"])
    for partition, figures in enumerate(partitions):
        label = [str(partition)]
        up.add_metric(label, float(figures is not None))
        if figures is None:
            continue
        journal_up.add_metric(label, float(figures.get("journal", "off") in ("ok", "off")))
        for key, family in gauges.items():
            if figures.get(key) is not None:
                family.add_metric(label, figures[key])
        if "snapshot_seq" in figures:
            lag.add_metric(label, max(0, figures["seq"] - figures["snapshot_seq"]))
        histogram = figures.get("journal_write_latency")
        if histogram:
            writes.add_metric(label, cumulative_buckets_s(histogram),
                              histogram["sum_ms"] / 1000)
    yield from (up, journal_up, *gauges.values(), lag, writes)


def cumulative_buckets_s(histogram: dict) -> list[tuple[str, float]]:
    """A LatencyHistogram snapshot as Prometheus buckets: cumulative, bounds in seconds."""
    buckets, total = [], 0
    for bound_ms, count in zip(histogram["buckets_ms"], histogram["counts"], strict=False):
        total += count
        buckets.append((repr(bound_ms / 1000), total))
    buckets.append(("+Inf", total + histogram["counts"][-1]))
    return buckets


def _reader_families(readers: Sequence[dict]):
    backlog = GaugeMetricFamily("availability_journal_reader_backlog_commands",
                                "Commands journaled that a downstream reader (erp-sync) has "
                                "not checkpointed", labels=["partition", "reader"])
    lag = GaugeMetricFamily("availability_journal_reader_lag_seconds",
                            "Age of the oldest journal entry a reader has not checkpointed",
                            labels=["partition", "reader"])
    for partition, of_partition in enumerate(readers):
        for reader, figures in sorted(of_partition.items()):
            labels = [str(partition), reader]
            backlog.add_metric(labels, figures["backlog_commands"])
            lag.add_metric(labels, figures["lag_s"])
    yield backlog
    yield lag


def _ingest_families(ingest: dict):
    for name, key, text in (
            ("lag_entries", "lag_entries", "Entries of availability:events not yet delivered "
             "to the ingest group (Redis 7 and newer)"),
            ("pending_entries", "pending_entries", "Entries delivered to ingest workers and not "
             "yet acknowledged"),
            ("dlq_entries", "dlq_entries", "Entries in availability:events:dlq")):
        if ingest.get(key) is not None:
            yield GaugeMetricFamily(f"availability_ingest_{name}", text, value=ingest[key])
