"""Prometheus metrics of the ERP sync job, read from it at scrape time."""

from __future__ import annotations

import logging

import redis
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from engine.erp_sync import ErpSync

log = logging.getLogger(__name__)


class ErpSyncCollector:
    """Backlog, lag, breaker state and request outcomes of one sync job."""

    def __init__(self, sync: ErpSync) -> None:
        self._sync = sync

    def collect(self):
        sync, stats = self._sync, self._sync.stats
        try:
            backlog = sync.backlog_commands()
        except redis.RedisError as error:  # the scrape still shows the rest
            log.warning("backlog unknown: %s", error)
            backlog = float("nan")
        yield GaugeMetricFamily("availability_erp_sync_backlog_commands",
                                "Commands journaled that the ERP sync has not checkpointed",
                                value=backlog)
        yield GaugeMetricFamily("availability_erp_sync_lag_seconds",
                                "Age of the oldest change not yet acknowledged by the ERP",
                                value=sync.lag_s())
        yield GaugeMetricFamily("availability_erp_sync_breaker_state",
                                "ERP circuit breaker: 0 closed, 1 half-open, 2 open",
                                value=int(sync.breaker_state()))
        requests = CounterMetricFamily("availability_erp_sync_requests",
                                       "ERP adjustment calls by outcome", labels=["outcome"])
        for outcome in ("ok", "retry", "rate_limited", "rejected"):
            requests.add_metric([outcome], stats.requests[outcome])
        yield requests
        for name, value, text in (
                ("lines_posted", stats.lines_posted, "Adjustment lines the ERP took"),
                ("dead_letters", stats.dead_letters, "Batches parked in the ERP DLQ"),
                ("breaker_opened", sync.breaker.opened_total, "Times the breaker opened"),
                ("journal_gaps", stats.journal_gaps, "Journal ranges missing for the ERP")):
            yield CounterMetricFamily(f"availability_erp_sync_{name}", text, value=value)


def serve_metrics(sync: ErpSync, port: int, host: str = "127.0.0.1") -> int:
    """Serve /metrics on host:port (0 picks a free port); returns the port."""
    registry = CollectorRegistry()
    registry.register(ErpSyncCollector(sync))
    server, _ = start_http_server(port, addr=host, registry=registry)
    return server.server_port
