"""Malformed requests are refused with INVALID_ARGUMENT naming the field, and change nothing."""

from __future__ import annotations

import grpc
import pytest
from inventory.v1 import availability_pb2 as pb

from tests.integration.serving import (
    LOC,
    RPC_TIMEOUT_S,
    availability,
    receive,
    refusal_of,
    reserve,
    unique,
)

SERVE_PARTITIONS = 2
STOCK = 100


def line(sku: str, quantity: int = 1, location: str = LOC) -> pb.ReserveLine:
    return pb.ReserveLine(sku=sku, location=location, quantity=quantity)


def receipt(sku: str, quantity: int = 5, **fields) -> pb.Movement:
    fields = {"event_id": unique("receipt"), "source": "wms", "type": pb.MOVEMENT_TYPE_RECEIPT,
              "sku": sku, "location": LOC, "quantity": quantity, **fields}
    return pb.Movement(**fields)


def reserving(key: str = "", lines=None, **fields):
    """A Reserve of one unit of the test's SKU unless told otherwise; `key` None means fresh."""
    def build(sku: str) -> tuple[str, pb.ReserveRequest]:
        return "Reserve", pb.ReserveRequest(
            idempotency_key=unique("key") if key is None else key,
            lines=[line(sku)] if lines is None else lines(sku), **fields)
    return build


def moving(movements):
    return lambda sku: ("ApplyMovements", pb.ApplyMovementsRequest(movements=movements(sku)))


# (case, request built from the test's stocked SKU, the field the refusal must name)
BAD_REQUESTS = [
    ("reserve-empty-key", reserving(key=""), "idempotency_key"),
    ("reserve-key-129-bytes", reserving(key="k" * 129), "idempotency_key"),
    ("reserve-key-129-bytes-utf8", reserving(key="k" + "é" * 64), "idempotency_key"),
    ("reserve-key-not-printable", reserving(key="key\x07bell"), "idempotency_key"),
    ("reserve-no-lines", reserving(key=None, lines=lambda sku: []), "lines"),
    ("reserve-501-lines", reserving(key=None, lines=lambda sku: [
        line(sku, location=f"loc-{i}") for i in range(501)]), "lines"),
    ("reserve-quantity-0", reserving(key=None, lines=lambda sku: [line(sku, 0)]),
     "lines[0].quantity"),
    ("reserve-quantity-negative", reserving(key=None, lines=lambda sku: [line(sku, -1)]),
     "lines[0].quantity"),
    ("reserve-quantity-over-max", reserving(
        key=None, lines=lambda sku: [line(sku, 1), line(sku, 1_000_000_001, "dc-2")]),
     "lines[1].quantity"),
    ("reserve-ttl-over-max", reserving(key=None, ttl_seconds=86_401), "ttl_seconds"),
    ("reserve-repeated-sku-location", reserving(
        key=None, lines=lambda sku: [line(sku, 1), line(sku, 2)]), "lines[1]"),
    ("reserve-empty-sku", reserving(key=None, lines=lambda sku: [line(sku), line("", 1)]),
     "lines[1].sku"),
    ("reserve-location-with-newline",
     reserving(key=None, lines=lambda sku: [line(sku, 1, "dc\n1")]), "lines[0].location"),
    ("reserve-channel-129-bytes", reserving(key=None, channel="c" * 129), "channel"),
    ("movements-none", moving(lambda sku: []), "movements"),
    ("movements-1001", moving(lambda sku: [receipt(sku, 1) for _ in range(1_001)]),
     "movements"),
    ("movement-unknown-type", moving(lambda sku: [receipt(sku), receipt(sku, type=99)]),
     "movements[1].type"),
    ("movement-unspecified-type", moving(lambda sku: [receipt(sku, type=0)]),
     "movements[0].type"),
    ("movement-empty-sku", moving(lambda sku: [receipt(sku), receipt("")]),
     "movements[1].sku"),
    ("movement-empty-event-id", moving(lambda sku: [receipt(sku, event_id="")]),
     "movements[0].event_id"),
    ("movement-quantity-0", moving(lambda sku: [receipt(sku, 0)]), "movements[0].quantity"),
    ("movement-quantity-over-max", moving(lambda sku: [receipt(sku, 1_000_000_001)]),
     "movements[0].quantity"),
    ("movement-transfer-without-destination", moving(lambda sku: [
        receipt(sku), receipt(sku, type=pb.MOVEMENT_TYPE_TRANSFER_OUT)]),
     "movements[1].destination_location"),
    ("commit-empty-reservation-id", lambda sku: ("Commit", pb.CommitRequest(
        idempotency_key=unique("commit"))), "reservation_id"),
    ("commit-empty-key", lambda sku: ("Commit", pb.CommitRequest(
        reservation_id="r0-0000000000000000000000000")), "idempotency_key"),
    ("release-key-129-bytes", lambda sku: ("Release", pb.ReleaseRequest(
        reservation_id="r0-0000000000000000000000000", idempotency_key="k" * 129)),
     "idempotency_key"),
    ("batch-1001-commands", lambda sku: ("Batch", pb.BatchRequest(commands=[
        pb.BatchCommand(reserve=reserving(key=None)(sku)[1]) for _ in range(1_001)])),
     "commands"),
    ("availability-1001-items", lambda sku: ("GetAvailability", pb.GetAvailabilityRequest(
        items=[pb.ItemRef(sku=sku, location=f"loc-{i}") for i in range(1_001)])), "items"),
    ("availability-empty-sku", lambda sku: ("GetAvailability", pb.GetAvailabilityRequest(
        items=[pb.ItemRef(sku=sku, location=LOC), pb.ItemRef(sku="", location=LOC)])),
     "items[1].sku"),
]


@pytest.mark.parametrize(("build", "field"), [case[1:] for case in BAD_REQUESTS],
                         ids=[case[0] for case in BAD_REQUESTS])
async def test_request_malformed_is_invalid_argument_naming_the_field(stub, build, field):
    """A request breaking one of DESIGN section 5's limits answers INVALID_ARGUMENT whose
    details name the field, and changes no quantity."""
    sku = unique("invalid")
    await receive(stub, sku, STOCK)
    before = await availability(stub, sku)
    method, request = build(sku)
    refusal = await refusal_of(getattr(stub, method)(request, timeout=RPC_TIMEOUT_S))
    assert refusal.code() is grpc.StatusCode.INVALID_ARGUMENT, refusal
    assert refusal.details().startswith(f"{field}: "), refusal.details()
    assert await availability(stub, sku) == before


async def test_reserve_corrected_after_a_refusal_is_judged_afresh(stub):
    """A key first sent with a malformed request holds stock once the request is corrected."""
    sku, key = unique("corrected"), unique("key")
    await receive(stub, sku, STOCK)
    refusal = await refusal_of(reserve(stub, key, (sku, 0)))
    assert refusal.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert (await reserve(stub, key, (sku, 2))).status == pb.RESERVATION_STATUS_HELD
    assert (await availability(stub, sku))[0].reserved == 2
