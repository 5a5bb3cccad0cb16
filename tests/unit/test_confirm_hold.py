"""ConfirmHold gives a tentative hold (one part of a cross-partition cart) its final expiry."""

from __future__ import annotations

from engine.model import (
    Commit,
    ConfirmHold,
    Expire,
    Outcome,
    Release,
    ReservationState,
    ReservationStatus,
)
from tests.unit.partition_helpers import LOC, NOW, SKU, apply_one, apply_refused, new_state, reserve

TENTATIVE_MS = 5_000
FINAL_MS = NOW + 900_000


def held_tentatively(quantity: int = 3):
    """A partition with a 5-second hold of `quantity` units of SKU at LOC."""
    state = new_state(on_hand=10)
    result = apply_one(state, reserve("cart", (SKU, LOC, quantity), rid="r0.1-x", ttl_seconds=5))
    assert result.status is ReservationStatus.HELD
    return state


def test_confirm_hold_moves_expiry_so_the_tentative_deadline_passes_harmlessly():
    """A confirmed hold survives its tentative deadline and expires at the confirmed instant."""
    state = held_tentatively()
    confirmed = apply_one(state, ConfirmHold("r0.1-x", "cart/confirm", FINAL_MS))
    assert confirmed == (Outcome.OK, "r0.1-x", ReservationState.HELD, "", FINAL_MS)
    assert apply_one(state, Expire(), NOW + TENTATIVE_MS + 1).expired == 0
    assert state.quantities_of(SKU, LOC)["reserved"] == 3
    assert apply_one(state, Expire(), FINAL_MS).expired == 1
    assert state.quantities_of(SKU, LOC)["reserved"] == 0


def test_confirm_hold_unconfirmed_expires_at_tentative_deadline():
    """Without a confirmation the tentative hold is swept at its short deadline."""
    state = held_tentatively()
    assert apply_one(state, Expire(), NOW + TENTATIVE_MS).expired == 1
    assert state.quantities_of(SKU, LOC)["reserved"] == 0


def test_confirm_hold_after_tentative_deadline_is_refused_and_changes_nothing():
    """A confirmation that comes too late finds the hold expired: FAILED_PRECONDITION."""
    state = held_tentatively()
    apply_one(state, Expire(), NOW + TENTATIVE_MS)
    result = apply_refused(state, ConfirmHold("r0.1-x", "cart/confirm", FINAL_MS),
                           NOW + TENTATIVE_MS + 1)
    assert (result.outcome, result.state) == (Outcome.FAILED_PRECONDITION,
                                              ReservationState.EXPIRED)


def test_confirm_hold_unknown_reservation_is_not_found():
    """Confirming a reservation the partition never held answers NOT_FOUND."""
    state = new_state(on_hand=10)
    result = apply_refused(state, ConfirmHold("r0.1-none", "k", FINAL_MS))
    assert result.outcome is Outcome.NOT_FOUND


def test_confirm_hold_retried_returns_first_expiry():
    """A retried cart confirms with a later instant and gets the first confirmation back."""
    state = held_tentatively()
    first = apply_one(state, ConfirmHold("r0.1-x", "cart/confirm", FINAL_MS))
    again = apply_one(state, ConfirmHold("r0.1-x", "cart/confirm", FINAL_MS + 5_000), NOW + 10)
    assert again == first
    assert apply_one(state, Expire(), FINAL_MS).expired == 1


def test_confirm_hold_is_judged_on_the_hold_not_on_its_remembered_answer():
    """A part confirmed, then rolled back, is refused when the same confirmation comes again."""
    state = held_tentatively()
    apply_one(state, ConfirmHold("r0.1-x", "cart/confirm", FINAL_MS))
    apply_one(state, Release("r0.1-x", "cart/rollback"))
    result = apply_refused(state, ConfirmHold("r0.1-x", "cart/confirm", FINAL_MS))
    assert (result.outcome, result.state) == (Outcome.FAILED_PRECONDITION,
                                              ReservationState.RELEASED)


def test_confirm_hold_of_committed_reservation_is_ok():
    """A cart retried after its commit still confirms: the stock stays committed."""
    state = held_tentatively()
    apply_one(state, Commit("r0.1-x", "commit-1"))
    result = apply_one(state, ConfirmHold("r0.1-x", "cart/confirm", FINAL_MS))
    assert (result.outcome, result.state) == (Outcome.OK, ReservationState.COMMITTED)
    assert state.quantities_of(SKU, LOC)["committed"] == 3


def test_confirm_hold_of_released_reservation_is_refused():
    """A rolled-back part cannot be confirmed back to life."""
    state = held_tentatively()
    apply_one(state, Release("r0.1-x", "cart/rollback"))
    result = apply_refused(state, ConfirmHold("r0.1-x", "cart/confirm", FINAL_MS))
    assert (result.outcome, result.state) == (Outcome.FAILED_PRECONDITION,
                                              ReservationState.RELEASED)

