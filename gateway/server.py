"""The gateway's gRPC server: the service, health that follows the partitions, reflection, drain."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection
from inventory.v1 import availability_pb2 as pb
from inventory.v1 import availability_pb2_grpc as pb_grpc

from engine.config import GatewayConfig, TransportLimits
from engine.mappings import Mappings
from gateway.metrics import GatewayMetrics
from gateway.partitions import Partitions
from gateway.router import Router
from gateway.rpc_metrics import RpcMetricsInterceptor
from gateway.security import Security
from gateway.servicer import AvailabilityServicer
from gateway.watch_hub import WatchHub

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["AvailabilityService"].full_name
# How often health asks every partition whether it answers, and how long it waits.
HEALTH_PROBE_INTERVAL_S = 1.0
HEALTH_PROBE_TIMEOUT_S = 2.0
SERVER_OPTIONS = (
    # SO_REUSEPORT lets several gateway processes share one port (`serve --gateways N`).
    ("grpc.so_reuseport", 1),
    # gRPC's own queue of calls not yet handed to Python cancels calls beyond 1,000 by
    # default: the bounded lanes, not this queue, must be what refuses (RESOURCE_EXHAUSTED).
    ("grpc.server.max_pending_requests", 40_000),
    ("grpc.server.max_pending_requests_hard_limit", 40_000),
)
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
log = logging.getLogger(__name__)


def server_options(limits: TransportLimits) -> tuple[tuple[str, int], ...]:
    """SERVER_OPTIONS plus the transport limits, which gRPC enforces before any handler."""
    return (*SERVER_OPTIONS,
            ("grpc.max_receive_message_length", limits.receive_message_bytes_max),
            ("grpc.max_concurrent_streams", limits.concurrent_streams_per_connection_max),
            ("grpc.max_metadata_size", limits.metadata_bytes_max),
            ("grpc.server_handshake_timeout_ms", limits.handshake_timeout_ms))


def host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Gateway:
    """One gRPC server in front of every partition; several may share a port."""

    def __init__(self, partitions: Partitions, config: GatewayConfig | None = None,
                 mappings: Mappings | None = None,
                 metrics: GatewayMetrics | None = None,
                 security: Security | None = None) -> None:
        # metrics None: nothing counted, so a gateway without --metrics-port pays nothing.
        if metrics is not None:
            partitions = metrics.metered(partitions)
        # mappings None: no mapping files, so every source's movements pass through.
        self.router = Router(partitions, config, mappings=mappings)
        if metrics is not None:
            metrics.watch_lanes(self.router.lanes)
        self.health = health_aio.HealthServicer()
        # security None: no tokens and plaintext (protected mode keeps that on loopback).
        self.security = security or Security()
        limits = self.router.config.transport
        # The guard goes first: a call it refuses is never deserialized, counted or served.
        interceptors = [self.security.interceptor(limits, metrics)]
        if metrics is not None:
            interceptors.append(RpcMetricsInterceptor(metrics))
        self.server = grpc.aio.server(
            options=server_options(limits), interceptors=interceptors,
            maximum_concurrent_rpcs=self.router.config.concurrent_rpcs_max)
        config = self.router.config
        self.watch_hub = WatchHub(self.router.submit, partitions.count,
                                  config.watch_poll_interval_s, config.watch_history_updates)
        pb_grpc.add_AvailabilityServiceServicer_to_server(
            AvailabilityServicer(self.router, self.watch_hub), self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
             reflection.SERVICE_NAME), self.server)
        self._prober: asyncio.Task | None = None
        self.serving = asyncio.Event()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Bind (port 0 picks a free one), start, and return the bound port."""
        address = host_port(host, port)
        bound = (self.server.add_secure_port(address, self.security.tls.credentials())
                 if self.security.tls is not None else self.server.add_insecure_port(address))
        if bound == 0:
            raise OSError(f"cannot listen on {host_port(host, port)}")
        await self._set_health(False)
        await self.server.start()
        self._prober = asyncio.create_task(self._probe_forever())
        return bound

    async def stop(self, grace_s: float = 10.0) -> None:
        """Drain: health says NOT_SERVING, new calls are refused, calls in flight finish."""
        if self._prober is not None:
            self._prober.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._prober
        await self.health.enter_graceful_shutdown()
        await self.watch_hub.close()  # watches never end on their own: end them first
        await self.server.stop(grace_s)
        await self.router.drain()

    async def _probe_forever(self) -> None:
        partitions = self.router.partitions
        while True:
            ready = await partitions.ready(HEALTH_PROBE_TIMEOUT_S)
            if ready != self.serving.is_set():
                log.info("partitions %s", "all ready: SERVING" if ready else
                         "not all answering: NOT_SERVING")
            await self._set_health(ready)
            await asyncio.sleep(HEALTH_PROBE_INTERVAL_S)

    async def _set_health(self, ready: bool) -> None:
        status = SERVING if ready else NOT_SERVING
        for service in ("", SERVICE_NAME):
            await self.health.set(service, status)
        if ready:
            self.serving.set()
        else:
            self.serving.clear()
