"""Health and reflection for operators and tools, and a drain on SIGTERM that loses no call."""

from __future__ import annotations

import asyncio
import signal

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.integration.serving import (
    RPC_TIMEOUT_S,
    outcomes,
    quantities,
    receive,
    reserve,
    reserved_of,
    settle_all,
    sku_on,
    stub_of,
    unique,
    wait_until,
)

SERVE_PARTITIONS = 2
CARTS = 40
BURST = 1_000
# Carts wait this long between their phases, so they are certainly in flight at SIGTERM.
CONFIRM_DELAY_S = 1.5
EXIT_WITHIN_S = 30.0


async def test_health_check_is_serving_for_the_server_and_the_service(serve):
    """grpc.health.v1 Check answers SERVING for "" and for inventory.v1.AvailabilityService."""
    async with grpc.aio.insecure_channel(serve.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "inventory.v1.AvailabilityService"):
            answer = await health.Check(health_pb2.HealthCheckRequest(service=service),
                                        timeout=RPC_TIMEOUT_S)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING, service


async def test_reflection_lists_the_availability_service(serve):
    """Server reflection lists inventory.v1.AvailabilityService, so grpcurl needs no proto."""
    async with grpc.aio.insecure_channel(serve.target) as channel:
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        call = reflection.ServerReflectionInfo(iter([request]), timeout=RPC_TIMEOUT_S)
        answers = [answer async for answer in call]
    services = {service.name for service in answers[0].list_services_response.service}
    assert {"inventory.v1.AvailabilityService", "grpc.health.v1.Health"} <= services


async def test_serve_sigterm_drains_calls_in_flight_and_exits_zero(spawn):
    """On SIGTERM, serve finishes the calls it has already taken (every cart caught between
    its two phases is answered HELD) and exits 0."""
    served = spawn(2, env={"AVAILABILITY_FAULT_CART_CONFIRM_DELAY_S": str(CONFIRM_DELAY_S)})
    left, right = sku_on(0, 2, "drain"), sku_on(1, 2, "drain")
    async with grpc.aio.insecure_channel(served.target) as channel:
        stub = stub_of(channel)
        for sku in (left, right):
            await receive(stub, sku, 1_000)
        carts = [asyncio.create_task(reserve(stub, unique("cart"), (left, 1), (right, 1)))
                 for _ in range(CARTS)]
        # Every cart's phase 1 has been applied: all of them are inside the server now.
        await wait_until(lambda: _all_carts_in_flight(stub, left, right), 60,
                         f"{CARTS} carts hold their tentative parts")
        assert not any(cart.done() for cart in carts)
        served.process.send_signal(signal.SIGTERM)
        answers = await asyncio.wait_for(settle_all(carts), EXIT_WITHIN_S)
    assert outcomes(answers) == {"HELD": CARTS}
    assert all(answer.reservation_id for answer in answers)
    assert await asyncio.to_thread(served.process.wait, EXIT_WITHIN_S) == 0


async def test_gateway_sigterm_during_a_burst_loses_no_acknowledged_reserve(serve, stub, spawn):
    """A gateway sent SIGTERM mid-burst answers every call it took; the partitions then hold
    exactly the units it answered HELD (none lost, none held unanswered), and it exits 0."""
    gateway = spawn(serve.partitions, command="gateway", namespace=serve.namespace)
    sku = unique("burst")
    await receive(stub, sku, BURST)
    async with grpc.aio.insecure_channel(gateway.target) as channel:
        burst = [asyncio.create_task(reserve(stub_of(channel), unique("burst"), (sku, 1)))
                 for _ in range(BURST)]
        await wait_until(lambda: sum(call.done() for call in burst) >= BURST // 10, 60,
                         "the burst is being answered")
        gateway.process.send_signal(signal.SIGTERM)
        answers = await asyncio.wait_for(settle_all(burst), EXIT_WITHIN_S)
    counts = outcomes(answers)
    # A call still queued inside gRPC when the server stops is refused without ever reaching
    # the gateway; gRPC answers it CANCELLED (see the report) or UNAVAILABLE.
    assert set(counts) <= {"HELD", "UNAVAILABLE", "CANCELLED"}, counts
    assert counts["HELD"] > 0
    assert (await quantities(stub, sku)).reserved == counts["HELD"]
    assert await asyncio.to_thread(gateway.process.wait, EXIT_WITHIN_S) == 0


async def _all_carts_in_flight(stub, left: str, right: str) -> bool:
    return await reserved_of(stub, left, right) == [CARTS, CARTS]
