"""The dashboard document is computed from registry samples: windowed latencies and rates,
partition figures polled from the actors, ingest and ERP backlogs, rejects and hot SKUs."""

from __future__ import annotations

import dataclasses
import re
import types
from collections import Counter
from pathlib import Path

import pytest
from inventory.v1 import availability_pb2 as pb
from prometheus_client import generate_latest

from engine.latency_histogram import LatencyHistogram
from gateway import dashboard
from gateway.ingest_entries import IngestStats
from gateway.metrics import GatewayMetrics, cumulative_buckets_s
from gateway.ops_poll import OpsView
from gateway.rpc_metrics import count_reserve_responses

T0 = 1_800_000_000.0


def partition_figures(seq: int, write_ms: float) -> dict:
    latency = LatencyHistogram()
    for _ in range(10):
        latency.observe(write_ms)
    return {"partition": 0, "seq": seq, "items": 3, "journal": "ok", "snapshot_seq": 40,
            "holds_live": 7, "holds_expiring": 2, "snapshot_age_s": 12.5,
            "journal_write_latency": latency.snapshot()}


def metrics_with_polls(view: OpsView) -> GatewayMetrics:
    metrics = GatewayMetrics()
    metrics.watch_polls(lambda: view)
    lanes = [types.SimpleNamespace(queued=5), types.SimpleNamespace(queued=0)]
    metrics.calls_in_flight = [1, 0]
    metrics.watch_lanes(lanes)
    return metrics


VIEW = OpsView(
    partitions=[partition_figures(100, 1.5), None],
    readers=[{"erp-sync": {"backlog_commands": 60, "lag_s": 3.5}}, {}],
    ingest={"lag_entries": 4, "pending_entries": 2, "consumers": 1, "dlq_entries": 1},
    polled_at_s=T0)


def test_build_reads_latency_percentiles_and_rates_over_the_window():
    """Reserve latencies observed between two samples give its p50/p99 and requests/s."""
    metrics = metrics_with_polls(VIEW)
    history = dashboard.History()
    history.add(dashboard.sample_of(metrics.registry, T0))
    for _ in range(100):
        metrics.rpc_duration.labels("Reserve", "OK").observe(0.003)
    metrics.rpc_duration.labels("Reserve", "INVALID_ARGUMENT").observe(0.0004)
    history.add(dashboard.sample_of(metrics.registry, T0 + 10))
    rpc = dashboard.build(history, [])["rpc"]
    [reserve] = rpc["methods"]
    assert reserve["method"] == "Reserve" and reserve["requests"] == 101
    assert reserve["requests_per_s"] == pytest.approx(10.1)
    assert 2.0 < reserve["p50_ms"] <= 4.0 and 2.0 < reserve["p99_ms"] <= 4.0
    assert rpc["requests_per_s"] == pytest.approx(10.1)


def test_build_shows_partitions_polled_and_one_that_did_not_answer():
    """A partition that answered shows its figures; one that did not is not ready."""
    metrics = metrics_with_polls(VIEW)
    history = dashboard.History()
    history.add(dashboard.sample_of(metrics.registry, T0))
    first, second = dashboard.build(history, [])["partitions"]
    assert first["ready"] is True and first["journal_ok"] is True
    assert (first["seq"], first["journal_lag_commands"], first["holds_live"],
            first["holds_expiring"], first["queued"], first["in_flight"]) == (100, 60, 7, 2, 5, 1)
    assert first["snapshot_age_s"] == 12.5
    assert 1.0 < first["journal_write_ms_p50"] <= 2.0
    assert first["readers"] == {"erp-sync": {"backlog_commands": 60, "lag_s": 3.5}}
    assert second["ready"] is False and second["queued"] == 0


def test_build_sums_ingest_and_erp_backlogs_without_a_sync_job_running():
    """Ingest lag, pending and DLQ come from the poll; the ERP backlog from the erp-sync
    reader; with no sync job publishing, its breaker is unknown."""
    metrics = metrics_with_polls(VIEW)
    history = dashboard.History()
    history.add(dashboard.sample_of(metrics.registry, T0))
    document = dashboard.build(history, [("SKU-1", 9)])
    assert document["ingest"]["lag_entries"] == 4
    assert document["ingest"]["pending_entries"] == 2
    assert document["ingest"]["dlq_entries"] == 1
    assert document["erp"] == {"reader_registered": True, "backlog_commands": 60,
                               "lag_s": 3.5, "breaker": None}
    assert document["hot_skus"] == [{"sku": "SKU-1", "reserve_lines": 9}]


def test_build_shows_the_breaker_the_running_sync_job_published():
    """The erp-sync job's published breaker state reaches the page and /metrics."""
    metrics = metrics_with_polls(dataclasses.replace(VIEW, erp_sync={"breaker_state": 2.0,
                                                                      "lag_s": 30.0}))
    history = dashboard.History()
    history.add(dashboard.sample_of(metrics.registry, T0))
    assert dashboard.build(history, [])["erp"]["breaker"] == "open"


def test_build_counts_rejects_by_status_line_code_and_refusal():
    """A rejected Reserve counts by status and line code; a refusal by method and code."""
    metrics = metrics_with_polls(VIEW)
    rejected = pb.ReserveResponse(status=pb.RESERVATION_STATUS_REJECTED, lines=[
        pb.LineResult(sku="A", code=pb.LINE_CODE_INSUFFICIENT_AVAILABLE)])
    held = pb.ReserveResponse(status=pb.RESERVATION_STATUS_HELD,
                              lines=[pb.LineResult(sku="A", code=pb.LINE_CODE_OK)] * 2)
    count_reserve_responses(metrics, [rejected, held, held])
    metrics.rpc_refusals.labels("Commit", "NOT_FOUND").inc(3)
    history = dashboard.History()
    history.add(dashboard.sample_of(metrics.registry, T0))
    document = dashboard.build(history, [])
    assert document["rejects"]["reservations"] == {"REJECTED": 1, "HELD": 2}
    assert document["rejects"]["reserve_lines"] == {"INSUFFICIENT_AVAILABLE": 1, "OK": 4}
    assert document["refusals"] == [{"method": "Commit", "code": "NOT_FOUND", "count": 3}]


def test_build_with_no_sample_yet_shows_nothing_rather_than_zeros():
    """Before the first sample every figure is absent, and unmeasured ones are named."""
    document = dashboard.build(dashboard.History(), [])
    assert document["partitions"] == [] and document["rpc"]["requests_per_s"] is None
    assert document["ingest"]["dlq_entries"] is None
    assert document["erp"]["backlog_commands"] is None
    assert document["not_measured"] == ["channel divergence", "oversell exposure"]


def test_history_keeps_only_enough_samples_for_the_longest_window():
    """The history is a bounded deque: old samples fall off."""
    history = dashboard.History(window_s=10, interval_s=2)
    for second in range(100):
        history.add(dashboard.Sample(T0 + second, {}))
    assert len(history.samples) == 7
    oldest, newest = history.window(4)
    assert newest.at_s - oldest.at_s == 4


def test_registry_exports_prefixed_names_and_no_channel_figures():
    """Every exported name starts with availability_, and no channel metric is faked."""
    metrics = metrics_with_polls(VIEW)
    metrics.rpc_duration.labels("Reserve", "OK").observe(0.001)
    text = generate_latest(metrics.registry).decode()
    names = {line.split("{")[0].split(" ")[0] for line in text.splitlines()
             if line and not line.startswith("#")}
    assert names and all(name.startswith("availability_") for name in names)
    assert not any("channel" in name or "oversell" in name for name in names)
    assert 'availability_partition_journal_write_seconds_bucket{le="+Inf",partition="0"} 10.0' \
        in text
    assert 'availability_partition_up{partition="1"} 0.0' in text


def test_cumulative_buckets_s_converts_a_latency_snapshot():
    """Per-bucket counts in ms become cumulative Prometheus buckets in seconds."""
    latency = LatencyHistogram()
    for latency_ms in (0.1, 0.7, 0.7, 9_999):
        latency.observe(latency_ms)
    buckets = dict(cumulative_buckets_s(latency.snapshot()))
    assert buckets["0.00025"] == 1 and buckets["0.001"] == 3
    assert buckets["5.0"] == 3 and buckets["+Inf"] == 4


def test_grafana_dashboard_queries_only_exported_metrics():
    """Every availability_* name the shipped Grafana dashboard queries is one a process exports
    (serve's and ingest's registry, or erp-sync's collector)."""
    metrics = metrics_with_polls(VIEW)
    metrics.watch_ingest([types.SimpleNamespace(stats=IngestStats(
        sequence_gaps=Counter({"pos": 1}), sequence_regressions=Counter({"pos": 1})))])
    families = {family.name for family in metrics.registry.collect()}
    erp_source = (Path(__file__).parents[2] / "engine" / "erp_metrics.py").read_text()
    families |= set(re.findall(r"availability_erp_sync_\w+", erp_source))
    exported = {name + suffix for name in families
                for suffix in ("", "_total", "_bucket", "_count", "_sum")}
    grafana = (Path(__file__).parents[2] / "gateway" / "grafana" / "availability.json")
    queried = set(re.findall(r"availability_\w+", grafana.read_text()))
    assert queried and queried <= exported, sorted(queried - exported)
