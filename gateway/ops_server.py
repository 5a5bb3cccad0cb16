"""The operators' HTTP port: /metrics, the dashboard page at / and its figures at /api/dashboard.

It runs on the gateway's (or ingest's) event loop with aiohttp, beside the gRPC server,
and refreshes every SAMPLE_INTERVAL_S: poll the partitions and Redis, then sample the
registry, so /metrics, the page and `availability status` all read the same figures.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.resources
import logging
import time

import redis.asyncio as aioredis
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from gateway import dashboard
from gateway.metrics import GatewayMetrics
from gateway.ops_poll import JournalReaders, OpsPoller

# Hot-SKU counts are halved this often, so the list shows what is hot now.
HOT_SKUS_DECAY_S = 60.0
# A poll taking longer is abandoned; the figures of the one before stay.
POLL_TIMEOUT_S = 5.0
log = logging.getLogger(__name__)


class OpsServer:
    """Serves one process's metrics and dashboard; `start` binds, `stop` closes."""

    def __init__(self, metrics: GatewayMetrics, poller: OpsPoller, role: str = "serve") -> None:
        self.metrics = metrics
        self.poller = poller
        self.role = role
        self.history = dashboard.History()
        self._page = importlib.resources.files("gateway").joinpath(
            "dashboard.html").read_bytes()
        self._runner: web.AppRunner | None = None
        self._refreshing: asyncio.Task | None = None
        self._decayed_at_s = time.monotonic()
        metrics.watch_polls(lambda: poller.view)

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Bind (port 0 picks a free one), start refreshing, and return the bound port."""
        app = web.Application()
        app.add_routes([web.get("/", self._page_handler),
                        web.get("/metrics", self._metrics_handler),
                        web.get("/api/dashboard", self._dashboard_handler)])
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        self._refreshing = asyncio.create_task(self._refresh_forever())
        return self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._refreshing is not None:
            self._refreshing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refreshing
        if self._runner is not None:
            await self._runner.cleanup()
        await self.poller.close()

    async def refresh(self) -> None:
        """Poll the partitions and Redis, then add a sample of the registry to the history."""
        try:
            # Bounded: a Redis that hangs rather than refuses must not stop the sampling.
            await asyncio.wait_for(self.poller.poll(), POLL_TIMEOUT_S)
        except Exception:  # a failed poll must not stop the page or /metrics
            log.exception("polling the partitions and Redis for metrics failed")
        self.history.add(dashboard.sample_of(self.metrics.registry, time.time()))
        if time.monotonic() - self._decayed_at_s >= HOT_SKUS_DECAY_S:
            self.metrics.hot_skus.decay()
            self._decayed_at_s = time.monotonic()

    def document(self) -> dict:
        """What /api/dashboard answers."""
        view = self.poller.view
        document = dashboard.build(self.history,
                                   self.metrics.hot_skus.most_common(dashboard.HOT_SKUS_SHOWN),
                                   errors=view.errors if view else (), role=self.role)
        # Channel divergence, as the publisher last wrote it (its own /metrics has the series).
        document["channels"] = view.channels if view else None
        if view and view.channels:
            document["not_measured"] = []
        return document

    async def _refresh_forever(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(dashboard.SAMPLE_INTERVAL_S)

    async def _page_handler(self, request: web.Request) -> web.Response:
        return web.Response(body=self._page, content_type="text/html", charset="utf-8")

    async def _metrics_handler(self, request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(self.metrics.registry),
                            headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _dashboard_handler(self, request: web.Request) -> web.Response:
        return web.json_response(self.document(), headers={"Cache-Control": "no-store"})


def ops_server(metrics: GatewayMetrics, partitions, role: str, redis_url: str | None,
               key_prefix: str) -> OpsServer:
    """An OpsServer reading `partitions` and, with a Redis, the events stream and journals."""
    events = aioredis.from_url(redis_url) if redis_url else None
    readers = JournalReaders(redis_url, key_prefix, partitions.count) if redis_url else None
    return OpsServer(metrics, OpsPoller(partitions, events, readers), role)
