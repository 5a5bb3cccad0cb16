"""The ops dashboard's figures, computed from samples of the metrics registry.

Latencies and rates are over the last minute (and requests/s over the last 10 s), from
the difference between the newest sample and an older one, so they say what the engine
does now rather than since it started. Everything here is pure: the server takes the
samples, this module only reads them.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gateway.histogram_math import difference, quantile

SAMPLE_INTERVAL_S = 2.0
LATENCY_WINDOW_S = 60.0
RATE_WINDOW_S = 10.0
HOT_SKUS_SHOWN = 10
ERP_READER = "erp-sync"
# The design's figures that the engine cannot measure yet; shown as such, never as zeros.
NOT_MEASURED = ("channel divergence", "oversell exposure")
Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Sample:
    """Every value of the registry at one instant, keyed by (sample name, sorted labels)."""

    at_s: float
    values: dict[tuple[str, Labels], float]


def sample_of(registry, at_s: float) -> Sample:
    values = {}
    for family in registry.collect():
        for sample in family.samples:
            values[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return Sample(at_s, values)


class History:
    """The latest samples, enough to cover the longest window (a bounded deque)."""

    def __init__(self, window_s: float = LATENCY_WINDOW_S,
                 interval_s: float = SAMPLE_INTERVAL_S) -> None:
        self.samples: deque[Sample] = deque(maxlen=math.ceil(window_s / interval_s) + 2)

    def add(self, sample: Sample) -> None:
        self.samples.append(sample)

    def window(self, window_s: float) -> tuple[Sample | None, Sample | None]:
        """(oldest sample within `window_s` of the newest, the newest); Nones when empty."""
        if not self.samples:
            return None, None
        newest = self.samples[-1]
        older = [s for s in self.samples if newest.at_s - s.at_s <= window_s + 0.5]
        oldest = older[0] if older and older[0] is not newest else None
        return oldest, newest


def values(sample: Sample | None, name: str, **match: str) -> Iterable[tuple[dict, float]]:
    """(labels, value) of every sample called `name` whose labels include `match`."""
    if sample is None:
        return
    for (sample_name, labels), value in sample.values.items():
        if sample_name != name:
            continue
        labels = dict(labels)
        if all(labels.get(key) == wanted for key, wanted in match.items()):
            yield labels, value


def totals(sample: Sample | None, name: str, by: str, **match: str) -> dict[str, float]:
    """Values of `name` summed per value of the label `by` (over every other label)."""
    summed: dict[str, float] = {}
    for labels, value in values(sample, name, **match):
        summed[labels.get(by, "")] = summed.get(labels.get(by, ""), 0.0) + value
    return summed


def histograms(sample: Sample | None, name: str,
               by: str) -> dict[str, tuple[list[float], list[float]]]:
    """Histogram `name` per value of label `by`: (finite bounds, cumulative counts + total)."""
    buckets: dict[str, dict[float, float]] = {}
    for labels, value in values(sample, f"{name}_bucket"):
        of_group = buckets.setdefault(labels.get(by, ""), {})
        bound = float(labels["le"])
        of_group[bound] = of_group.get(bound, 0.0) + value
    return {group: ([b for b in sorted(counts) if b != math.inf],
                    [counts[b] for b in sorted(counts)])
            for group, counts in buckets.items()}


def windowed_quantiles(history: History, name: str, by: str, scale: float = 1000.0,
                       window_s: float = LATENCY_WINDOW_S,
                       interpolate: bool = True) -> dict[str, dict]:
    """p50 and p99 (times `scale`: ms from seconds) and the count per group, over the window.

    With no older sample in the window, the newest reading alone (since start) counts."""
    oldest, newest = history.window(window_s)
    older = histograms(oldest, name, by)
    figures = {}
    for group, (bounds, cumulative) in histograms(newest, name, by).items():
        counts = difference(cumulative, older.get(group, (None, None))[1])
        figures[group] = {"count": counts[-1], **{
            f"p{int(q * 100)}": _scaled(quantile(q, bounds, counts, interpolate), scale)
            for q in (0.5, 0.99)}}
    return figures


def windowed_means(history: History, name: str, by: str,
                   window_s: float = LATENCY_WINDOW_S) -> dict[str, float]:
    """Mean observation of histogram `name` per label `by` over the window (or since start)."""
    oldest, newest = history.window(window_s)
    sums, counts = totals(newest, f"{name}_sum", by), totals(newest, f"{name}_count", by)
    old_sums, old_counts = totals(oldest, f"{name}_sum", by), totals(oldest, f"{name}_count", by)
    means = {}
    for group, count in counts.items():
        observed = count - old_counts.get(group, 0.0)
        if count < old_counts.get(group, 0.0):  # a reset: since the restart
            observed, old_sums[group] = count, 0.0
        if observed > 0:
            means[group] = round((sums.get(group, 0.0) - old_sums.get(group, 0.0)) / observed, 2)
    return means


def rates(history: History, name: str, by: str,
          window_s: float = RATE_WINDOW_S) -> dict[str, float]:
    """Per-second increase of counter (or histogram count) `name` per label `by`."""
    oldest, newest = history.window(window_s)
    if oldest is None:
        return {}
    elapsed_s = newest.at_s - oldest.at_s
    older = totals(oldest, name, by)
    return {group: max(0.0, value - older.get(group, 0.0)) / elapsed_s
            for group, value in totals(newest, name, by).items()}


def _scaled(value: float | None, scale: float) -> float | None:
    return None if value is None else round(value * scale, 3)


def build(history: History, hot_skus: Sequence[tuple[str, int]], errors: Sequence[str] = (),
          role: str = "serve") -> dict:
    """The JSON document the page and `availability status` show."""
    newest = history.samples[-1] if history.samples else None
    return {"role": role, "generated_at_s": newest.at_s if newest else None,
            "rpc": _rpc(history), "refusals": _refusals(newest),
            "rejects": {name: {key: int(count) for key, count in totals(
                            newest, f"availability_{metric}_total", label).items()}
                        for name, metric, label in (
                            ("reservations", "reservations", "status"),
                            ("reserve_lines", "reserve_lines", "code"),
                            ("movements", "movement_results", "code"))},
            "partitions": _partitions(history),
            "ingest": _ingest(newest),
            "erp": _erp(newest),
            "hot_skus": [{"sku": sku, "reserve_lines": count}
                         for sku, count in hot_skus[:HOT_SKUS_SHOWN]],
            "errors": list(errors), "not_measured": list(NOT_MEASURED)}


def _rpc(history: History) -> dict:
    name = "availability_rpc_duration_seconds"
    latencies = windowed_quantiles(history, name, "method")
    per_s = rates(history, f"{name}_count", "method")
    newest = history.samples[-1] if history.samples else None
    served = totals(newest, f"{name}_count", "method")
    methods = [{"method": method, "requests": int(served.get(method, 0)),
                "requests_per_s": round(per_s[method], 2) if method in per_s else None,
                "p50_ms": latencies.get(method, {}).get("p50"),
                "p99_ms": latencies.get(method, {}).get("p99")}
               for method in sorted(served)]
    return {"window_s": LATENCY_WINDOW_S, "methods": methods,
            "requests": int(sum(served.values())),
            "requests_per_s": round(sum(per_s.values()), 2) if per_s else None}


def _refusals(newest: Sample | None) -> list[dict]:
    rows = [{"method": labels["method"], "code": labels["code"], "count": int(value)}
            for labels, value in values(newest, "availability_rpc_refusals_total")]
    return sorted(rows, key=lambda row: -row["count"])


def _partitions(history: History) -> list[dict]:
    newest = history.samples[-1] if history.samples else None
    figures: dict[str, dict] = {}
    for key, name in (("ready", "up"), ("journal_ok", "journal_up"), ("seq", "seq"),
                      ("items", "items"), ("holds_live", "holds_live"),
                      ("holds_expiring", "holds_expiring"),
                      ("snapshot_age_s", "snapshot_age_seconds"),
                      ("journal_lag_commands", "snapshot_lag_commands")):
        for partition, value in totals(newest, f"availability_partition_{name}",
                                       "partition").items():
            figures.setdefault(partition, {})[key] = value
    for key, name in (("queued", "lane_queued_commands"), ("in_flight", "lane_calls_in_flight")):
        for partition, value in totals(newest, f"availability_{name}", "partition").items():
            figures.setdefault(partition, {})[key] = value
    writes = windowed_quantiles(history, "availability_partition_journal_write_seconds",
                                "partition")
    batch_name = "availability_partition_batch_commands"
    batches = windowed_quantiles(history, batch_name, "partition", scale=1.0, interpolate=False)
    batch_means = windowed_means(history, batch_name, "partition")
    for partition, of_partition in figures.items():
        for q in ("p50", "p99"):
            of_partition[f"journal_write_ms_{q}"] = writes.get(partition, {}).get(q)
        of_partition["batch_commands_mean"] = batch_means.get(partition)
        of_partition["batch_commands_p99"] = batches.get(partition, {}).get("p99")
        of_partition["readers"] = {
            labels["reader"]: {"backlog_commands": int(value), "lag_s": _reader_lag(
                newest, partition, labels["reader"])}
            for labels, value in values(newest, "availability_journal_reader_backlog_commands",
                                        partition=partition)}
        for key, value in of_partition.items():
            of_partition[key] = bool(value) if key in ("ready", "journal_ok") else _plain(value)
    return [{"partition": int(partition), **of_partition}
            for partition, of_partition in sorted(figures.items(), key=lambda i: int(i[0]))]


def _reader_lag(newest: Sample | None, partition: str, reader: str) -> float | None:
    for _, value in values(newest, "availability_journal_reader_lag_seconds",
                           partition=partition, reader=reader):
        return value
    return None


def _ingest(newest: Sample | None) -> dict:
    figures: dict = {key: _single(newest, f"availability_ingest_{key}")
                     for key in ("lag_entries", "pending_entries", "dlq_entries")}
    figures.update({outcome: int(value) for outcome, value in totals(
        newest, "availability_ingest_entries_total", "outcome").items()})
    for name in ("gaps", "regressions"):
        by_source = totals(newest, f"availability_ingest_sequence_{name}_total", "source")
        figures[f"sequence_{name}"] = int(sum(by_source.values()))
        figures[f"sequence_{name}_by_source"] = {k: int(v) for k, v in by_source.items()}
    return figures


_BREAKER_STATES = {0: "closed", 1: "half-open", 2: "open"}


def _erp(newest: Sample | None) -> dict:
    """The ERP sync job's backlog and lag, as its journal checkpoints show them."""
    backlog = totals(newest, "availability_journal_reader_backlog_commands", "reader",
                     reader=ERP_READER)
    lags = [value for _, value in values(newest, "availability_journal_reader_lag_seconds",
                                         reader=ERP_READER)]
    return {"reader_registered": bool(backlog),
            "backlog_commands": int(backlog[ERP_READER]) if backlog else None,
            "lag_s": max(lags) if lags else None,
            # Published by the running erp-sync job; None when none runs.
            "breaker": _BREAKER_STATES.get(_single(newest, "availability_erp_sync_breaker_state"))}


def _single(sample: Sample | None, name: str) -> float | None:
    for _, value in values(sample, name):
        return _plain(value)
    return None


def _plain(value):
    """A whole float as an int, so counts read as counts in JSON."""
    return int(value) if isinstance(value, float) and value.is_integer() else value
