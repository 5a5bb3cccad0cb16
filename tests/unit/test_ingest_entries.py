"""What an ingest worker makes of one stream entry, and of a source's sequence numbers."""

from __future__ import annotations

import pytest
from google.protobuf import json_format
from inventory.v1 import availability_pb2 as pb

from engine.model import Movement, MovementType
from gateway.ingest import EntryRefused, IngestStats, decode_entry

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
