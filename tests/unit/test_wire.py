"""Batches between gateways and partition actors pickle to ordinary pickle, records intact."""

from __future__ import annotations

import pickle

from engine import wire
from engine.model import (
    Expire,
    GetAvailability,
    ItemRef,
    Movement,
    MovementCode,
    MovementResult,
    MovementType,
    Outcome,
    Reserve,
    ReserveLine,
    Unavailable,
)

HEADER = ("submitter", 7, 5)


def receipt(n: int) -> Movement:
    return Movement(f"e-{n}", "wms", MovementType.RECEIPT, f"sku-{n}", "dc-1", n + 1)


def test_dumps_batch_mixed_records_come_back_equal_in_order_with_their_types():
    """Runs of several record types, nested records and a stray object keep order and type."""
    records = [receipt(0), receipt(1),
               Reserve("k", "r", (ReserveLine("sku-1", "dc-1", 2),), 0, False),
               receipt(2), Expire(), GetAvailability((ItemRef("sku-1", "dc-1"),)),
               Unavailable("journal down"), ("plain", "tuple"), "not a record"]
    header, back = wire.loads_batch(wire.dumps_batch(HEADER, records))
    assert header == HEADER
    assert back == records
    assert [type(record) for record in back] == [type(record) for record in records]
    assert type(back[2].lines[0]) is ReserveLine
    assert type(back[0].type) is MovementType


def test_dumps_batch_empty_batch_round_trips():
    """A batch with no records (an actor's answer to nothing) is still a header and a list."""
    assert wire.loads_batch(wire.dumps_batch((), [])) == ((), [])


def test_dumps_batch_is_ordinary_pickle():
    """The standard unpickler reads the bytes: nothing but this module's layout is special."""
    results = [MovementResult(Outcome.OK, "e-1", MovementCode.APPLIED)]
    header, runs = pickle.loads(wire.dumps_batch(HEADER, results))
    assert header == HEADER
    assert runs == [(MovementResult, [tuple(results[0])])]


def test_dumps_nested_record_unpickles_as_its_type():
    """A record inside a plain value pickles through tuple.__new__ and comes back typed."""
    value = {"line": ReserveLine("sku-1", "dc-1", 3)}
    back = pickle.loads(wire.dumps(value))
    assert back == value and type(back["line"]) is ReserveLine
