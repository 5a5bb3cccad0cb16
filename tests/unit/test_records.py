"""Every command and result survives records.encode, msgpack and records.decode unchanged."""

from __future__ import annotations

import typing
from enum import IntEnum

import msgpack
import pytest

from engine import model, records
from engine.model import (
    AvailabilityResult,
    ChannelFigure,
    Commit,
    ConfirmHold,
    Expire,
    ExpireResult,
    FenceItem,
    FenceResult,
    FenceShown,
    GetAvailability,
    ItemAvailability,
    ItemRef,
    LineCode,
    LineResult,
    Movement,
    MovementCode,
    MovementResult,
    MovementType,
    Outcome,
    Release,
    ReservationResult,
    ReservationState,
    ReservationStatus,
    Reserve,
    ReserveLine,
    ReserveResult,
    RulesResult,
    SetChannelRules,
    SettleFences,
    WatchChanges,
    WatchResult,
    WatchSnapshot,
)
from engine.partition_state import PartitionState

LINES = (ReserveLine("sku-1", "dc-1", 3), ReserveLine("sku-é", "store-2", 1_000_000_000))
LINE_RESULTS = (LineResult("sku-1", "dc-1", 3, 3, LineCode.OK, 7),
                LineResult("sku-é", "store-2", 9, 0, LineCode.INSUFFICIENT_AVAILABLE, -2),
                LineResult("ghost", "dc-1", 1, 0, LineCode.UNKNOWN_ITEM, 0))
SAMPLES = {
    "reserve": Reserve("key-1", "r0-abc", LINES, 30, True, "web", "order-1", "corr-1"),
    "reserve-defaults": Reserve("key-2", "r0-def", LINES[:1]),
    "commit": Commit("r0-abc", "key-3", "order-1"),
    "release": Release("r0-abc", "key-4", "abandoned"),
    "confirm-hold": ConfirmHold("r0.1-abc", "key-5\x1fconfirm", 1_700_000_900_000),
    "expire": Expire(),
    "movement": Movement("ev-1", "pos", MovementType.TRANSFER_OUT, "sku-1", "dc-1", 5,
                         1_700_000_000_000, "reason", "order-1", "r0-abc", 2**64 - 1, "corr",
                         "store-2"),
    "movement-signed": Movement("ev-2", "erp", MovementType.ADJUSTMENT, "sku-1", "dc-1", -4),
    "get-availability": GetAvailability((ItemRef("sku-1", "dc-1"), ItemRef("x", "y")), "web"),
    "reserve-held": ReserveResult(Outcome.OK, "r0-abc", ReservationStatus.PARTIALLY_HELD,
                                  LINE_RESULTS, 1_700_000_900_000),
    "reserve-conflict": ReserveResult(Outcome.IDEMPOTENCY_CONFLICT, "", None, (), 0, "used"),
    "reservation": ReservationResult(Outcome.OK, "r0-abc", ReservationState.SHIPPED),
    "reservation-refused": ReservationResult(Outcome.NOT_FOUND, "r0-x", None, "no such"),
    "reservation-confirmed": ReservationResult(Outcome.OK, "r0.1-x", ReservationState.HELD, "",
                                               1_700_000_900_000),
    "expire-result": ExpireResult(Outcome.OK, 12),
    "movement-result": MovementResult(Outcome.IDEMPOTENCY_CONFLICT, "ev-1",
                                      MovementCode.REJECTED, "used"),
    "set-channel-rules": SetChannelRules('[{"name": "default"}]'),
    "rules-result": RulesResult(Outcome.OK, 2),
    "fence-shown": FenceShown("market", (FenceItem("A", "dc-1", 3), FenceItem("A", "dc-2", 0)),
                              1_700_000_000_000),
    "settle-fences": SettleFences("market", 1_700_000_000_000),
    "fence-result": FenceResult(Outcome.OK, 2, True),
    "watch-changes": WatchChanges(("default", "web"), "a1b2", 17),
    "watch-snapshot": WatchSnapshot(("web",), ("sku-1",), 0, 500),
    "watch-result": WatchResult(Outcome.OK, "a1b2", 18, False, (
        ChannelFigure("sku-1", "dc-1", (4, None)), ChannelFigure("sku-1", "", (4, 0))), 3),
    "availability": AvailabilityResult(Outcome.OK, (
        ItemAvailability("sku-1", "dc-1", 10, 1, 2, 3, 4, 5, 6, -5, True),
        ItemAvailability("ghost", "dc-1", 0, 0, 0, 0, 0, 0, 0, 0, False))),
}


def round_trip(record: tuple) -> tuple:
    packed = msgpack.packb(records.encode(record), use_bin_type=True)
    return records.decode(msgpack.unpackb(packed, raw=False))


def assert_same_types(decoded, original) -> None:
    """Equal values are not enough: an enum must come back as its enum, a tuple as a tuple."""
    assert type(decoded) is type(original), (decoded, original)
    if isinstance(original, tuple):
        for decoded_field, original_field in zip(decoded, original, strict=True):
            assert_same_types(decoded_field, original_field)


@pytest.mark.parametrize("record", list(SAMPLES.values()), ids=list(SAMPLES))
def test_records_round_trip_restores_values_and_types(record):
    """A record decodes equal to what was encoded, with enums and nested records restored."""
    decoded = round_trip(record)
    assert decoded == record
    assert_same_types(decoded, record)


def test_records_samples_cover_every_command_and_result_type():
    """The samples above name every command and result type of the model."""
    every_type = set(typing.get_args(model.Command)) | set(typing.get_args(model.Result))
    assert {type(record) for record in SAMPLES.values()} == every_type


def test_records_round_trip_engine_results():
    """Results the partition builds itself, including a columnar Reserve run, round-trip."""
    state = PartitionState()
    state.load_items(["sku-1"], ["dc-1"], [2])
    batch = [Reserve(f"k{n}", f"r{n}", (ReserveLine("sku-1", "dc-1", 1),)) for n in range(3)]
    batch.append(GetAvailability((ItemRef("sku-1", "dc-1"),)))
    for result in state.apply(batch, 1_700_000_000_000):
        assert_same_types(round_trip(result), result)
        assert round_trip(result) == result


@pytest.mark.parametrize("record_type, tag", [
    (Reserve, 0), (Commit, 1), (Release, 2), (Expire, 3), (Movement, 4), (GetAvailability, 5),
    (ReserveResult, 6), (ReservationResult, 7), (ExpireResult, 8), (MovementResult, 9),
    (AvailabilityResult, 10),
])
def test_records_tags_are_pinned(record_type, tag):
    """Tags live in journals and snapshots already written, so they never change."""
    sample = next(r for r in SAMPLES.values() if type(r) is record_type)
    assert records.encode(sample)[0] == tag


def test_records_enum_fields_decode_from_plain_ints():
    """An enum field written as a plain int (as msgpack stores it) decodes to the enum."""
    decoded = records.decode([9, int(Outcome.OK), "ev-1", int(MovementCode.DUPLICATE), ""])
    assert decoded.code is MovementCode.DUPLICATE and decoded.outcome is Outcome.OK
    assert all(isinstance(value, IntEnum) for value in (decoded.code, decoded.outcome))
