"""What an ingest worker makes of stream entries, and of a source's sequence numbers."""

from __future__ import annotations

import pytest
from google.protobuf import json_format
from inventory.v1 import availability_pb2 as pb

from engine.config import RequestLimits
from engine.mappings import Mappings
from engine.model import Movement, MovementType
from engine.normalize import normalize_movements
from gateway import codec
from gateway.ingest_entries import EntryRefused, IngestStats, decode_entry, read_entries

MOVEMENT = pb.Movement(event_id="e-1", source="pos", type=pb.MOVEMENT_TYPE_SALE, sku="sku-1",
                       location="store-7", quantity=2, source_sequence=5)


def test_entry_carries_a_serialized_movement_or_its_json_mapping():
    """Both pinned encodings give the same Movement; a schema_version of 1 is accepted."""
    assert decode_entry({b"movement": MOVEMENT.SerializeToString()}) == MOVEMENT
    as_json = json_format.MessageToJson(MOVEMENT).encode()
    assert decode_entry({b"json": as_json, b"schema_version": b"1"}) == MOVEMENT


@pytest.mark.parametrize("fields, reason", [
    ({b"movement": b"\xff\xff\xff"}, "undecodable payload"),
    ({b"json": b"{not json"}, "undecodable payload"),
    ({b"json": b'{"quantity": "many"}'}, "undecodable payload"),
    ({b"movement": MOVEMENT.SerializeToString(), b"schema_version": b"2"}, "schema_version"),
    ({b"other": b"x"}, "neither a `movement` nor a `json` field"),
])
def test_entry_that_cannot_be_read_is_refused_with_its_reason(fields, reason):
    """Undecodable payloads, unknown schema versions and empty entries are refused, named."""
    with pytest.raises(EntryRefused, match=reason):
        decode_entry(fields)


def movement(source: str, sequence: int) -> Movement:
    return Movement(f"e-{sequence}", source, MovementType.SALE, "sku-1", "store-7", 1,
                    source_sequence=sequence)


def test_source_sequence_gaps_and_regressions_are_counted_per_source_not_blocked_on():
    """A skipped number counts as a gap, an old one as a regression; sources stay apart."""
    stats = IngestStats()
    for source, sequence in [("pos-1", 1), ("pos-1", 2), ("pos-1", 5), ("pos-2", 9),
                             ("pos-1", 4), ("pos-1", 6), ("pos-2", 10), ("pos-2", 0)]:
        stats.saw_sequence(movement(source, sequence))
    assert stats.sequence_gaps == {"pos-1": 2}
    assert stats.sequence_regressions == {"pos-1": 1}
    assert stats.last_sequence == {"pos-1": 6, "pos-2": 10}


STORE_TOML = """
strict = true

[sku_aliases]
"012345678905" = "TSHIRT-BLK-M"

[units]
CS = 12
"""


def wire(event_id: str, **fields) -> dict[bytes, bytes]:
    """An entry carrying a serialized RECEIPT of one unit, with `fields` changed."""
    message = pb.Movement(event_id=event_id, source="wms", type=pb.MOVEMENT_TYPE_RECEIPT,
                          sku="sku-1", location="dc-1", quantity=1)
    for name, value in fields.items():
        setattr(message, name, value)
    return {b"movement": message.SerializeToString()}


def test_read_entries_keeps_good_movements_in_order_and_refuses_each_bad_one_alone():
    """A bad entry is refused with its own reason; the good ones around it are kept, in order."""
    entries = [(b"1-0", wire("e-1")),
               (b"2-0", {b"movement": b"\xff\xff\xff"}),
               (b"3-0", wire("e-3", sku="")),
               (b"4-0", {b"json": json_format.MessageToJson(
                   pb.Movement.FromString(wire("e-4")[b"movement"])).encode()}),
               (b"5-0", wire("e-5", quantity=0)),
               (b"6-0", {}),
               (b"7-0", wire("e-7", type=pb.MOVEMENT_TYPE_TRANSFER_OUT))]
    batch = read_entries(entries, Mappings(), RequestLimits(), IngestStats())
    assert batch.entry_ids == [b"1-0", b"4-0"]
    assert [m.event_id for m in batch.movements] == ["e-1", "e-4"]
    assert batch.empty == [b"6-0"]
    assert batch.refused.keys() == {b"2-0", b"3-0", b"5-0", b"7-0"}
    assert batch.refused[b"2-0"].startswith("undecodable payload")
    assert batch.refused[b"3-0"] == "sku: must be between 1 and 128 bytes of UTF-8"
    assert batch.refused[b"5-0"] == "quantity: must be an integer between 1 and 1000000000"
    assert batch.refused[b"7-0"] == "destination_location: is required for TRANSFER_OUT"


def test_read_entries_normalizes_by_the_source_mapping_as_apply_movements_does(tmp_path):
    """A mapped source's aliases and units are applied; what its strict mapping does not
    know, or a fraction of a unit, is refused naming the field."""
    (tmp_path / "wms.toml").write_text(STORE_TOML)
    mappings = Mappings.load(tmp_path)
    entries = [(b"1-0", wire("e-1", sku="012345678905", unit_of_measure="CS", quantity=2)),
               (b"2-0", wire("e-2", sku="unknown-upc")),
               (b"3-0", wire("e-3", sku="TSHIRT-BLK-M", unit_of_measure="PALLET"))]
    batch = read_entries(entries, mappings, RequestLimits(), IngestStats())
    expected = normalize_movements([codec.movement_command(pb.Movement.FromString(
        entries[0][1][b"movement"]))], mappings)
    assert batch.movements == expected
    assert (batch.movements[0].sku, batch.movements[0].quantity) == ("TSHIRT-BLK-M", 24)
    assert batch.refused[b"2-0"].startswith("sku: 'unknown-upc' is not a SKU alias known")
    assert batch.refused[b"3-0"].startswith("unit_of_measure: unit 'PALLET'")


def test_read_entries_counts_sequence_gaps_of_the_movements_it_keeps():
    """Source sequence numbers of kept movements are counted; a refused entry's are not."""
    stats = IngestStats()
    entries = [(b"1-0", wire("e-1", source_sequence=1)),
               (b"2-0", wire("e-2", source_sequence=2, quantity=0)),
               (b"3-0", wire("e-3", source_sequence=4))]
    read_entries(entries, Mappings(), RequestLimits(), stats)
    assert stats.sequence_gaps == {"wms": 2}
    assert stats.last_sequence == {"wms": 4}
