"""The router normalizes movements under their source's mapping before validating and routing."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from inventory.v1 import availability_pb2 as pb

from engine.mappings import Mappings
from engine.model import Movement, MovementCode, MovementType
from engine.normalize import NormalizationError, RawMovement
from engine.partition_host import PartitionHost
from engine.routing import partition_of
from engine.validation import ValidationError
from gateway import codec
from gateway.partitions import LocalPartitions
from gateway.router import Router
from gateway.servicer import refusal_of

NOW_MS = 1_700_000_000_000
LOADTEST_MAPPINGS = Path(__file__).resolve().parents[2] / "loadtest" / "mappings"
# A store source that scans UPCs, posts by store number and counts in cases of 12.
STORE_TOML = """
strict = true

[sku_aliases]
"012345678905" = "TSHIRT-BLK-M"

[locations]
"0101" = "store-nyc-soho"

[units]
CS = 12
"""


class CountingPartitions(LocalPartitions):
    """Local partitions that count the batches they are sent."""

    def __init__(self, hosts) -> None:
        super().__init__(hosts)
        self.calls = 0

    async def apply(self, partition, commands):
        self.calls += 1
        return await super().apply(partition, commands)


def new_router(mappings: Mappings | None) -> Router:
    """Two empty partitions behind a router that normalizes with `mappings`."""
    hosts = [PartitionHost(p, clock_ms=lambda: NOW_MS) for p in range(2)]
    return Router(CountingPartitions(hosts), mappings=mappings)


def store_mappings(tmp_path: Path) -> Mappings:
    (tmp_path / "store.toml").write_text(STORE_TOML)
    return Mappings.load(tmp_path)


def quantities(router: Router, sku: str, location: str) -> dict[str, int] | None:
    host = router.partitions.hosts[partition_of(sku, router.partitions.count)]
    return host.state.quantities_of(sku, location)


def raw(event_id: str, source: str, sku: str, location: str, quantity, unit: str = "",
        kind: MovementType | int = MovementType.RECEIPT, status: str = "") -> RawMovement:
    return RawMovement(event_id, source, kind, sku, location, quantity, NOW_MS,
                       unit_of_measure=unit, status=status)


async def test_apply_movements_alias_store_and_case_reach_partition_canonical(tmp_path):
    """A UPC, a store number and 2 cases arrive as the SKU, the location id and 24 each."""
    router = new_router(store_mappings(tmp_path))
    results = await router.apply_movements(
        [raw("e1", "store", "012345678905", "0101", 2, unit="CS")])
    assert [r.code for r in results] == [MovementCode.APPLIED]
    assert quantities(router, "TSHIRT-BLK-M", "store-nyc-soho")["on_hand"] == 24
    assert quantities(router, "012345678905", "0101") is None


async def test_apply_movements_erp_status_becomes_its_movement_type():
    """An untyped ERP movement in cases with status IN_TRANSIT is 36 each incoming."""
    router = new_router(Mappings.load(LOADTEST_MAPPINGS))
    results = await router.apply_movements([raw(
        "e1", "erp", "MUG-WHT-12OZ", "1000-0001", 3, unit="CS", kind=0, status="IN_TRANSIT")])
    assert [r.code for r in results] == [MovementCode.APPLIED]
    after = quantities(router, "MUG-WHT-12OZ", "dc-east")
    assert (after["incoming"], after["on_hand"]) == (36, 0)


async def test_apply_movements_strict_unknown_alias_is_refused_and_changes_nothing():
    """A listing id a strict marketplace never mapped names movements[1].sku; none is applied."""
    router = new_router(Mappings.load(LOADTEST_MAPPINGS))
    movements = [
        Movement("e0", "marketplace", MovementType.RECEIPT, "B07XJ8C8F5", "MKT-FC-EWR4", 5,
                 NOW_MS),
        Movement("e1", "marketplace", MovementType.RECEIPT, "B0UNKNOWN1", "MKT-FC-EWR4", 5,
                 NOW_MS),
    ]
    with pytest.raises(NormalizationError) as refused:
        await router.apply_movements(movements)
    assert refused.value.field == "movements[1].sku"
    assert router.partitions.calls == 0
    assert quantities(router, "TSHIRT-BLK-M", "fc-newark") is None
    # The gRPC answer a ValidationError earns, naming the field.
    refusal = refusal_of(refused.value)
    assert refusal.code is grpc.StatusCode.INVALID_ARGUMENT
    assert refusal.message.startswith("movements[1].sku: ")


async def test_apply_movements_fractional_case_quantity_is_refused_and_changes_nothing(
        tmp_path):
    """2.5 cases of 12 is 30 each and fine; 0.1 case is 1.2 each and refused, naming quantity."""
    router = new_router(store_mappings(tmp_path))
    with pytest.raises(NormalizationError) as refused:
        await router.apply_movements([
            raw("e0", "store", "TSHIRT-BLK-M", "store-nyc-soho", "2.5", unit="CS"),
            raw("e1", "store", "TSHIRT-BLK-M", "store-nyc-soho", "0.1", unit="CS")])
    assert refused.value.field == "movements[1].quantity"
    assert router.partitions.calls == 0
    assert quantities(router, "TSHIRT-BLK-M", "store-nyc-soho") is None


async def test_apply_movements_unknown_unit_without_mappings_is_refused():
    """With no mapping files, a movement in cases cannot be converted and is refused."""
    router = new_router(None)
    with pytest.raises(ValidationError) as refused:
        await router.apply_movements([raw("e0", "pos", "SKU-1", "WH-1", 1, unit="CS")])
    assert refused.value.field == "movements[0].unit_of_measure"
    assert router.partitions.calls == 0


async def test_apply_movements_without_mappings_passes_core_movements_through():
    """The default router has no mapping files: a core Movement is applied exactly as sent."""
    router = new_router(None)
    movement = Movement("e0", "pos", MovementType.RECEIPT, "012345678905", "0101", 4, NOW_MS)
    results = await router.apply_movements([movement])
    assert [r.code for r in results] == [MovementCode.APPLIED]
    assert quantities(router, "012345678905", "0101")["on_hand"] == 4


async def test_apply_movements_too_many_is_refused_before_normalizing(tmp_path):
    """An oversized request is refused by its count, not by whichever movement fails first."""
    router = new_router(store_mappings(tmp_path))
    limit = router.config.requests.movements_per_request_max
    movements = [raw(f"e{i}", "store", "unmapped", "0101", 1) for i in range(limit + 1)]
    with pytest.raises(ValidationError) as refused:
        await router.apply_movements(movements)
    assert type(refused.value) is ValidationError
    assert refused.value.field == "movements"


async def test_apply_movements_wire_movement_in_cases_is_normalized_end_to_end(tmp_path):
    """A wire Movement with unit_of_measure decoded by the codec is applied in each."""
    router = new_router(store_mappings(tmp_path))
    request = pb.ApplyMovementsRequest(movements=[pb.Movement(
        event_id="e0", source="store", type=pb.MOVEMENT_TYPE_RECEIPT, sku="012345678905",
        location="0101", quantity=3, occurred_at_unix_ms=NOW_MS, unit_of_measure="CS")])
    results = await router.apply_movements(codec.movement_commands(request))
    assert [r.code for r in results] == [MovementCode.APPLIED]
    assert quantities(router, "TSHIRT-BLK-M", "store-nyc-soho")["on_hand"] == 36
