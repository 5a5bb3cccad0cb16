"""Coverage-guided fuzzing of the codec and validation with atheris (not collected by pytest).

Run: pip install -e '.[fuzz]' && python tests/fuzz/atheris_codec.py -max_total_time=300
Each input is one request type's bytes, as the gateway would receive them, or a stream
entry's fields, as ingest reads them. Decoding may fail with DecodeError, validation with
ValidationError, an entry with EntryRefused: anything else raised is a crash to report.
"""

from __future__ import annotations

import contextlib
import sys

import atheris

with atheris.instrument_imports():
    from google.protobuf.message import DecodeError
    from inventory.v1 import availability_pb2 as pb

    from engine.config import RequestLimits
    from engine.mappings import Mappings
    from engine.validation import (
        ValidationError,
        validate_commit,
        validate_get_availability,
        validate_movements,
        validate_release,
        validate_reserve,
    )
    from gateway import codec
    from gateway.ingest_entries import IngestStats, read_entries

LIMITS = RequestLimits()
# (request type, its conversion to a core command, the validation the router runs).
_TARGETS = (
    (pb.ReserveRequest, lambda r: codec.reserve_command(r, reservation_id=""), validate_reserve),
    (pb.CommitRequest, codec.commit_command, validate_commit),
    (pb.ReleaseRequest, codec.release_command, validate_release),
    (pb.GetAvailabilityRequest, codec.availability_query, validate_get_availability),
    (pb.ApplyMovementsRequest, codec.movement_commands, validate_movements),
)


def one_input(data: bytes) -> None:
    if not data:
        return
    provider = atheris.FuzzedDataProvider(data)
    choice = provider.ConsumeIntInRange(0, len(_TARGETS))
    if choice == len(_TARGETS):  # a stream entry for ingest
        fields = {b"movement" if provider.ConsumeBool() else b"json":
                  provider.ConsumeBytes(provider.ConsumeIntInRange(0, 2_000))}
        read_entries([(b"1-0", fields)], Mappings(), LIMITS, IngestStats())
        return
    message_type, to_command, validate = _TARGETS[choice]
    try:
        request = message_type.FromString(provider.ConsumeBytes(len(data)))
    except DecodeError:
        return
    with contextlib.suppress(ValidationError):
        validate(to_command(request), LIMITS)


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
