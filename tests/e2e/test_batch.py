"""The Batch RPC: many independent requests, each answered as its own RPC would be."""

from __future__ import annotations

import grpc
from inventory.v1 import availability_pb2 as pb

from tests.integration.serving import (
    HELD,
    RPC_TIMEOUT_S,
    availability,
    receive,
    refusal_of,
    reserve,
    reserve_request,
    unique,
)

SERVE_PARTITIONS = 2


def codes(response: pb.BatchResponse) -> list[str]:
    return [grpc.StatusCode.OK.name if result.status_code == 0 else
            next(c.name for c in grpc.StatusCode if c.value[0] == result.status_code)
            for result in response.results]


async def test_batch_answers_each_command_on_its_own_in_order(stub):
    """Good and bad commands share a batch; each gets its own status and nothing else leaks."""
    sku = unique("batch")
    await receive(stub, sku, 5)
    first = await reserve(stub, unique("first"), (sku, 2))
    commands = [
        pb.BatchCommand(reserve=reserve_request(unique("good"), (sku, 1))),
        pb.BatchCommand(reserve=reserve_request(unique("bad"), (sku, 0))),
        pb.BatchCommand(commit=pb.CommitRequest(reservation_id="r0-nonsense",
                                                idempotency_key=unique("commit"))),
        pb.BatchCommand(),
        pb.BatchCommand(commit=pb.CommitRequest(reservation_id=first.reservation_id,
                                                idempotency_key=unique("commit"))),
    ]
    response = await stub.Batch(pb.BatchRequest(commands=commands), timeout=RPC_TIMEOUT_S)
    assert codes(response) == ["OK", "INVALID_ARGUMENT", "NOT_FOUND", "INVALID_ARGUMENT", "OK"]
    assert response.results[0].reserve.status == HELD
    assert "lines[0].quantity" in response.results[1].status_message
    assert response.results[4].commit.state == pb.RESERVATION_STATE_COMMITTED
    (item,) = await availability(stub, sku)
    assert (item.reserved, item.committed, item.available_to_sell) == (1, 2, 2)


async def test_batch_of_too_many_commands_is_refused_whole_and_changes_nothing(stub):
    """More than 1,000 commands: INVALID_ARGUMENT for the call, and not one is applied."""
    sku = unique("batch-big")
    await receive(stub, sku, 2_000)
    before = await availability(stub, sku)
    commands = [pb.BatchCommand(reserve=reserve_request(unique("k"), (sku, 1)))
                for _ in range(1_001)]
    refusal = await refusal_of(stub.Batch(pb.BatchRequest(commands=commands),
                                          timeout=RPC_TIMEOUT_S))
    assert refusal.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "commands" in refusal.details()
    assert await availability(stub, sku) == before
