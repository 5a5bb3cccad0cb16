"""Each submitter's batches enter in the order it numbered them; a lost predecessor delays a
batch at most wait_s, and submitters never wait on each other."""

from __future__ import annotations

import threading
import time

from engine.submitter_order import SubmitterOrder
from tests.unit.waiting import WAIT_S, wait_until

# How long a test watches for something that must not happen.
NOT_HAPPENING_S = 0.2


def enter_in_threads(order: SubmitterOrder, submitter: str, numbers: list[int],
                     entered: list[int]) -> list[threading.Thread]:
    """Start one thread per batch number, each recording its number once let in."""
    def enter(number: int) -> None:
        with order.turn(submitter, number):
            entered.append(number)

    threads = [threading.Thread(target=enter, args=(number,), daemon=True)
               for number in numbers]
    for thread in threads:
        thread.start()
    return threads


def join(threads: list[threading.Thread]) -> None:
    for thread in threads:
        thread.join(WAIT_S)
        assert not thread.is_alive()


def test_first_batches_of_a_new_submitter_enter_in_order_whichever_arrives_first():
    """Batches 2 and 1 of a submitter never seen wait for its batch 0, then all go in order."""
    order, entered = SubmitterOrder(wait_s=WAIT_S), []
    early = enter_in_threads(order, "gateway-1", [2, 1], entered)
    assert not wait_until(lambda: entered, NOT_HAPPENING_S)
    join(early + enter_in_threads(order, "gateway-1", [0], entered))
    assert entered == [0, 1, 2]


def test_later_batch_waits_for_its_predecessor():
    """After batch 0, batch 2 arriving before batch 1 is let in only after batch 1."""
    order, entered = SubmitterOrder(wait_s=WAIT_S), []
    with order.turn("gateway-1", 0):
        entered.append(0)
    early = enter_in_threads(order, "gateway-1", [2], entered)
    assert not wait_until(lambda: entered != [0], NOT_HAPPENING_S)
    join(early + enter_in_threads(order, "gateway-1", [1], entered))
    assert entered == [0, 1, 2]


def test_missing_predecessor_holds_a_batch_at_most_wait_s():
    """A batch whose predecessor never comes enters after wait_s, and so does the late
    predecessor; the batch after them enters at once."""
    wait_s = 0.2
    order = SubmitterOrder(wait_s=wait_s)
    with order.turn("gateway-1", 0):
        pass
    started = time.monotonic()
    with order.turn("gateway-1", 2):
        waited_s = time.monotonic() - started
    assert wait_s * 0.9 <= waited_s < WAIT_S
    started = time.monotonic()
    with order.turn("gateway-1", 1):  # the lost call turns up after all
        pass
    with order.turn("gateway-1", 3):
        pass
    assert time.monotonic() - started < wait_s


def test_distinct_submitters_do_not_wait_on_each_other():
    """While one submitter's batch is inside and its next waits, others enter at once."""
    order = SubmitterOrder(wait_s=WAIT_S)
    inside, leave, entered = threading.Event(), threading.Event(), []

    def first_of_gateway_1() -> None:
        with order.turn("gateway-1", 0):
            inside.set()
            assert leave.wait(WAIT_S)

    holder = threading.Thread(target=first_of_gateway_1, daemon=True)
    holder.start()
    assert inside.wait(WAIT_S)
    waiting = enter_in_threads(order, "gateway-1", [1], entered)
    started = time.monotonic()
    with order.turn("gateway-2", 0), order.turn("gateway-3", 0):
        pass
    with order.turn("gateway-2", 1):
        pass
    assert time.monotonic() - started < WAIT_S / 2
    assert entered == []  # gateway-1's batch 1 still waits for its batch 0
    leave.set()
    join([holder, *waiting])
    assert entered == [1]


def test_batch_with_nothing_unanswered_before_it_enters_at_once_on_a_new_actor():
    """A restarted actor meets a submitter mid-stream: a batch whose submitter has nothing
    older unanswered enters at once, and one sent behind it still waits for it."""
    order, entered = SubmitterOrder(wait_s=WAIT_S), []
    started = time.monotonic()
    with order.turn("gateway-1", 41, oldest=41):
        entered.append(41)
    assert time.monotonic() - started < NOT_HAPPENING_S
    late = _enter_in_thread(order, 43, 42, entered)
    assert not wait_until(lambda: entered != [41], NOT_HAPPENING_S)
    join([late, _enter_in_thread(order, 42, 42, entered)])
    assert entered == [41, 42, 43]


def _enter_in_thread(order: SubmitterOrder, number: int, oldest: int,
                     entered: list[int]) -> threading.Thread:
    def enter() -> None:
        with order.turn("gateway-1", number, oldest):
            entered.append(number)
    thread = threading.Thread(target=enter, daemon=True)
    thread.start()
    return thread
