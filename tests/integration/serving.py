"""Helpers for tests that talk to a serving gateway over gRPC (integration and e2e alike)."""

from __future__ import annotations

import asyncio
import inspect
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable

import grpc
import pytest
from inventory.v1 import availability_pb2 as pb
from inventory.v1 import availability_pb2_grpc as pb_grpc

from engine.routing import partition_of

LOC = "dc-1"
# Every RPC a test makes has this timeout, so a hung server fails the test instead of hanging it.
RPC_TIMEOUT_S = 60.0
_STATUS_NAMES = {code.value[0]: code.name for code in grpc.StatusCode}
HELD, PARTIALLY_HELD, REJECTED = (pb.RESERVATION_STATUS_HELD, pb.RESERVATION_STATUS_PARTIALLY_HELD,
                                  pb.RESERVATION_STATUS_REJECTED)


def use_session_loop(items: list[pytest.Item], directory) -> None:
    """Run the async tests under `directory` on the session's event loop, the loop their
    module- and session-scoped fixtures (channels, gateways) were created on."""
    marker = pytest.mark.asyncio(loop_scope="session")
    for item in items:
        if inspect.iscoroutinefunction(getattr(item, "function", None)) \
                and directory in item.path.parents:
            item.add_marker(marker, append=False)


async def wait_until(predicate: Callable, timeout_s: float, what: str = "",
                     interval_s: float = 0.05, ignoring: tuple[type[Exception], ...] = ()):
    """Poll `predicate` (plain or async) until it returns something truthy, and return that.

    Fails the test after `timeout_s`; exceptions of the `ignoring` types count as not yet.
    """
    deadline = time.monotonic() + timeout_s
    last_error: Exception | None = None
    while True:
        try:
            value = predicate()
            if inspect.isawaitable(value):
                value = await value
        except ignoring as error:
            value, last_error = None, error
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"not true within {timeout_s}s: {what or predicate}"
                                 + (f" (last error: {last_error!r})" if last_error else ""))
        await asyncio.sleep(interval_s)


def unique(prefix: str) -> str:
    """A fresh name (SKU, key, event id), so tests sharing one server stay independent."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def sku_on(partition: int, partitions: int, prefix: str) -> str:
    """A fresh SKU that `engine.routing.partition_of` puts on `partition`."""
    while True:
        sku = unique(prefix)
        if partition_of(sku, partitions) == partition:
            return sku


def stub_of(channel) -> pb_grpc.AvailabilityServiceStub:
    return pb_grpc.AvailabilityServiceStub(channel)


async def receive(stub, sku: str, quantity: int, location: str = LOC) -> None:
    """Put `quantity` units of `sku` on hand with an ApplyMovements RECEIPT."""
    movement = pb.Movement(event_id=unique("receipt"), source="wms",
                           type=pb.MOVEMENT_TYPE_RECEIPT, sku=sku, location=location,
                           quantity=quantity)
    response = await stub.ApplyMovements(pb.ApplyMovementsRequest(movements=[movement]),
                                         timeout=RPC_TIMEOUT_S)
    assert [r.code for r in response.results] == [pb.MOVEMENT_CODE_APPLIED], response


async def availability(stub, *skus: str, location: str = LOC) -> list[pb.ItemAvailability]:
    """Every quantity of each SKU at `location`, in the order asked."""
    request = pb.GetAvailabilityRequest(items=[pb.ItemRef(sku=sku, location=location)
                                               for sku in skus])
    return list((await stub.GetAvailability(request, timeout=RPC_TIMEOUT_S)).items)


async def quantities(stub, sku: str, location: str = LOC) -> pb.ItemAvailability:
    return (await availability(stub, sku, location=location))[0]


async def reserved_of(stub, *skus: str) -> list[int]:
    return [item.reserved for item in await availability(stub, *skus)]


def reserve_request(key: str, *lines: tuple[str, int], **fields) -> pb.ReserveRequest:
    """A ReserveRequest of (sku, quantity) lines at LOC."""
    return pb.ReserveRequest(idempotency_key=key, lines=[
        pb.ReserveLine(sku=sku, location=LOC, quantity=quantity) for sku, quantity in lines],
        **fields)


async def reserve(stub, key: str, *lines: tuple[str, int], **fields) -> pb.ReserveResponse:
    return await stub.Reserve(reserve_request(key, *lines, **fields), timeout=RPC_TIMEOUT_S)


async def commit(stub, reservation_id: str, key: str | None = None) -> pb.CommitResponse:
    request = pb.CommitRequest(reservation_id=reservation_id,
                               idempotency_key=key or unique("commit"))
    return await stub.Commit(request, timeout=RPC_TIMEOUT_S)


async def release(stub, reservation_id: str, key: str | None = None) -> pb.ReleaseResponse:
    request = pb.ReleaseRequest(reservation_id=reservation_id,
                                idempotency_key=key or unique("release"), reason="abandoned")
    return await stub.Release(request, timeout=RPC_TIMEOUT_S)


async def settle_all(calls: Iterable[Awaitable],
                     refusals: tuple[type[Exception], ...] = (grpc.aio.AioRpcError,)) -> list:
    """Run calls concurrently and wait for every one; a refused call gives its exception.

    Waiting for all (rather than failing on the first refusal) keeps a failed test from
    leaving calls in flight that would disturb the next test.
    """
    answers = await asyncio.gather(*calls, return_exceptions=True)
    for answer in answers:
        if isinstance(answer, BaseException) and not isinstance(answer, refusals):
            raise answer
    return answers


def outcome(answer) -> str:
    """A Reserve's answer by name: its reservation status, or the status code refusing it
    (a BatchResult's too)."""
    if isinstance(answer, pb.BatchResult):
        if answer.status_code:
            return _STATUS_NAMES[answer.status_code]
        answer = answer.reserve
    if isinstance(answer, grpc.aio.AioRpcError):
        return answer.code().name
    if isinstance(answer, Exception):  # a client library's error carrying a status code
        return getattr(answer.code, "name", str(answer.code))
    return pb.ReservationStatus.Name(answer.status).removeprefix("RESERVATION_STATUS_")


def outcomes(answers: Iterable) -> Counter:
    """How many answers had each outcome, e.g. Counter({"HELD": 1000, "REJECTED": 1000})."""
    return Counter(outcome(answer) for answer in answers)


async def refusal_of(call: Awaitable) -> grpc.aio.AioRpcError:
    """The error an RPC that must be refused fails with; fails the test if it succeeds."""
    try:
        answer = await call
    except grpc.aio.AioRpcError as error:
        return error
    raise AssertionError(f"the call was expected to be refused but answered {answer!r}")
