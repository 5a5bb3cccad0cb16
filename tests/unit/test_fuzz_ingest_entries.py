"""Hostile Redis Stream entries: whatever an entry holds, ingest sorts it out without raising.

Anyone the Redis ACLs let XADD to the events stream can write any fields. Each entry must
end up applied (a movement that passes validation), refused with a one-line reason (the
DLQ), or skipped as empty; never crash the worker's loop, which would stall the stream.
"""

from __future__ import annotations

import json

from google.protobuf import json_format
from hypothesis import given
from hypothesis import strategies as st
from inventory.v1 import availability_pb2 as pb

from engine.config import RequestLimits
from engine.mappings import Mappings
from engine.validation import validate_movement
from gateway.ingest_entries import IngestStats, read_entries

LIMITS = RequestLimits()
_text = st.one_of(st.sampled_from(["", "pos", "sku-1", "dc-1", "e-1"]), st.text(max_size=200))
_int = st.one_of(st.integers(-5, 50), st.integers(-2**63, 2**64 - 1))
_movements = st.builds(
    pb.Movement, event_id=_text, source=_text, type=st.integers(0, 20), sku=_text,
    location=_text, quantity=st.integers(-2**63, 2**63 - 1),
    occurred_at_unix_ms=st.integers(-2**63, 2**63 - 1), reason=_text,
    source_sequence=st.integers(0, 2**64 - 1), destination_location=_text)
# JSON documents shaped like a Movement's mapping, with hostile values, plus any JSON at all.
_json_values = st.recursive(st.none() | st.booleans() | _int | st.floats() | _text,
                            lambda children: st.lists(children, max_size=3)
                            | st.dictionaries(_text, children, max_size=3), max_leaves=10)
_json_documents = st.one_of(
    st.dictionaries(st.sampled_from(["eventId", "source", "type", "sku", "location",
                                     "quantity", "occurredAtUnixMs", "sourceSequence",
                                     "unitOfMeasure", "status", "bogus"]), _json_values,
                    max_size=8).map(json.dumps),
    _movements.map(json_format.MessageToJson),
    _json_values.map(json.dumps),
    st.integers(1, 3_000).map(lambda depth: "[" * depth + "]" * depth),
    st.integers(1, 3_000).map(lambda depth: '{"a":' * depth + "1" + "}" * depth))


@st.composite
def _payload(draw) -> bytes:
    kind = draw(st.sampled_from(("movement", "mutated", "bytes")))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    data = bytearray(draw(_movements).SerializeToString())
    if kind == "mutated":
        for _ in range(draw(st.integers(1, 4))):
            at = draw(st.integers(0, max(len(data) - 1, 0)))
            if data and draw(st.booleans()):
                data[at] ^= 1 << draw(st.integers(0, 7))
            else:
                data[at:at] = draw(st.binary(min_size=1, max_size=6))
    return bytes(data)


_fields = st.dictionaries(
    st.sampled_from([b"movement", b"json", b"schema_version", b"source", b"x"]),
    st.binary(max_size=4_000), max_size=3)


@st.composite
def _entries(draw) -> list[tuple[bytes, dict]]:
    entries = []
    for n in range(draw(st.integers(1, 6))):
        fields = draw(_fields)
        which = draw(st.sampled_from(("movement", "json", "both", "neither")))
        if which in ("movement", "both"):
            fields[b"movement"] = draw(_payload())
        if which in ("json", "both"):
            document = draw(_json_documents).encode("utf-8", "surrogatepass")
            fields[b"json"] = draw(st.one_of(st.just(document), st.binary(max_size=60)))
        entries.append((f"{n + 1}-0".encode(), fields))
    return entries


@given(entries=_entries())
def test_every_hostile_entry_is_applied_refused_or_skipped_never_raised(entries):
    """Each entry lands in exactly one outcome; kept movements pass validation; a reason is
    one printable line."""
    batch = read_entries(entries, Mappings(), LIMITS, IngestStats())
    kept, refused, empty = set(batch.entry_ids), set(batch.refused), set(batch.empty)
    assert len(batch.entry_ids) == len(batch.movements)
    assert kept | refused | empty == {entry_id for entry_id, _ in entries}
    assert not (kept & refused or kept & empty or refused & empty)
    for movement in batch.movements:
        validate_movement(movement, LIMITS)
    for reason in batch.refused.values():
        assert reason and "\n" not in reason and "Traceback" not in reason
        assert len(reason) < 2_000
