"""Overload is refused with RESOURCE_EXHAUSTED at a bounded queue, and nothing is miscounted."""

from __future__ import annotations

import grpc
from inventory.v1 import availability_pb2 as pb

from tests.integration.serving import (
    HELD,
    REJECTED,
    RPC_TIMEOUT_S,
    outcomes,
    quantities,
    receive,
    reserve,
    reserve_request,
    settle_all,
    stub_of,
    unique,
)

QUEUE_COMMANDS_MAX = 50
STOCK = 1_000
RESERVES = 3_000
# A Batch RPC queues all its commands at once, so each of these outruns a 50-command queue
# for certain; the unary burst beside them usually does too, but its timing is the machine's.
BATCHES, BATCH_RESERVES = 3, 200
ANSWERS = {"HELD", "REJECTED", "RESOURCE_EXHAUSTED"}


async def test_reserve_overload_is_resource_exhausted_and_counts_stay_exact(spawn):
    """3,000 concurrent Reserves against a 50-command queue: the excess answers
    RESOURCE_EXHAUSTED, every other answer is HELD or REJECTED, held plus available is the
    stock, and the server answers normally afterwards."""
    served = spawn(2, env={"AVAILABILITY_QUEUE_COMMANDS_MAX": str(QUEUE_COMMANDS_MAX)})
    async with grpc.aio.insecure_channel(served.target) as channel:
        stub = stub_of(channel)
        sku = unique("overload")
        await receive(stub, sku, STOCK)
        unary = [reserve(stub, unique("rush"), (sku, 1)) for _ in range(RESERVES)]
        batches = [stub.Batch(pb.BatchRequest(commands=[
            pb.BatchCommand(reserve=reserve_request(unique("rush-batch"), (sku, 1)))
            for _ in range(BATCH_RESERVES)]), timeout=RPC_TIMEOUT_S) for _ in range(BATCHES)]
        answers = await settle_all([*unary, *batches])
        unary_outcomes = outcomes(answers[:RESERVES])
        batch_outcomes = outcomes(result for batch in answers[RESERVES:]
                                  for result in batch.results)
        assert set(unary_outcomes) <= ANSWERS, unary_outcomes
        assert set(batch_outcomes) <= ANSWERS, batch_outcomes
        assert batch_outcomes["RESOURCE_EXHAUSTED"] > 0, batch_outcomes
        held = unary_outcomes["HELD"] + batch_outcomes["HELD"]
        item = await quantities(stub, sku)
        assert (item.on_hand, item.reserved, item.available_to_sell) == (STOCK, held,
                                                                        STOCK - held)
        # The storm is over: the next Reserve is answered, not refused.
        expected = HELD if item.available_to_sell else REJECTED
        assert (await reserve(stub, unique("calm"), (sku, 1))).status == expected
