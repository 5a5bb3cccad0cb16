"""Idempotency, sequence numbers, reads and batches of the partition state machine."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.config import PartitionConfig
from engine.model import (
    Commit,
    Expire,
    GetAvailability,
    ItemRef,
    MovementCode,
    Outcome,
    Release,
    ReservationState,
    ReservationStatus,
)
from engine.model import MovementType as MT
from engine.partition_state import PartitionState
from tests.unit.partition_helpers import (
    LOC,
    NOW,
    PATHS,
    SKEW_MS,
    SKU,
    apply_one,
    apply_refused,
    ats,
    held,
    move,
    new_state,
    new_state_with,
    observable,
    path_config,
    qty,
    reserve,
)

# ---- idempotency --------------------------------------------------------------------------

RETRIED = {  # kind -> (first command, then the same key with another payload)
    "reserve": (reserve("k", (SKU, LOC, 2)), reserve("k", (SKU, LOC, 3))),
    "commit": (Commit("res-hold", "k"), Commit("res-hold", "k", "order-2")),
    "release": (Release("res-hold", "k"), Release("res-hold", "k", "other reason")),
    "movement": (move("k", MT.SALE, 1), move("k", MT.SALE, 2)),
    "commit-after-reserve": (reserve("k", (SKU, LOC, 2)), Commit("res-hold", "k")),
    "movement-after-reserve": (reserve("k", (SKU, LOC, 2)), move("k", MT.SALE, 1)),
}


@pytest.mark.parametrize("kind", list(RETRIED)[:4])
def test_idempotency_same_key_same_payload_returns_first_result(kind):
    """A retry answers the first result again and changes nothing."""
    state = new_state(on_hand=10)
    held(state, 1)
    command = RETRIED[kind][0]
    first = apply_one(state, command)
    assert first.outcome is Outcome.OK
    again = apply_refused(state, command, NOW + 1)
    if kind == "movement":
        assert (again.code, again.message) == (MovementCode.DUPLICATE, "already applied")
        assert again._replace(code=first.code, message="") == first
    else:
        assert again == first


@pytest.mark.parametrize("kind", list(RETRIED))
def test_idempotency_same_key_other_payload_is_a_conflict(kind):
    """The same key with another payload is refused with IDEMPOTENCY_CONFLICT."""
    state = new_state(on_hand=10)
    held(state, 1)
    first, other = RETRIED[kind]
    apply_one(state, first)
    result = apply_refused(state, other)
    assert result.outcome is Outcome.IDEMPOTENCY_CONFLICT
    if kind.startswith("movement"):
        assert result.code is MovementCode.REJECTED


@PATHS
def test_idempotency_rejected_reserve_stays_rejected_after_stock_arrives(vectorized):
    """A retried Reserve answers its first REJECTED result even once stock would allow it."""
    state = new_state(vectorized, on_hand=1)
    first = apply_refused(state, reserve("k1", (SKU, LOC, 5)))
    apply_one(state, move("rcv", MT.RECEIPT, 10))
    again = apply_refused(state, reserve("k1", (SKU, LOC, 5), rid="res-retry"))
    assert again == first
    assert again.status is ReservationStatus.REJECTED


@PATHS
def test_idempotency_reserve_retry_with_a_new_reservation_id_returns_first_hold(vectorized):
    """The reservation id is minted per attempt, so a retry minting another id is the same."""
    state = new_state(vectorized, on_hand=10)
    first = apply_one(state, reserve("k1", (SKU, LOC, 5)))
    again = apply_refused(state, reserve("k1", (SKU, LOC, 5), rid="res-retry"))
    assert (again, qty(state, "reserved")) == (first, 5)


@pytest.mark.parametrize("expire_at_ms, forgotten", [(NOW + 1000, False), (NOW + 1001, True),
                                                     (None, False)],
                         ids=["window-end", "past-window", "no-expire-run"])
def test_idempotency_keys_forgotten_after_window_once_expire_runs(expire_at_ms, forgotten):
    """Keys older than idempotency_window_ms are forgotten by the next Expire, not before."""
    state = new_state_with(PartitionConfig(idempotency_window_ms=1000), on_hand=10)
    apply_one(state, move("e1", MT.SALE, 1))
    if expire_at_ms is not None:
        apply_one(state, Expire(), expire_at_ms)
    retry = apply_one(state, move("e1", MT.SALE, 1), NOW + 5000)
    assert retry.code is (MovementCode.APPLIED if forgotten else MovementCode.DUPLICATE)
    assert qty(state, "on_hand") == (8 if forgotten else 9)


@PATHS
def test_idempotency_keys_beyond_the_bound_are_forgotten_oldest_first(vectorized):
    """With idempotency_keys_max keys remembered, each new key forgets the oldest."""
    config = path_config(vectorized, idempotency_keys_max=3)
    state = new_state_with(config, on_hand=10)
    state.apply([reserve(f"k{n}", (SKU, LOC, 1)) for n in range(5)], NOW)
    assert sorted(state.idempotency.entries) == ["k2", "k3", "k4"]
    assert apply_one(state, reserve("k2", (SKU, LOC, 1))).reservation_id == "res-k2"
    assert apply_one(state, reserve("k0", (SKU, LOC, 1))).outcome is Outcome.INVALID


# ---- sequence numbers ---------------------------------------------------------------------

SEQUENCED = [  # (id, command, how many sequence numbers it takes)
    ("reserve-held", reserve("new", (SKU, LOC, 1)), 1),
    ("reserve-rejected", reserve("new", (SKU, LOC, 99)), 1),
    ("reserve-invalid-id", reserve("new", (SKU, LOC, 1), rid="res-hold"), 1),
    ("reserve-retry", reserve("hold", (SKU, LOC, 2)), 1),
    ("reserve-conflict", reserve("hold", (SKU, LOC, 3)), 1),
    ("commit", Commit("res-hold", "c"), 1),
    ("commit-not-found", Commit("res-ghost", "c"), 1),
    ("release-not-found", Release("res-ghost", "r"), 1),
    ("expire", Expire(), 1),
    ("movement", move("e9", MT.SALE, 1), 1),
    ("movement-duplicate", move("e0", MT.SALE, 1), 1),
    ("movement-conflict", move("e0", MT.SALE, 2), 1),
    ("movement-rejected", move("e9", MT.SALE, 1, occurred_at_unix_ms=NOW + 2 * SKEW_MS), 1),
    ("get-availability", GetAvailability((ItemRef(SKU, LOC),)), 0),
]


@pytest.mark.parametrize("command, taken", [case[1:] for case in SEQUENCED],
                         ids=[case[0] for case in SEQUENCED])
def test_seq_advances_once_per_command_except_reads(command, taken):
    """Every command but GetAvailability takes one sequence number, refused or not."""
    state = new_state(on_hand=10)
    held(state, 2)
    apply_one(state, move("e0", MT.SALE, 1))
    before = state.seq
    apply_one(state, command)
    assert state.seq == before + taken


# ---- GetAvailability ----------------------------------------------------------------------


def test_get_availability_reads_known_and_unknown_items():
    """Known rows answer their quantities and ATS; unknown ones answer zeros, known=False."""
    state = new_state(on_hand=20, reserved=1, committed=2, safety_stock=3, damaged=4,
                      quality_control=5, incoming=6)
    before = observable(state)
    result = apply_one(state, GetAvailability((ItemRef(SKU, LOC), ItemRef("ghost", LOC))))
    assert result.outcome is Outcome.OK
    assert result.items[0] == (SKU, LOC, 20, 1, 2, 3, 4, 5, 6, 20 - 1 - 2 - 3 - 4 - 5, True,
                               None, 0)
    assert result.items[1] == ("ghost", LOC, 0, 0, 0, 0, 0, 0, 0, 0, False, None, 0)
    assert (observable(state), state.seq) == (before, 0)


# ---- batches ------------------------------------------------------------------------------


@PATHS
def test_batch_of_mixed_commands_answers_in_order(vectorized):
    """Results come back one per command, in batch order, each seeing the ones before it."""
    state = new_state(vectorized, on_hand=3)
    batch = [reserve("a", (SKU, LOC, 2)), reserve("b", (SKU, LOC, 2)),
             move("rcv", MT.RECEIPT, 5), reserve("c", (SKU, LOC, 2)), Commit("res-a", "ca"),
             GetAvailability((ItemRef(SKU, LOC),)), Release("res-c", "rc"), Expire(),
             reserve("a", (SKU, LOC, 2))]
    results = list(state.apply(batch, NOW))
    assert [getattr(r, "status", None) for r in results[:4]] == [
        ReservationStatus.HELD, ReservationStatus.REJECTED, None, ReservationStatus.HELD]
    assert results[2].code is MovementCode.APPLIED
    assert results[4].state is ReservationState.COMMITTED
    assert results[5].items[0].available_to_sell == 8 - 2 - 2
    assert (results[6].state, results[7].expired, results[8]) == (
        ReservationState.RELEASED, 0, results[0])
    assert (qty(state, "committed"), qty(state, "reserved"), state.seq) == (2, 0, 8)


@PATHS
def test_batch_repeated_keys_and_ids_inside_a_run(vectorized):
    """Inside one batch a repeated key is a retry or a conflict, a repeated id is INVALID."""
    state = new_state(vectorized, on_hand=10)
    batch = [reserve("k1", (SKU, LOC, 2)), reserve("k1", (SKU, LOC, 3)),
             reserve("k1", (SKU, LOC, 2), rid="res-other"), reserve("k2", (SKU, LOC, 1)),
             reserve("k3", (SKU, LOC, 1), rid="res-k2")]
    results = list(state.apply(batch, NOW))
    assert [r.outcome for r in results] == [Outcome.OK, Outcome.IDEMPOTENCY_CONFLICT, Outcome.OK,
                                            Outcome.OK, Outcome.INVALID]
    assert results[2] == results[0]
    assert (qty(state, "reserved"), state.seq) == (3, 5)


def test_batch_results_do_not_depend_on_the_callers_list():
    """A caller reusing its batch list after apply does not change what the partition remembers."""
    state = new_state(on_hand=10)
    batch = [reserve(f"k{n}", (SKU, LOC, 1)) for n in range(3)]
    first = list(state.apply(batch, NOW))
    batch.clear()
    assert apply_one(state, reserve("k1", (SKU, LOC, 1))) == first[1]
    assert apply_one(state, Commit("res-k1", "c1")).outcome is Outcome.OK


@given(st.lists(st.tuples(st.integers(0, 2), st.integers(1, 4), st.booleans(),
                          st.sampled_from([0, 30])), min_size=1, max_size=40),
       st.lists(st.integers(-2, 12), min_size=2, max_size=2))
def test_batch_reserve_run_matches_one_by_one(requests, stock):
    """A run of single-line Reserves applied with numpy answers as applying them one by one."""
    skus = ["sku-0", "sku-1", "sku-2"]
    batch = [reserve(f"k{n}", (skus[row], LOC, units), allow_partial=partial, ttl_seconds=ttl)
             for n, (row, units, partial, ttl) in enumerate(requests)]
    answers = []
    for vectorized in (True, False):
        state = PartitionState(path_config(vectorized))
        state.load_items(skus[:2], [LOC] * 2, stock)  # sku-2 stays unknown
        answers.append((list(state.apply(batch, NOW)), observable(state), state.seq))
    assert answers[0] == answers[1]


@PATHS
def test_batch_of_reserves_on_a_hot_sku_grants_exactly_the_stock(vectorized):
    """1,000 single-unit Reserves on 600 units hold the first 600 and reject the rest."""
    state = new_state(vectorized, on_hand=600)
    results = list(state.apply([reserve(f"k{n}", (SKU, LOC, 1)) for n in range(1000)], NOW))
    statuses = [r.status for r in results]
    assert statuses == [ReservationStatus.HELD] * 600 + [ReservationStatus.REJECTED] * 400
    assert [r.lines[0].available_after for r in results[598:602]] == [1, 0, 0, 0]
    assert (qty(state, "reserved"), ats(state), len(state.reservations)) == (600, 0, 600)
    assert state.seq == 1000
