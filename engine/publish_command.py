"""`availability publish`: push each webhook channel of a channels file its figures, from
WatchAvailability, with its Prometheus metrics and its status in Redis."""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import secrets
import signal
import sys
import time

import aiohttp
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from engine.channel_feed import follow
from engine.channels import ChannelError, ChannelRules
from engine.config import PublisherConfig
from engine.divergence import LEVELS
from engine.embedded_redis import DATA_DIR
from engine.publish_store import PublishStore
from engine.publisher import ChannelPublisher, WebhookUnreachable
from engine.security_options import add_client_options

log = logging.getLogger(__name__)
LISTENING_TEXT = "availability publish: publishing"
# A FenceChannel call taking longer fails the flush (nothing is posted); it is retried.
FENCE_TIMEOUT_S = 10.0


def add_parser(commands, env) -> None:
    parser = commands.add_parser(
        "publish", help="push webhook channels their figures: watch, coalesce per "
                        "SKU-location, velocity buffers, POST at each channel's cadence")
    parser.add_argument("--target", default=env("TARGET", "127.0.0.1:50051"),
                        help="the gateway to watch (default 127.0.0.1:50051)")
    parser.add_argument("--channels", default=env("CHANNELS", None),
                        required=env("CHANNELS", None) is None,
                        help="the channels file of the serve; its publish = \"webhook\" "
                             "channels are published")
    parser.add_argument("--redis-url", default=env("REDIS_URL", None),
                        help="where acknowledged quantities and status go (default: serve's "
                             "embedded Redis in --data-dir)")
    parser.add_argument("--data-dir", default=env("DATA_DIR", DATA_DIR))
    parser.add_argument("--ray-namespace", default=env("RAY_NAMESPACE", "availability"),
                        help="the engine's namespace, which prefixes its Redis keys")
    parser.add_argument("--metrics-port", type=int, default=env("METRICS_PORT", None),
                        help="serve Prometheus /metrics on this port (0: any free one)")
    parser.add_argument("--metrics-host", default=env("METRICS_HOST", "127.0.0.1"))
    add_client_options(parser, env)


def run(parser: argparse.ArgumentParser, args: argparse.Namespace, redis_url: str,
        connection: dict) -> int:
    try:
        rules = ChannelRules.load(args.channels)
    except ChannelError as error:
        parser.error(f"--channels: {error}")
    if not any(channel.publish.webhook for channel in rules.channels):
        print(f"availability publish: {args.channels} has no publish = \"webhook\" channel",
              file=sys.stderr)
        return 2
    config = PublisherConfig(key_prefix=args.ray_namespace)
    asyncio.run(publish(rules, args.target, redis_url, config, connection,
                        args.metrics_port, args.metrics_host))
    return 0


async def publish(rules: ChannelRules, target: str, redis_url: str, config: PublisherConfig,
                  connection: dict | None = None, metrics_port: int | None = None,
                  metrics_host: str = "127.0.0.1") -> None:
    """Publish every webhook channel until SIGTERM or SIGINT."""
    import redis.asyncio as aioredis

    from gateway.client import AvailabilityClient

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    redis_client = aioredis.from_url(redis_url)
    store = PublishStore(redis_client, config.key_prefix)
    run_id = secrets.token_hex(6)
    async with (AvailabilityClient(target, **(connection or {})) as client,
                aiohttp.ClientSession() as session):
        publishers = [ChannelPublisher(
            channel, lambda *a, s=session: post_json(s, *a), store, clock_s=time.monotonic,
            wall_ms=lambda: time.time_ns() // 1_000_000, sleep=asyncio.sleep,
            jitter=random.random, run_id=f"{run_id}-{channel.name}", config=config,
            acknowledged=await store.acknowledged(channel.name, config.keys_max),
            fences=ClientFences(client))
            for channel in rules.channels if channel.publish.webhook]
        latest = Board()
        tasks = [task for publisher in publishers for task in (
            asyncio.create_task(publisher.run()),
            asyncio.create_task(follow(_watch_of(client, publisher.channel.name), publisher,
                                       asyncio.sleep, config.reconnect_base_s,
                                       config.reconnect_cap_s)))]
        tasks.append(asyncio.create_task(_keep_status(publishers, store, config, latest)))
        where = ""
        if metrics_port is not None:
            port = serve_metrics(latest, metrics_port, metrics_host)
            where = f"; metrics on {metrics_host}:{port}"
        print(f"{LISTENING_TEXT} {', '.join(p.channel.name for p in publishers)} "
              f"from {target}{where}", flush=True)
        try:
            await stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await redis_client.aclose()


class ClientFences:
    """A ring-fenced channel's fences, raised and settled through the FenceChannel RPC."""

    def __init__(self, client) -> None:
        self._client = client

    async def shown(self, channel: str, items: list[tuple[str, str, int]],
                    publish_seq: int) -> None:
        from inventory.v1 import availability_pb2 as pb

        await self._client.fence_channel(channel, pb.FENCE_ACTION_SHOWN, publish_seq, items,
                                         timeout=FENCE_TIMEOUT_S)

    async def settle(self, channel: str, publish_seq: int) -> None:
        from inventory.v1 import availability_pb2 as pb

        await self._client.fence_channel(channel, pb.FENCE_ACTION_SETTLE, publish_seq,
                                         timeout=FENCE_TIMEOUT_S)


def _watch_of(client, channel: str):
    return lambda stream_id, sequence: client.watch(
        channel=channel, resume_stream_id=stream_id, resume_after_sequence=sequence)


async def post_json(session: aiohttp.ClientSession, url: str, body: bytes,
                    headers: dict[str, str], timeout_s: float) -> tuple[int, float | None]:
    """One POST: (status, Retry-After seconds); WebhookUnreachable when nothing answered."""
    try:
        async with session.post(url, data=body, headers=headers,
                                timeout=aiohttp.ClientTimeout(total=timeout_s)) as response:
            await response.read()
            return response.status, _seconds(response.headers.get("Retry-After"))
    except (aiohttp.ClientError, TimeoutError) as error:
        raise WebhookUnreachable(f"{url}: {error!r}") from error


def _seconds(text: str | None) -> float | None:
    try:
        return max(0.0, float(text)) if text else None
    except ValueError:  # an HTTP date: the backoff decides
        return None


async def _keep_status(publishers: list[ChannelPublisher], store: PublishStore,
                       config: PublisherConfig, latest: Board) -> None:
    """Every status_interval_s: each channel's figures to Redis, and to the metrics."""
    while True:
        statuses = {p.channel.name: {**p.status(), "at_unix_ms": time.time_ns() // 1_000_000}
                    for p in publishers}
        latest.statuses = statuses  # one reference swapped: the metrics thread sees whole ones
        try:
            await store.write_status(statuses, config.status_ttl_s)
        except Exception:  # Redis away: the metrics still show the figures
            log.warning("could not write the channels' status", exc_info=True)
        await asyncio.sleep(config.status_interval_s)


class Board:
    """The latest status of every channel, replaced whole each second."""

    def __init__(self) -> None:
        self.statuses: dict[str, dict] = {}


class ChannelCollector:
    """The publisher's figures at scrape time, from the status taken each second (read in
    the metrics thread, so never from the publishers' live tables)."""

    def __init__(self, latest: Board) -> None:
        self._latest = latest

    def collect(self):
        statuses = self._latest.statuses
        gauges = {name: GaugeMetricFamily(f"availability_channel_{name}", text,
                                          labels=["channel", "level"])
                  for name, text in (
                      ("divergence_units", "Sum of |published - channel figure|"),
                      ("oversell_exposure_items", "Items shown above the channel figure"),
                      ("units_at_risk", "Units shown above the channel figure"))}
        lag = GaugeMetricFamily("availability_channel_publish_lag_seconds",
                                "EWMA of change to webhook 2xx", labels=["channel"])
        buffered = GaugeMetricFamily("availability_channel_velocity_buffer_units",
                                     "Units held back by velocity buffers", labels=["channel"])
        pending = GaugeMetricFamily("availability_channel_pending_items",
                                    "Changes waiting to be posted", labels=["channel"])
        requests = CounterMetricFamily("availability_channel_webhook_requests",
                                       "Webhook POSTs by outcome", labels=["channel", "outcome"])
        acknowledged = CounterMetricFamily("availability_channel_items_acknowledged",
                                           "Items the webhook acknowledged", labels=["channel"])
        for channel, status in statuses.items():
            for level in LEVELS:
                for name, key in (("divergence_units", "diverged_units"),
                                  ("oversell_exposure_items", "exposed_items"),
                                  ("units_at_risk", "units_at_risk")):
                    gauges[name].add_metric([channel, level], status[level][key])
            if status["publish_lag_s"] is not None:
                lag.add_metric([channel], status["publish_lag_s"])
            buffered.add_metric([channel], status["velocity_buffer_units"])
            pending.add_metric([channel], status["pending_items"])
            for outcome in ("ok", "retry", "rate_limited", "unreachable", "rejected"):
                requests.add_metric([channel, outcome], status["requests"].get(outcome, 0))
            acknowledged.add_metric([channel], status["items_acknowledged"])
        yield from (*gauges.values(), lag, buffered, pending, requests, acknowledged)


def serve_metrics(latest: Board, port: int, host: str = "127.0.0.1") -> int:
    """Serve /metrics on host:port (0 picks a free port); returns the port."""
    registry = CollectorRegistry()
    registry.register(ChannelCollector(latest))
    server, _ = start_http_server(port, addr=host, registry=registry)
    return server.server_port

