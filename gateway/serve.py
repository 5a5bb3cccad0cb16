"""`availability serve` and `availability gateway`: Ray, the partition actors, gateway processes."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field

import redis.asyncio as aioredis

from engine.config import DurabilityConfig, GatewayConfig, PartitionConfig
from engine.embedded_redis import DATA_DIR, redis_for
from engine.mappings import Mappings
from engine.partition_actor import NAMESPACE, start_partitions
from engine.partition_map import DEFAULT_VIRTUAL_PARTITIONS
from engine.process import tune_garbage_collector
from gateway.ingest import IngestWorker
from gateway.map_source import followed_partitions
from gateway.metrics import GatewayMetrics
from gateway.ops_server import OpsServer, ops_server
from gateway.partitions import RayPartitions
from gateway.router import Router
from gateway.security import Security, SecurityConfigError, SecurityOptions, secured
from gateway.server import Gateway, host_port

# The line that says a gateway is serving; tests and extra gateways wait for it.
LISTENING = re.compile(r"serving .* on (?P<host>\S+):(?P<port>\d+)")
READY_TIMEOUT_S = 120.0
DRAIN_GRACE_S = 10.0
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 50051
    partitions: int = 4  # actors
    virtual_partitions: int = DEFAULT_VIRTUAL_PARTITIONS
    gateways: int = 1
    ray_address: str | None = None
    ray_namespace: str = NAMESPACE
    config: GatewayConfig = field(default_factory=GatewayConfig)
    # Without a redis_url, serve starts the embedded Redis in data_dir.
    durability: DurabilityConfig = field(default_factory=DurabilityConfig)
    data_dir: str = DATA_DIR
    # Source mapping files (`<source>.toml`), for ApplyMovements and ingest alike.
    mappings_dir: str | None = None
    # The channels file the rules in config.channels came from, for extra gateways.
    channels_file: str | None = None
    # Ingest workers on the events stream in serve's own gateway process (0: none).
    ingest_workers: int = 1
    # With an ERP, serve also runs `availability erp-sync` against it, as a child process.
    erp_url: str | None = None
    # Prometheus /metrics and the ops dashboard on this port (0: any free one; None: off).
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    # Tokens, TLS and protected mode (gateway/security.py); limits are in config.transport.
    security: SecurityOptions = field(default_factory=SecurityOptions)


def serve(options: ServeOptions) -> None:
    """Start (or join) Ray, start the partitions, serve until SIGTERM or SIGINT, then drain."""
    import ray

    security = _secured(options)
    refuse_taken_port(options.host, options.port)
    with redis_for(options.durability, options.data_dir) as durability:
        ray.init(address=options.ray_address, namespace=options.ray_namespace,
                 include_dashboard=False, configure_logging=False)
        try:
            handles = start_partitions(options.partitions, options.ray_namespace,
                                       durability=durability,
                                       config=PartitionConfig(channels=options.config.channels),
                                       virtual_partitions=options.virtual_partitions)
            partitions = _followed(options, durability, handles)
            options = dataclasses.replace(options, durability=durability)  # for gateways
            with _erp_sync_child(options, durability.redis_url):
                asyncio.run(_run_gateway(options, partitions,
                                         extra_gateways=options.gateways - 1,
                                         events_url=durability.redis_url, security=security))
        finally:
            ray.shutdown()


@contextlib.contextmanager
def _erp_sync_child(options: ServeOptions, redis_url: str | None):
    """`availability erp-sync` beside serve when it has an ERP: a process of its own, so
    posting to a slow ERP never competes with the gateway's event loop."""
    if not options.erp_url or not redis_url:
        yield
        return
    child = subprocess.Popen([sys.executable, "-m", "engine.cli", "erp-sync", "--erp-url",
                              options.erp_url, "--redis-url", redis_url, "--ray-namespace",
                              options.ray_namespace], env=_child_env())
    try:
        yield
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(DRAIN_GRACE_S + 5)
        except subprocess.TimeoutExpired:
            log.warning("erp-sync %s did not stop in time; killing it", child.pid)
            child.kill()


def serve_ingest(options: ServeOptions, redis_url: str) -> None:
    """`availability ingest`: workers on the events stream, in front of running partitions."""
    import ray

    ray.init(address=options.ray_address, namespace=options.ray_namespace,
             log_to_driver=False, configure_logging=False)
    try:
        metrics = GatewayMetrics() if options.metrics_port is not None else None
        partitions = _followed(options, dataclasses.replace(options.durability,
                                                            redis_url=redis_url))
        router = Router(metrics.metered(partitions) if metrics else partitions, options.config,
                        _mappings(options))
        if metrics is not None:
            metrics.watch_lanes(router.lanes)
        tune_garbage_collector()
        asyncio.run(_until_signalled(
            lambda stop: _observed_ingest(router, options, redis_url, stop, metrics)))
    finally:
        ray.shutdown()


def refuse_taken_port(host: str, port: int) -> None:
    """Fail early if something listens on host:port already.

    Gateways bind with SO_REUSEPORT so several processes share one port; that would also
    let a second `serve` share the port of an unrelated one and take half its calls.
    """
    if port == 0:
        return
    family, kind, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    with socket.socket(family, kind) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            raise SystemExit(f"availability: cannot serve on {host_port(host, port)}: "
                             f"{error.strerror}") from None


def serve_gateway(options: ServeOptions) -> None:
    """One more gateway process in front of partitions that `serve` started."""
    import ray

    security = _secured(options)
    ray.init(address=options.ray_address, namespace=options.ray_namespace,
             log_to_driver=False, configure_logging=False)
    try:
        asyncio.run(_run_gateway(options, _followed(options, options.durability),
                                 extra_gateways=None, security=security))
    finally:
        ray.shutdown()


def _followed(options: ServeOptions, durability: DurabilityConfig,
              handles: list | None = None) -> RayPartitions:
    """The partition actors, routed by the map in Redis and following it (with the
    journal off there is no map: the default spread over --partitions actors)."""
    return followed_partitions(durability.redis_url if durability.journal else None,
                               options.ray_namespace, options.ray_namespace,
                               options.partitions, options.virtual_partitions, handles)


async def _run_gateway(options: ServeOptions, partitions: RayPartitions,
                       extra_gateways: int | None, events_url: str | None = None,
                       security: Security | None = None) -> None:
    metrics = GatewayMetrics() if options.metrics_port is not None else None
    gateway = Gateway(partitions, options.config, _mappings(options), metrics=metrics,
                      security=security)
    tune_garbage_collector()
    port = await gateway.start(options.host, options.port)
    # Before the LISTENING line, so whoever waits for that line has seen this one too.
    role = "serve" if extra_gateways is not None else "gateway"
    ops = (await _start_ops(options, metrics, gateway.router.partitions, role, events_url)
           if metrics is not None else None)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    children: list[subprocess.Popen] = []
    ingesting = None
    try:
        await asyncio.wait_for(gateway.serving.wait(), READY_TIMEOUT_S)
        if extra_gateways:
            import ray

            address = ray.get_runtime_context().gcs_address
            children = [_spawn_gateway(options, address, port) for _ in range(extra_gateways)]
            for child in children:
                await asyncio.to_thread(_wait_listening, child)
        gateways = 1 + len(children) if extra_gateways is not None else 1
        print(f"availability: serving inventory.v1.AvailabilityService "
              f"({options.partitions} partitions, {gateways} gateway"
              f"{'s' if gateways > 1 else ''}) on {host_port(options.host, port)}", flush=True)
        if extra_gateways is not None and events_url:
            children += _publisher_child(options, port, events_url)  # stopped like gateways
        if events_url and options.ingest_workers:
            ingesting = asyncio.create_task(_ingest(gateway.router, options, events_url, stop,
                                                    metrics))
        await stop.wait()
        log.info("draining: no new calls, finishing those in flight")
    finally:
        stop.set()
        if ingesting is not None:
            await ingesting  # workers finish the batch in hand, then stop reading
        for child in children:
            child.send_signal(signal.SIGTERM)
        await gateway.stop(DRAIN_GRACE_S)
        if ops:
            await ops.stop()
        for child in children:
            try:
                await asyncio.to_thread(child.wait, DRAIN_GRACE_S + 5)
            except subprocess.TimeoutExpired:
                log.warning("gateway process %s did not drain in time; killing it", child.pid)
                child.kill()


def _publisher_child(options: ServeOptions, port: int, redis_url: str) -> list[subprocess.Popen]:
    """`availability publish` beside serve when a channel publishes to a webhook: a process
    of its own, so a slow webhook never competes with the gateway's event loop."""
    if not options.channels_file or not any(
            channel.publish.webhook for channel in options.config.channels.channels):
        return []
    host = "127.0.0.1" if options.host in ("0.0.0.0", "") else (
        "::1" if options.host == "::" else options.host)
    return [subprocess.Popen([sys.executable, "-m", "engine.cli", "publish", "--target",
                              host_port(host, port), "--channels", options.channels_file,
                              "--redis-url", redis_url, "--ray-namespace",
                              options.ray_namespace], env=_child_env())]


def _spawn_gateway(options: ServeOptions, ray_address: str, port: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "engine.cli", "gateway", "--ray-address", ray_address,
               "--ray-namespace", options.ray_namespace, "--partitions",
               str(options.partitions), "--host", options.host, "--port", str(port),
               "--virtual-partitions", str(options.virtual_partitions),
               *(["--redis-url", options.durability.redis_url]
                 if options.durability.redis_url and options.durability.journal else []),
               "--queue-commands-max", str(options.config.lanes.queue_commands_max),
               "--cart-tentative-ttl-s", str(options.config.cart_tentative_ttl_s),
               *(["--mappings", options.mappings_dir] if options.mappings_dir else []),
               *(["--channels", options.channels_file] if options.channels_file else []),
               *options.security.flags(), *_transport_flags(options)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=_child_env())


def _secured(options: ServeOptions) -> Security:
    """The gateway's tokens and TLS, or exit naming the option when it must not start."""
    try:
        return secured(options.security, options.host)
    except SecurityConfigError as error:
        raise SystemExit(f"availability: {error}") from None


def _transport_flags(options: ServeOptions) -> list[str]:
    limits = options.config.transport
    return ["--max-message-bytes", str(limits.receive_message_bytes_max),
            "--max-concurrent-streams", str(limits.concurrent_streams_per_connection_max),
            "--token-calls-per-s", repr(limits.token_calls_per_s),
            "--token-burst-calls", str(limits.token_burst_calls)]


def _child_env() -> dict[str, str]:
    """This process's environment for a child, less the metrics port: that port is this
    process's, and a child reading it too would fail to bind it."""
    return {name: value for name, value in os.environ.items()
            if name != "AVAILABILITY_METRICS_PORT"}


def _wait_listening(child: subprocess.Popen) -> None:
    """Block until a child gateway prints its serving line, echoing what it prints."""
    for line in child.stdout:
        if LISTENING.search(line):
            # Keep reading what it prints, so a full pipe never blocks it.
            threading.Thread(target=sys.stdout.writelines, args=(child.stdout,),
                             daemon=True).start()
            return
        sys.stdout.write(line)
    raise RuntimeError(f"gateway process {child.pid} exited with {child.wait()} before serving")


def _mappings(options: ServeOptions) -> Mappings | None:
    return Mappings.load(options.mappings_dir) if options.mappings_dir else None


async def _ingest(router: Router, options: ServeOptions, redis_url: str,
                  stop: asyncio.Event, metrics: GatewayMetrics | None = None) -> None:
    """Run `options.ingest_workers` workers until `stop`; one that fails is restarted."""
    client = aioredis.from_url(redis_url)
    mappings = _mappings(options)
    workers = [IngestWorker(client, router, mappings)
               for _ in range(max(options.ingest_workers, 1))]
    if metrics is not None:
        metrics.watch_ingest(workers)
    try:
        await asyncio.gather(*(_keep_working(worker, stop) for worker in workers))
    finally:
        await client.aclose()


async def _observed_ingest(router: Router, options: ServeOptions, redis_url: str,
                           stop: asyncio.Event, metrics: GatewayMetrics | None) -> None:
    """`availability ingest`'s workers, with its metrics and dashboard when asked for."""
    ops = (await _start_ops(options, metrics, router.partitions, "ingest", redis_url)
           if metrics is not None else None)
    try:
        await _ingest(router, options, redis_url, stop, metrics)
    finally:
        if ops:
            await ops.stop()


async def _start_ops(options: ServeOptions, metrics: GatewayMetrics, partitions, role: str,
                     redis_url: str | None) -> OpsServer:
    """Serve /metrics and the dashboard on options.metrics_port, and say where."""
    ops = ops_server(metrics, partitions, role, redis_url, options.ray_namespace)
    port = await ops.start(options.metrics_host, options.metrics_port)
    print(f"availability: metrics and dashboard on "
          f"http://{host_port(options.metrics_host, port)}/", flush=True)
    return ops


async def _keep_working(worker: IngestWorker, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await worker.run(stop)
        except Exception:  # Redis away, most often: the journal refuses meanwhile too
            log.exception("ingest worker %s failed; restarting it in 1 s", worker.name)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)


async def _until_signalled(work) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    print("availability: ingesting", flush=True)
    await work(stop)
