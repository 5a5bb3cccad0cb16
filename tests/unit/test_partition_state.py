"""The partition state machine follows DESIGN section 4, and a refused command changes nothing."""

from __future__ import annotations

import pytest

from engine.config import PartitionConfig
from engine.model import (
    QUANTITIES,
    Commit,
    Expire,
    LineCode,
    MovementCode,
    Outcome,
    Release,
    ReservationState,
    ReservationStatus,
)
from engine.model import MovementType as MT
from engine.partition_state import PartitionState
from tests.unit.partition_helpers import (
    DEST,
    LOC,
    NOW,
    PATHS,
    SKEW_MS,
    SKU,
    apply_one,
    apply_refused,
    ats,
    committed,
    held,
    move,
    new_state,
    new_state_with,
    observable,
    path_config,
    qty,
    reserve,
)

# ---- Reserve ------------------------------------------------------------------------------


HELD, PARTIAL, REJECTED = (ReservationStatus.HELD, ReservationStatus.PARTIALLY_HELD,
                           ReservationStatus.REJECTED)
LINE_OK, SHORT, UNKNOWN = LineCode.OK, LineCode.INSUFFICIENT_AVAILABLE, LineCode.UNKNOWN_ITEM
SINGLE_LINES = [  # (id, quantities, line, allow_partial, status, (requested, reserved,
    #                code, available_after) of the line result)
    ("held", {"on_hand": 10}, (SKU, LOC, 4), False, HELD, (4, 4, LINE_OK, 6)),
    ("held-exactly-all", {"on_hand": 10}, (SKU, LOC, 10), False, HELD, (10, 10, LINE_OK, 0)),
    ("insufficient", {"on_hand": 3}, (SKU, LOC, 4), False, REJECTED, (4, 0, SHORT, 3)),
    ("unknown-sku", {"on_hand": 9}, ("nope", LOC, 1), True, REJECTED, (1, 0, UNKNOWN, 0)),
    ("unknown-location", {"on_hand": 9}, (SKU, "nowhere", 1), True, REJECTED,
     (1, 0, UNKNOWN, 0)),
    ("partial", {"on_hand": 3}, (SKU, LOC, 5), True, PARTIAL, (5, 3, SHORT, 0)),
    ("partial-nothing-left", {"on_hand": 5, "reserved": 5}, (SKU, LOC, 3), True, REJECTED,
     (3, 0, SHORT, 0)),
    ("negative-ats", {"on_hand": -3}, (SKU, LOC, 1), True, REJECTED, (1, 0, SHORT, -3)),
    *[(f"{name}-{case}", {"on_hand": 10, name: 4}, (SKU, LOC, wanted), False, status,
       (wanted, granted, code, 6 - granted))
      for name in ("safety_stock", "damaged", "quality_control", "committed")
      for case, wanted, status, granted, code in (("short", 7, REJECTED, 0, SHORT),
                                                  ("fits", 6, HELD, 6, LINE_OK))],
]


@PATHS
@pytest.mark.parametrize("quantities, line, allow_partial, status, line_result",
                         [case[1:] for case in SINGLE_LINES], ids=[c[0] for c in SINGLE_LINES])
def test_reserve_single_line(vectorized, quantities, line, allow_partial, status, line_result):
    """A one-line Reserve holds up to available_to_sell, and its line result says why not more."""
    state = new_state(vectorized, **quantities)
    before = observable(state)
    result = apply_one(state, reserve("k1", line, allow_partial=allow_partial))
    assert (result.outcome, result.status) == (Outcome.OK, status)
    assert result.lines == ((line[0], line[1], *line_result, 0),)  # 0 backordered
    if status is REJECTED:
        assert (result.reservation_id, result.expires_at_unix_ms) == ("", 0)
        assert observable(state) == before
        return
    assert result.reservation_id == "res-k1"
    assert qty(state, "reserved") == quantities.get("reserved", 0) + line_result[1]
    assert state.reservations.get("res-k1").quantities == (line_result[1],)


@pytest.mark.parametrize("allow_partial, wanted, status, granted", [
    (False, (5, 1), HELD, (5, 1)),
    (False, (5, 3), REJECTED, (0, 0)),
    (False, (4, 0), REJECTED, (0, 0)),  # a wanted 0 stands for a line of an unknown SKU
    (True, (5, 1), HELD, (5, 1)),
    (True, (12, 1), PARTIAL, (10, 1)),
    (True, (12, 3), PARTIAL, (10, 2)),
    (True, (4, 0), PARTIAL, (4, 0)),
], ids=["all-or-nothing-fits", "all-or-nothing-rejects-whole-cart", "all-or-nothing-unknown",
        "partial-fits", "partial-one-short", "partial-both-short", "partial-one-unknown"])
def test_reserve_cart(allow_partial, wanted, status, granted):
    """A cart is held whole or not at all, unless allow_partial lets each line take what it can."""
    state = new_state(on_hand=10)
    state.load_items(["sku-2"], [LOC], [2])
    before = observable(state)
    second = ("sku-2", LOC, wanted[1]) if wanted[1] else ("ghost", LOC, 1)
    command = reserve("k1", (SKU, LOC, wanted[0]), second, allow_partial=allow_partial)
    result = apply_one(state, command)
    assert result.status is status
    assert tuple(line.reserved for line in result.lines) == granted
    codes = [LINE_OK if wanted[0] <= 10 else SHORT,
             UNKNOWN if not wanted[1] else LINE_OK if wanted[1] <= 2 else SHORT]
    assert [line.code for line in result.lines] == codes
    if status is REJECTED:
        assert observable(state) == before
    else:
        assert state.reservations.get("res-k1").quantities == tuple(g for g in granted if g)
        assert qty(state, "reserved") == granted[0]


@PATHS
@pytest.mark.parametrize("ttl_s, expected_s", [(0, 120), (30, 30)], ids=["default", "explicit"])
def test_reserve_ttl_sets_expiry(vectorized, ttl_s, expected_s):
    """ttl_seconds 0 means the partition's hold_ttl_seconds_default."""
    state = new_state_with(path_config(vectorized, hold_ttl_seconds_default=120), on_hand=5)
    result = apply_one(state, reserve("k1", (SKU, LOC, 1), ttl_seconds=ttl_s))
    assert result.expires_at_unix_ms == NOW + 1000 * expected_s
    assert state.reservations.get("res-k1").expires_at_ms == NOW + 1000 * expected_s


@pytest.mark.parametrize("then", ["held", "committed", "released"])
def test_reserve_reused_reservation_id_is_invalid(then):
    """A Reserve naming a reservation id the partition still knows is refused as INVALID."""
    state = new_state(on_hand=10)
    rid = held(state, 2)
    if then != "held":
        apply_one(state, (Commit if then == "committed" else Release)(rid, "second"))
    result = apply_refused(state, reserve("other-key", (SKU, LOC, 1), rid=rid))
    assert (result.outcome, result.status) == (Outcome.INVALID, None)


# ---- Commit and Release -------------------------------------------------------------------

T_LATER = NOW + 60_000
COMMITTED, RELEASED = ReservationState.COMMITTED, ReservationState.RELEASED
EXPIRED, SHIPPED = ReservationState.EXPIRED, ReservationState.SHIPPED
OK, PRECONDITION, NOT_FOUND = Outcome.OK, Outcome.FAILED_PRECONDITION, Outcome.NOT_FOUND


def reservation_in(state: PartitionState, reached: str) -> str:
    """A 4-unit reservation driven to `reached` by T_LATER, or an id nobody minted."""
    if reached == "unknown":
        return "res-ghost"
    rid = held(state, 4, ttl_seconds=60 if reached == "expired" else 0)
    steps = {"committed": [Commit(rid, "c0")], "released": [Release(rid, "r0")],
             "expired": [Expire()],
             "shipped": [Commit(rid, "c0"), move("s0", MT.SHIPMENT, 4, reservation_id=rid)]}
    state.apply(steps.get(reached, []), T_LATER)
    return rid


def check_reservation_command(kind, reached, outcome, answered, after) -> None:
    """Apply `kind` to a reservation in `reached`; `after` is (reserved, committed), or None
    when the command must change nothing."""
    state = new_state(on_hand=10)
    rid = reservation_in(state, reached)
    before = observable(state)
    result = apply_one(state, kind(rid, "again", *(("order-1",) if kind is Commit else ())),
                       T_LATER)
    assert (result.outcome, result.reservation_id, result.state) == (outcome, rid, answered)
    if after is None:
        assert observable(state) == before
    else:
        quantities = (qty(state, "reserved"), qty(state, "committed"), ats(state))
        assert quantities == (*after, 10 - sum(after))
    if answered is not None:
        assert state.reservations.get(rid).state is answered


@pytest.mark.parametrize("reached, outcome, answered, after", [
    ("held", OK, COMMITTED, (0, 4)),
    ("committed", OK, COMMITTED, None),
    ("shipped", OK, SHIPPED, None),
    ("released", PRECONDITION, RELEASED, None),
    ("expired", PRECONDITION, EXPIRED, None),
    ("unknown", NOT_FOUND, None, None),
], ids=["held", "twice", "shipped", "released", "expired", "unknown"])
def test_commit_per_reservation_state(reached, outcome, answered, after):
    """Commit moves a hold to committed, repeats harmlessly, and refuses finished ones."""
    check_reservation_command(Commit, reached, outcome, answered, after)


@pytest.mark.parametrize("reached, outcome, answered, after", [
    ("held", OK, RELEASED, (0, 0)),
    ("committed", OK, RELEASED, (0, 0)),
    ("released", OK, RELEASED, None),
    ("expired", OK, EXPIRED, None),
    ("shipped", PRECONDITION, SHIPPED, None),
    ("unknown", NOT_FOUND, None, None),
], ids=["held", "order-cancelled", "twice", "expired", "shipped", "unknown"])
def test_release_per_reservation_state(reached, outcome, answered, after):
    """Release frees held or committed units, repeats harmlessly, and refuses shipped ones."""
    check_reservation_command(Release, reached, outcome, answered, after)


def test_commit_past_due_hold_not_yet_swept_expires_it():
    """A hold past its due time is expired on touch: the Commit is refused, its units freed."""
    state = new_state(on_hand=10)
    rid = held(state, 4, ttl_seconds=60)
    rid2 = held(state, 3, key="hold-2", ttl_seconds=60)
    assert apply_one(state, Commit(rid, "early"), NOW + 59_999).outcome is Outcome.OK
    result = apply_one(state, Commit(rid2, "late"), NOW + 60_000)
    assert (result.outcome, result.state) == (PRECONDITION, EXPIRED)
    assert (qty(state, "reserved"), qty(state, "committed")) == (0, 4)
    assert apply_one(state, Expire(), NOW + 60_000).expired == 0


# ---- Expire -------------------------------------------------------------------------------


def test_expire_sweeps_exactly_the_holds_due():
    """Expire frees the holds due at now_ms, leaves later holds and orders, and counts."""
    state = new_state(on_hand=10)
    soon = held(state, 1, key="soon", ttl_seconds=10)
    later = held(state, 2, key="later", ttl_seconds=20)
    order = committed(state, 3, key="order", ttl_seconds=10)
    assert apply_refused(state, Expire(), NOW + 9_999).expired == 0
    assert apply_one(state, Expire(), NOW + 10_000).expired == 1
    states = [state.reservations.get(rid).state for rid in (soon, later, order)]
    assert states == [ReservationState.EXPIRED, ReservationState.HELD, ReservationState.COMMITTED]
    assert (qty(state, "reserved"), qty(state, "committed")) == (2, 3)
    assert apply_refused(state, Expire(), NOW + 19_999).expired == 0


def test_expire_forgets_finished_reservations_after_their_window():
    """Finished reservations answer until finished_reservations_window_ms, then are unknown."""
    config = PartitionConfig(finished_reservations_window_ms=1000)
    state = new_state_with(config, on_hand=10)
    rid = held(state, 1)
    apply_one(state, Release(rid, "rel"))
    apply_one(state, Expire(), NOW + 1000)
    assert apply_one(state, Commit(rid, "c1"), NOW + 1000).outcome is PRECONDITION
    apply_one(state, Expire(), NOW + 1001)
    assert apply_one(state, Commit(rid, "c2"), NOW + 1001).outcome is NOT_FOUND


def test_expire_reused_reservation_id_is_not_swept_at_the_old_due_time():
    """Once a finished reservation is forgotten, a new hold under its id keeps its own TTL."""
    state = new_state_with(PartitionConfig(finished_reservations_window_ms=0), on_hand=10)
    rid = held(state, 1, ttl_seconds=900)
    apply_one(state, Release(rid, "rel"))
    apply_one(state, Expire(), NOW + 1)  # forgets the released reservation
    assert held(state, 1, key="again", rid=rid, ttl_seconds=3600) == rid
    assert apply_one(state, Expire(), NOW + 900_000).expired == 0
    assert state.reservations.get(rid).state is ReservationState.HELD


# ---- movements ----------------------------------------------------------------------------

MOVEMENTS = [  # (id, quantities before, type, quantity, quantities after, note in message)
    ("receipt-unexpected", {"on_hand": 10}, MT.RECEIPT, 5, {"on_hand": 15}, ""),
    ("receipt-expected", {"incoming": 8}, MT.RECEIPT, 5, {"on_hand": 5, "incoming": 3}, ""),
    ("receipt-incoming-floored", {"incoming": 3}, MT.RECEIPT, 5,
     {"on_hand": 5, "incoming": 0}, ""),
    ("inbound-expected", {"incoming": 2}, MT.INBOUND_EXPECTED, 5, {"incoming": 7}, ""),
    ("adjustment-up", {"on_hand": 10}, MT.ADJUSTMENT, 3, {"on_hand": 13}, ""),
    ("adjustment-down", {"on_hand": 10}, MT.ADJUSTMENT, -4, {"on_hand": 6}, ""),
    ("sale", {"on_hand": 10}, MT.SALE, 3, {"on_hand": 7}, ""),
    ("sale-past-zero", {"on_hand": 2, "reserved": 2}, MT.SALE, 5, {"on_hand": -3}, ""),
    ("shipment-naming-nothing", {"on_hand": 10, "committed": 4}, MT.SHIPMENT, 3,
     {"on_hand": 7}, "3 units matched no committed reservation"),
    ("return-received", {"on_hand": 1}, MT.RETURN_RECEIVED, 2,
     {"on_hand": 3, "quality_control": 2}, ""),
    ("return-restocked", {"on_hand": 5, "quality_control": 4}, MT.RETURN_RESTOCKED, 3,
     {"quality_control": 1}, ""),
    ("return-restocked-floored", {"on_hand": 5, "quality_control": 2}, MT.RETURN_RESTOCKED, 5,
     {"quality_control": 0}, "quality_control floored at 0 (3 units"),
    ("return-scrapped", {"on_hand": 5, "quality_control": 4}, MT.RETURN_SCRAPPED, 3,
     {"on_hand": 2, "quality_control": 1}, ""),
    ("damage", {"on_hand": 5}, MT.DAMAGE, 2, {"damaged": 2}, ""),
    ("transfer-in", {"incoming": 5}, MT.TRANSFER_IN, 3, {"on_hand": 3, "incoming": 2}, ""),
    ("transfer-in-floored", {"incoming": 1}, MT.TRANSFER_IN, 3,
     {"on_hand": 3, "incoming": 0}, "incoming floored at 0"),
    ("safety-stock-set", {"on_hand": 5, "safety_stock": 4}, MT.SAFETY_STOCK_SET, 1,
     {"safety_stock": 1}, ""),
    ("safety-stock-lifted", {"on_hand": 5, "safety_stock": 4}, MT.SAFETY_STOCK_SET, 0,
     {"safety_stock": 0}, ""),
    ("cycle-count-fresh", {"on_hand": 5, "reserved": 2}, MT.CYCLE_COUNT, 9, {"on_hand": 9}, ""),
]


@pytest.mark.parametrize("before, kind, quantity, after, note",
                         [case[1:] for case in MOVEMENTS], ids=[case[0] for case in MOVEMENTS])
def test_movement_changes_quantities_per_design_table(before, kind, quantity, after, note):
    """Each movement type changes exactly the quantities DESIGN section 4's table names."""
    state = new_state(**before)
    expected = {**dict.fromkeys(QUANTITIES, 0), **before, **after}
    result = apply_one(state, move("e1", kind, quantity))
    assert (result.outcome, result.event_id, result.code) == (Outcome.OK, "e1",
                                                              MovementCode.APPLIED)
    assert state.quantities_of(SKU, LOC) == expected
    assert note in result.message
    assert bool(result.message) == bool(note)


@pytest.mark.parametrize("kind", list(MT), ids=[kind.name for kind in MT])
def test_movement_creates_unknown_sku_location(kind):
    """A movement for a SKU-location never seen creates it rather than dropping the event."""
    state = new_state(on_hand=10)
    result = apply_one(state, move("e1", kind, 2, sku="new-sku", destination_location=DEST))
    assert result.code is MovementCode.APPLIED
    assert state.query([("new-sku", LOC)]).items[0].known


def test_movement_transfer_out_moves_units_to_destination_incoming():
    """TRANSFER_OUT takes on_hand at the source and expects it as incoming at the destination."""
    state = new_state(on_hand=10)
    apply_one(state, move("t1", MT.TRANSFER_OUT, 4, destination_location=DEST))
    assert qty(state, "on_hand") == 6
    assert state.quantities_of(SKU, DEST) == {**dict.fromkeys(QUANTITIES, 0), "incoming": 4}
    apply_one(state, move("t2", MT.TRANSFER_IN, 4, location=DEST))
    assert (qty(state, "on_hand", location=DEST), qty(state, "incoming", location=DEST)) == (4, 0)


@pytest.mark.parametrize("name_by", ["reservation_id", "order_ref"])
def test_movement_shipment_ships_the_named_reservation(name_by):
    """A SHIPMENT naming a reservation or its order takes committed units and ships it fully."""
    state = new_state(on_hand=10)
    rid = committed(state, 5, order_ref="order-7")
    other = committed(state, 2, key="other", order_ref="order-8")
    ref = {"reservation_id": rid} if name_by == "reservation_id" else {"order_ref": "order-7"}
    first = apply_one(state, move("s1", MT.SHIPMENT, 3, **ref))
    assert (first.code, first.message) == (MovementCode.APPLIED, "")
    assert (qty(state, "on_hand"), qty(state, "committed")) == (7, 4)
    assert state.reservations.get(rid).state is ReservationState.COMMITTED
    apply_one(state, move("s2", MT.SHIPMENT, 2, **ref))
    assert (qty(state, "on_hand"), qty(state, "committed")) == (5, 2)
    assert state.reservations.get(rid).state is ReservationState.SHIPPED
    assert state.reservations.get(other).state is ReservationState.COMMITTED


def test_movement_shipment_of_uncommitted_hold_leaves_committed():
    """A SHIPMENT naming a hold that is not committed takes on_hand only, and says so."""
    state = new_state(on_hand=10)
    rid = held(state, 4)
    result = apply_one(state, move("s1", MT.SHIPMENT, 4, reservation_id=rid))
    assert "4 units matched no committed reservation" in result.message
    assert (qty(state, "on_hand"), qty(state, "reserved"), qty(state, "committed")) == (6, 4, 0)


def test_movement_shipment_by_order_ships_its_reservations_in_commit_order():
    """A SHIPMENT naming an order fills its committed reservations oldest commit first."""
    state = new_state(on_hand=10)
    first = committed(state, 3, key="a", order_ref="order-1")
    second = held(state, 2, key="b", order_ref="order-0")
    apply_one(state, Commit(second, "commit-b", "order-1"))  # the order is named at commit
    apply_one(state, move("s1", MT.SHIPMENT, 4, order_ref="order-1"))
    assert [state.reservations.get(rid).state for rid in (first, second)] == [
        ReservationState.SHIPPED, ReservationState.COMMITTED]
    result = apply_one(state, move("s2", MT.SHIPMENT, 2, order_ref="order-1"))
    assert "1 units matched no committed reservation" in result.message
    assert (qty(state, "on_hand"), qty(state, "committed")) == (4, 0)
    assert state.reservations.get(second).state is ReservationState.SHIPPED


def test_release_partially_shipped_order_frees_only_unshipped_units():
    """Cancelling an order after part of it shipped frees the committed units still here."""
    state = new_state(on_hand=10)
    rid = committed(state, 5)
    apply_one(state, move("s1", MT.SHIPMENT, 2, reservation_id=rid))
    assert apply_one(state, Release(rid, "cancel")).state is ReservationState.RELEASED
    assert (qty(state, "on_hand"), qty(state, "committed"), ats(state)) == (8, 0, 8)


# ---- CYCLE_COUNT as of occurred_at --------------------------------------------------------

COUNT_AT = NOW - 60_000  # the instant the store counted; the count arrives at NOW


def counted(state: PartitionState, quantity: int, at_ms: int = COUNT_AT, event_id: str = "c1"):
    return apply_one(state, move(event_id, MT.CYCLE_COUNT, quantity, occurred_at_unix_ms=at_ms))


@pytest.mark.parametrize("sale_at_ms, applied_at_ms, on_hand, note", [
    (COUNT_AT + 1, NOW - 30_000, 18, "-2 units moved after the count"),
    (COUNT_AT + 1, COUNT_AT - 30_000, 18, "-2 units moved after the count"),
    (COUNT_AT, NOW - 30_000, 20, ""),
    (COUNT_AT - 1, NOW - 30_000, 20, ""),
], ids=["sale-after-count-stays", "sale-dated-ahead-by-its-source-stays",
        "sale-at-count-absorbed", "sale-before-count-absorbed"])
def test_cycle_count_as_of_occurred_at(sale_at_ms, applied_at_ms, on_hand, note):
    """A count sets on_hand as of its instant; a sale applied earlier but after it stays on top."""
    state = new_state(on_hand=10)
    apply_one(state, move("pos-1", MT.SALE, 2, occurred_at_unix_ms=sale_at_ms), applied_at_ms)
    result = counted(state, 20)
    assert (result.code, result.message) == (MovementCode.APPLIED, note)
    assert qty(state, "on_hand") == on_hand


def test_cycle_count_older_than_an_applied_count_is_superseded():
    """A count as of an earlier instant than one already applied changes nothing."""
    state = new_state(on_hand=10)
    counted(state, 20, at_ms=COUNT_AT + 10, event_id="newer")
    apply_one(state, move("pos-1", MT.SALE, 1))
    result = apply_refused(state, move("older", MT.CYCLE_COUNT, 50, occurred_at_unix_ms=COUNT_AT))
    assert result.code is MovementCode.APPLIED
    assert "superseded" in result.message
    assert qty(state, "on_hand") == 19


def test_cycle_count_older_than_retained_history_is_rejected():
    """A count the movement ring cannot re-base exactly is REJECTED instead of guessed."""
    state = new_state_with(PartitionConfig(movement_history_entries=4), on_hand=10)
    for n in range(5):
        apply_one(state, move(f"pos-{n}", MT.SALE, 1))
    result = apply_refused(state, move("c1", MT.CYCLE_COUNT, 50, occurred_at_unix_ms=NOW - 1000))
    assert result.code is MovementCode.REJECTED
    assert "predates the movement history" in result.message
    assert qty(state, "on_hand") == 5


def test_cycle_count_after_forgotten_history_is_applied():
    """Forgotten entries applied well before the count instant do not stop a count."""
    state = new_state_with(PartitionConfig(movement_history_entries=4), on_hand=10)
    for n in range(5):
        apply_one(state, move(f"pos-{n}", MT.SALE, 1), NOW - 10 * SKEW_MS)
    assert counted(state, 30, at_ms=NOW - 1000).code is MovementCode.APPLIED
    assert qty(state, "on_hand") == 30


def test_cycle_count_absorbs_sale_that_arrives_after_the_count():
    """A sale that occurred before an applied count but arrives later is already counted."""
    state = new_state(on_hand=10)
    counted(state, 20)
    apply_one(state, move("pos-late", MT.SALE, 2, occurred_at_unix_ms=COUNT_AT - 1))
    assert qty(state, "on_hand") == 20


@pytest.mark.parametrize("kind, quantity", [(MT.SALE, 1), (MT.CYCLE_COUNT, 7), (MT.RECEIPT, 3)])
@pytest.mark.parametrize("ahead_ms, code", [(SKEW_MS, MovementCode.APPLIED),
                                            (SKEW_MS + 1, MovementCode.REJECTED)],
                         ids=["at-skew-limit", "beyond-skew-limit"])
def test_movement_from_the_future_is_rejected(kind, quantity, ahead_ms, code):
    """A movement dated beyond clock_skew_ms_max ahead of the engine clock is REJECTED."""
    state = new_state(on_hand=10)
    before = observable(state)
    result = apply_one(state, move("e1", kind, quantity, occurred_at_unix_ms=NOW + ahead_ms))
    assert result.code is code
    if code is MovementCode.REJECTED:
        assert "ahead of the engine clock" in result.message
        assert observable(state) == before


# ---- counts at one instant, clocks, malformed commands -------------------------------


def test_cycle_count_then_movements_in_the_same_batch_stay_on_top():
    """Movements applied after a count at the same instant are not swallowed by it."""
    state = new_state(on_hand=10)
    state.apply([move("c", MT.CYCLE_COUNT, 25, occurred_at_unix_ms=NOW),
                 move("s", MT.SALE, 3), move("r", MT.RECEIPT, 12)], NOW)
    assert qty(state, "on_hand") == 34


def test_cycle_count_dated_in_the_future_counts_as_of_now():
    """A count claiming a later instant is taken as of now, so later sales still apply."""
    state = new_state(on_hand=10)
    apply_one(state, move("c", MT.CYCLE_COUNT, 25, occurred_at_unix_ms=NOW + 60_000))
    apply_one(state, move("s", MT.SALE, 2), NOW + 1_000)
    assert qty(state, "on_hand") == 23


def test_clock_stepping_back_does_not_reorder_history():
    """A batch stamped earlier than one already applied is applied as of the later time."""
    state = new_state(on_hand=10)
    apply_one(state, move("s1", MT.SALE, 3), NOW + 10_000)
    apply_one(state, move("s2", MT.SALE, 1), NOW)
    apply_one(state, move("c", MT.CYCLE_COUNT, 20, occurred_at_unix_ms=NOW + 5_000),
              NOW + 20_000)
    assert qty(state, "on_hand") == 20 - 3 - 1
    assert state.now_ms == NOW + 20_000


@pytest.mark.parametrize("vectorized", [True, False], ids=["numpy-run", "one-by-one"])
@pytest.mark.parametrize("quantity", [0, -2])
def test_reserve_non_positive_quantity_is_refused(vectorized, quantity):
    """A quantity below 1 that slipped past validation is refused, naming the field."""
    state = new_state(vectorized, on_hand=5)
    result = apply_refused(state, reserve("k", (SKU, LOC, quantity)))
    assert (result.outcome, result.message) == (Outcome.INVALID,
                                                "lines[0].quantity: must be at least 1")


def test_reserve_refused_as_invalid_is_not_remembered():
    """A retry after an INVALID refusal is judged afresh, not answered from memory."""
    state = new_state(on_hand=5)
    held(state, 1, key="first")
    taken = apply_refused(state, reserve("k", (SKU, LOC, 1), rid="res-first"))
    assert taken.outcome is Outcome.INVALID
    assert apply_one(state, reserve("k", (SKU, LOC, 1), rid="res-new")).status is HELD


@pytest.mark.parametrize("kind, quantity", [(MT.DAMAGE, -1), (MT.SALE, 0), (MT.ADJUSTMENT, 0)])
def test_movement_malformed_quantity_is_rejected(kind, quantity):
    """Quantities validation would refuse are rejected by the core too, changing nothing."""
    state = new_state(on_hand=5)
    result = apply_refused(state, move("m", kind, quantity))
    assert result.code is MovementCode.REJECTED and result.message.startswith("quantity:")


def test_movement_past_items_max_is_rejected():
    """A movement naming a new SKU-location when the partition is full changes nothing."""
    state = new_state_with(PartitionConfig(items_max=1), on_hand=5)
    result = apply_refused(state, move("m", MT.RECEIPT, 3, sku="other"))
    assert result.code is MovementCode.REJECTED


def test_movements_creating_items_while_the_table_grows_land_in_the_new_columns():
    """A DAMAGE, INBOUND_EXPECTED or SAFETY_STOCK_SET that creates the row which grows the
    item table writes into the grown columns, not the ones it replaced."""
    from engine.model import Movement
    from engine.model import MovementType as MovementKind
    from engine.partition_state import PartitionState as State

    for kind, column in ((MovementKind.DAMAGE, "damaged"),
                         (MovementKind.INBOUND_EXPECTED, "incoming"),
                         (MovementKind.SAFETY_STOCK_SET, "safety_stock")):
        state = State()
        capacity = state.items.capacity
        state.apply([Movement(f"e{n}", "wms", kind, f"sku-{n}", "dc", 3)
                     for n in range(capacity + 1)], 1_700_000_000_000)
        assert state.items.capacity > capacity
        assert state.quantities_of(f"sku-{capacity}", "dc")[column] == 3, kind
