"""What an ingest worker makes of stream entries: movements ready to apply, or refusal reasons.

A batch of entries is decoded, normalized and validated in one pass with the same rules
as gRPC ApplyMovements, but an entry that breaks one is refused alone, with its reason,
rather than refusing the batch. Nothing here touches Redis or a partition.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from inventory.v1 import availability_pb2 as pb

from engine.config import RequestLimits
from engine.mappings import Mappings
from engine.model import Movement
from engine.normalize import normalize
from engine.validation import ValidationError, validate_movement
from gateway import codec

SCHEMA_VERSION = b"1"
# A dead letter's reason quotes at most this much of a parser's message.
REASON_CHARS_MAX = 300
log = logging.getLogger(__name__)


class EntryRefused(Exception):
    """An entry that can never be applied as it is: it goes to the DLQ with this reason."""


@dataclass
class IngestStats:
    """What a worker has done, and what it saw of each source's sequence numbers."""

    reads: int = 0  # XREADGROUP and XAUTOCLAIM batches processed
    entries_read: int = 0
    applied: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    retried: int = 0
    sequence_gaps: Counter = field(default_factory=Counter)  # source -> missing numbers
    sequence_regressions: Counter = field(default_factory=Counter)
    last_sequence: dict[str, int] = field(default_factory=dict)

    def saw_sequence(self, movement: Movement) -> None:
        """Count gaps and regressions of a source's `source_sequence`; never block on them."""
        sequence = movement.source_sequence
        if not sequence:
            return
        last = self.last_sequence.get(movement.source)
        if last is not None and sequence > last + 1:
            self.sequence_gaps[movement.source] += sequence - last - 1
            log.warning("source %s skipped sequence numbers %s..%s", movement.source,
                        last + 1, sequence - 1)
        elif last is not None and sequence <= last:
            self.sequence_regressions[movement.source] += 1
        self.last_sequence[movement.source] = max(sequence, last or 0)


def decode_entry(fields: dict[bytes, bytes]) -> pb.Movement:
    """The wire Movement an entry carries; raises EntryRefused naming what is wrong."""
    version = fields.get(b"schema_version")
    if version is not None and version != SCHEMA_VERSION:
        raise EntryRefused(f"schema_version {version[:20].decode(errors='replace')!r} is not "
                           f"supported (only {SCHEMA_VERSION.decode()})")
    try:
        if b"movement" in fields:
            return pb.Movement.FromString(fields[b"movement"])
        if b"json" in fields:
            return json_format.Parse(fields[b"json"], pb.Movement())
    except (DecodeError, json_format.ParseError, UnicodeDecodeError) as error:
        raise EntryRefused(f"undecodable payload: {_one_line(str(error))}") from None
    raise EntryRefused("entry has neither a `movement` nor a `json` field")


def _one_line(text: str, chars_max: int = REASON_CHARS_MAX) -> str:
    """A parser's message as one bounded line: it may quote the hostile payload at length."""
    text = " ".join(text.split())
    return text if len(text) <= chars_max else text[:chars_max - 1] + "…"


class EntryBatch(NamedTuple):
    """A batch of entries sorted out: the movements to apply, and the entries to finish now."""

    entry_ids: list[bytes]  # the entry of each of `movements`, in the same order
    movements: list[Movement]
    refused: dict[bytes, str]  # entry id -> why it can never be applied
    empty: list[bytes]  # deleted from the stream while pending: nothing to apply


def read_entries(entries: Sequence[tuple[bytes, dict]], mappings: Mappings,
                 limits: RequestLimits, stats: IngestStats) -> EntryBatch:
    """Decode, normalize and validate each entry; count its source's sequence number."""
    batch = EntryBatch([], [], {}, [])
    entry_ids, movements, refused = batch.entry_ids, batch.movements, batch.refused
    # Hoisted: this loop runs once per movement, thousands of times a read.
    with_mapping_file = mappings.sources
    to_command = codec.movement_command
    for entry_id, fields in entries:
        if not fields:
            batch.empty.append(entry_id)
            continue
        try:
            movement = to_command(decode_entry(fields))
            # A core Movement from a source without a mapping file passes unchanged.
            if type(movement) is not Movement or movement.source in with_mapping_file:
                movement = normalize(movement, mappings)
            validate_movement(movement, limits)
        except (EntryRefused, ValidationError) as error:
            refused[entry_id] = str(error)
            continue
        entry_ids.append(entry_id)
        movements.append(movement)
        if movement.source_sequence:
            stats.saw_sequence(movement)
    return batch
