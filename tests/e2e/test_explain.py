"""Explaining a figure over gRPC and with `availability explain`, against the real serve."""

from __future__ import annotations

import asyncio
import json
import subprocess

import grpc
import pytest
from inventory.v1 import availability_pb2 as pb

from tests.e2e.conftest import AVAILABILITY
from tests.integration.serving import LOC, RPC_TIMEOUT_S, receive, reserve, unique


async def explain(stub, sku: str) -> pb.ItemAvailability:
    request = pb.GetAvailabilityRequest(items=[pb.ItemRef(sku=sku, location=LOC)], explain=True)
    return (await stub.GetAvailability(request, timeout=RPC_TIMEOUT_S)).items[0]


async def test_explain_terms_add_up_and_name_the_changes_behind_the_figure(stub):
    """The terms sum to the reported ATS; the sale and the hold appear with their ids."""
    sku = unique("explain")
    await receive(stub, sku, 10)
    held = await reserve(stub, unique("cart"), (sku, 3), correlation_id="checkout-77")
    sale = pb.Movement(event_id=unique("till"), source="pos", type=pb.MOVEMENT_TYPE_SALE,
                       sku=sku, location=LOC, quantity=2, correlation_id="till-5")
    await stub.ApplyMovements(pb.ApplyMovementsRequest(movements=[sale]), timeout=RPC_TIMEOUT_S)
    item = await explain(stub, sku)
    assert sum(term.quantity for term in item.explanation.terms) == item.available_to_sell == 5
    recent = item.explanation.recent
    assert [(e.what, e.key, e.correlation_id) for e in recent[:2]] == [
        ("SALE", sale.event_id, "till-5"), ("RESERVE", held.reservation_id, "checkout-77")]
    assert item.explanation.earliest_hold_expires_at_unix_ms == 0


async def test_explain_sold_out_names_the_earliest_hold_expiry(stub):
    """Everything held: the answer says when the first hold gives its units back."""
    sku = unique("sold-out")
    await receive(stub, sku, 2)
    held = await reserve(stub, unique("cart"), (sku, 2), ttl_seconds=120)
    item = await explain(stub, sku)
    assert item.available_to_sell == 0
    assert item.explanation.earliest_hold_expires_at_unix_ms == held.expires_at_unix_ms


async def test_explain_command_prints_the_breakdown(serve, stub):
    """`availability explain SKU LOCATION --json` answers what GetAvailability explains."""
    sku = unique("cli")
    await receive(stub, sku, 4)
    done = await asyncio.to_thread(
        subprocess.run, [*AVAILABILITY, "explain", sku, LOC, "--address", serve.target,
                         "--json"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["available_to_sell"] == "4"
    assert answer["explanation"]["terms"][0] == {"name": "on_hand", "quantity": "4"}
    table = await asyncio.to_thread(
        subprocess.run, [*AVAILABILITY, "explain", sku, LOC, "--address", serve.target],
        capture_output=True, text=True, timeout=60)
    assert "= available_to_sell" in table.stdout and "RECEIPT" in table.stdout


async def test_explain_too_many_items_is_refused_naming_the_field(stub):
    """Explaining more items than the limit is INVALID_ARGUMENT naming `items`."""
    request = pb.GetAvailabilityRequest(
        items=[pb.ItemRef(sku=f"sku-{n}", location=LOC) for n in range(51)], explain=True)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.GetAvailability(request, timeout=RPC_TIMEOUT_S)
    assert refused.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "items" in refused.value.details()
