"""A real gateway over in-process partitions, on its own event loop thread, for sync tests.

No Ray: the partitions are PartitionHosts in this process (the real state machine), so
security and fuzz tests run the whole gRPC stack (guard, servicer, router, validation)
in milliseconds and may call it from hypothesis's synchronous tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import grpc
from inventory.v1 import availability_pb2 as pb

from engine.config import GatewayConfig
from engine.partition_host import PartitionHost
from gateway.partitions import LocalPartitions
from gateway.security import Security
from gateway.server import Gateway
from gateway.tokens import Tokens, identity_for, new_token

START_TIMEOUT_S = 30.0
RPC_TIMEOUT_S = 10.0
SERVICE = pb.DESCRIPTOR.services_by_name["AvailabilityService"]
# One token of each role (channel "default", source "pos"), by role.
ROLE_SCOPES = {"checkout": {}, "channel": {"channel": "default"}, "source": {"source": "pos"},
               "admin": {}}


@dataclass
class RunningGateway:
    """Where a threaded gateway listens, its partitions, and the tokens it knows by role."""

    target: str
    partitions: LocalPartitions
    tokens: dict[str, str]
    gateway: Gateway


def role_tokens() -> tuple[dict[str, str], Tokens]:
    """A fresh token per role, and the Tokens a gateway checks them against."""
    tokens = {role: new_token() for role in ROLE_SCOPES}
    return tokens, Tokens([identity_for(token, f"{role}-token", role, **ROLE_SCOPES[role])
                           for role, token in tokens.items()])


@contextlib.contextmanager
def threaded_gateway(security: Security | None = None, config: GatewayConfig | None = None,
                     partitions: int = 2, tokens: dict[str, str] | None = None,
                     host: str = "127.0.0.1") -> Iterator[RunningGateway]:
    """Serve a gateway on `host`:0 from a thread of its own until the block ends."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="gateway-loop", daemon=True)
    thread.start()
    local = LocalPartitions([PartitionHost(p) for p in range(partitions)])

    async def start() -> tuple[Gateway, int]:
        gateway = Gateway(local, config or GatewayConfig(), security=security)
        port = await gateway.start(host, 0)
        await asyncio.wait_for(gateway.serving.wait(), START_TIMEOUT_S)
        return gateway, port

    gateway, port = asyncio.run_coroutine_threadsafe(start(), loop).result(START_TIMEOUT_S)
    try:
        yield RunningGateway(f"{host}:{port}", local, tokens or {}, gateway)
    finally:
        asyncio.run_coroutine_threadsafe(gateway.stop(0.5), loop).result(START_TIMEOUT_S)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(START_TIMEOUT_S)
        loop.close()


@contextlib.contextmanager
def role_secured_gateway() -> Iterator[tuple[RunningGateway, grpc.Channel]]:
    """A gateway that knows one token per role (ROLE_SCOPES), and a plaintext channel to it."""
    tokens, known = role_tokens()
    with threaded_gateway(Security(tokens=known), tokens=tokens) as running, \
            grpc.insecure_channel(running.target) as channel:
        yield running, channel


def bearer(token: str | None) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),) if token else ()


def raw_method(channel: grpc.Channel, name: str, streaming: bool = False):
    """A method of AvailabilityService (or any path) taking and giving bytes."""
    path = name if name.startswith("/") else f"/inventory.v1.AvailabilityService/{name}"
    make = channel.unary_stream if streaming else channel.unary_unary
    return make(path, request_serializer=None, response_deserializer=None)


def movement(event_id: str, sku: str, quantity: int = 10, source: str = "pos",
             location: str = "dc-1", kind: int = pb.MOVEMENT_TYPE_RECEIPT) -> pb.Movement:
    return pb.Movement(event_id=event_id, source=source, type=kind, sku=sku,
                       location=location, quantity=quantity)
