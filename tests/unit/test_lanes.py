"""A partition lane sends a bounded number of batches at once and queues what arrives meanwhile."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.config import LaneLimits
from engine.model import Unavailable
from gateway.lanes import DeadlineExpired, LaneOverloaded, PartitionLane
from gateway.partitions import PartitionUnavailable

TIMEOUT_S = 5


class FakePartition:
    """An apply_batch that records each call and returns only when the test releases it."""

    def __init__(self) -> None:
        self.batches: list[list] = []
        self.in_flight = 0
        self.in_flight_max = 0
        self._gates: list[asyncio.Future] = []

    async def __call__(self, commands: list) -> list:
        self.batches.append(list(commands))
        self.in_flight += 1
        self.in_flight_max = max(self.in_flight_max, self.in_flight)
        gate = asyncio.get_running_loop().create_future()
        self._gates.append(gate)
        try:
            answer = await gate
        finally:
            self.in_flight -= 1
        if isinstance(answer, Exception):
            raise answer
        return [("result", command) for command in commands] if answer is None else answer

    @property
    def unreleased(self) -> int:
        return sum(not gate.done() for gate in self._gates)

    def release(self, call: int, answer=None) -> None:
        """Let call number `call` return: None answers normally, an exception raises it."""
        self._gates[call].set_result(answer)

    @property
    def sent(self) -> list:
        return [command for batch in self.batches for command in batch]


async def until(predicate) -> None:
    """Yield to the loop until `predicate()` holds, failing after TIMEOUT_S."""
    async def poll():
        while not predicate():
            await asyncio.sleep(0)
    await asyncio.wait_for(poll(), timeout=TIMEOUT_S)


async def settled(tasks) -> list:
    """Each task's result, or the exception it raised, within TIMEOUT_S."""
    return await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), TIMEOUT_S)


def submit_all(lane: PartitionLane, commands, deadline=None) -> list[asyncio.Task]:
    return [asyncio.create_task(lane.submit(command, deadline)) for command in commands]


async def test_submit_idle_lane_sends_batch_of_one():
    """On an idle lane a command goes at once, alone, without waiting for company."""
    fake = FakePartition()
    lane = PartitionLane(fake, LaneLimits(batches_in_flight_max=1))
    task = asyncio.create_task(lane.submit("a"))
    await until(lambda: len(fake.batches) == 1)
    assert fake.batches == [["a"]]
    fake.release(0)
    assert await asyncio.wait_for(task, TIMEOUT_S) == ("result", "a")


async def test_submit_while_in_flight_goes_as_next_batch_in_order():
    """Commands queued behind a call go together as the next call, each caller getting its own."""
    fake = FakePartition()
    lane = PartitionLane(fake, LaneLimits(batches_in_flight_max=1))
    first = asyncio.create_task(lane.submit("a"))
    await until(lambda: len(fake.batches) == 1)
    queued = submit_all(lane, ["b", "c", "d"])
    await until(lambda: lane.queued == 3)
    assert len(fake.batches) == 1
    fake.release(0, answer=[("answer", "a")])
    await until(lambda: len(fake.batches) == 2)
    assert fake.batches[1] == ["b", "c", "d"]
    assert lane.queued == 0
    fake.release(1, answer=[("answer", "b"), ("answer", "c"), ("answer", "d")])
    assert await settled([first, *queued]) == [("answer", c) for c in "abcd"]


async def test_submit_over_batch_cap_splits_queue_in_order():
    """A queue longer than the batch cap goes over several calls, order kept."""
    fake = FakePartition()
    lane = PartitionLane(fake, LaneLimits(batches_in_flight_max=1, batch_commands_max=2))
    tasks = submit_all(lane, ["a"])
    await until(lambda: len(fake.batches) == 1)
    tasks += submit_all(lane, ["b", "c", "d", "e", "f"])
    await until(lambda: lane.queued == 5)
    for call in range(4):
        fake.release(call)
        await until(lambda call=call: len(fake.batches) == call + 2 or lane.queued == 0)
    assert fake.batches == [["a"], ["b", "c"], ["d", "e"], ["f"]]
    assert await settled(tasks) == [("result", c) for c in "abcdef"]


async def test_submit_full_queue_raises_overloaded_and_sends_nothing_extra():
    """Past the queue bound a submit is refused at once and never reaches the partition."""
    fake = FakePartition()
    lane = PartitionLane(fake, LaneLimits(batches_in_flight_max=1, queue_commands_max=2))
    tasks = submit_all(lane, ["a"])
    await until(lambda: len(fake.batches) == 1)
    tasks += submit_all(lane, ["b", "c"])
    await until(lambda: lane.queued == 2)
    with pytest.raises(LaneOverloaded):
        await asyncio.wait_for(lane.submit("d"), TIMEOUT_S)
    assert lane.queued == 2
    fake.release(0)
    await until(lambda: len(fake.batches) == 2)
    fake.release(1)
    assert await settled(tasks) == [("result", c) for c in "abc"]
    assert fake.sent == ["a", "b", "c"]


async def test_submit_expired_deadline_is_not_sent():
    """A command whose deadline passed while queued fails with DeadlineExpired; the rest go."""
    now = [100.0]
    fake = FakePartition()
    lane = PartitionLane(fake, LaneLimits(batches_in_flight_max=1), clock=lambda: now[0])
    first = asyncio.create_task(lane.submit("a"))
    await until(lambda: len(fake.batches) == 1)
    late = asyncio.create_task(lane.submit("late", deadline=101.0))
    others = [asyncio.create_task(lane.submit("b")),
              asyncio.create_task(lane.submit("c", deadline=105.0))]
    await until(lambda: lane.queued == 3)
    now[0] = 102.0
    fake.release(0)
    await until(lambda: len(fake.batches) == 2)
    fake.release(1)
    assert await settled([first, *others]) == [("result", "a"), ("result", "b"), ("result", "c")]
    with pytest.raises(DeadlineExpired):
        await asyncio.wait_for(late, TIMEOUT_S)
    assert "late" not in fake.sent


async def test_submit_expired_deadline_on_idle_lane_makes_no_call():
    """An already expired command on an idle lane fails without any call to the partition."""
    fake = FakePartition()
    lane = PartitionLane(fake, LaneLimits(batches_in_flight_max=1), clock=lambda: 100.0)
    with pytest.raises(DeadlineExpired):
        await asyncio.wait_for(lane.submit("a", deadline=99.0), TIMEOUT_S)
    await asyncio.wait_for(lane.drain(), TIMEOUT_S)
    assert fake.batches == []


async def test_apply_batch_error_fails_that_batch_only():
    """When the partition call raises, its callers get the error and the lane keeps working."""
    fake = FakePartition()
    lane = PartitionLane(fake, LaneLimits(batches_in_flight_max=1))
    failing = submit_all(lane, ["a"])
    await until(lambda: len(fake.batches) == 1)
    failing += submit_all(lane, ["b", "c"])
    await until(lambda: lane.queued == 2)
    fake.release(0)
    await until(lambda: len(fake.batches) == 2)
    boom = ConnectionError("partition down")
    fake.release(1, answer=boom)
    outcomes = await settled(failing)
    assert outcomes[0] == ("result", "a")
    assert outcomes[1] is boom and outcomes[2] is boom
    later = asyncio.create_task(lane.submit("d"))
    await until(lambda: len(fake.batches) == 3)
    fake.release(2)
    assert await asyncio.wait_for(later, TIMEOUT_S) == ("result", "d")


async def test_apply_batch_wrong_result_count_fails_batch_with_runtime_error():
    """A call answering the wrong number of results fails each of its commands, naming counts."""
    fake = FakePartition()
    lane = PartitionLane(fake, LaneLimits(batches_in_flight_max=1))
    tasks = submit_all(lane, ["a"])
    await until(lambda: len(fake.batches) == 1)
    tasks += submit_all(lane, ["b", "c"])
    await until(lambda: lane.queued == 2)
    fake.release(0)
    await until(lambda: len(fake.batches) == 2)
    fake.release(1, answer=[("result", "b")])
    outcomes = await settled(tasks)
    assert outcomes[0] == ("result", "a")
    for outcome in outcomes[1:]:
        assert isinstance(outcome, RuntimeError)
        assert "1 results for 2 commands" in str(outcome)


async def test_cancel_while_queued_is_never_sent():
    """A caller cancelled before its batch forms takes its command out of the queue."""
    fake = FakePartition()
    lane = PartitionLane(fake, LaneLimits(batches_in_flight_max=1))
    first = asyncio.create_task(lane.submit("a"))
    await until(lambda: len(fake.batches) == 1)
    gone, kept = submit_all(lane, ["gone", "kept"])
    await until(lambda: lane.queued == 2)
    gone.cancel()
    await until(lambda: lane.queued == 1)
    fake.release(0)
    await until(lambda: len(fake.batches) == 2)
    fake.release(1)
    assert await settled([first, kept]) == [("result", "a"), ("result", "kept")]
    assert gone.cancelled()
    assert fake.sent == ["a", "kept"]


async def test_cancel_while_in_flight_keeps_other_results():
    """A caller cancelled in flight drops its result; the rest of its batch is answered."""
    fake = FakePartition()
    lane = PartitionLane(fake, LaneLimits(batches_in_flight_max=1))
    gone, kept = submit_all(lane, ["gone", "kept"])
    await until(lambda: len(fake.batches) == 1)
    assert fake.batches == [["gone", "kept"]]
    gone.cancel()
    await until(gone.done)
    fake.release(0)
    assert await asyncio.wait_for(kept, TIMEOUT_S) == ("result", "kept")
    assert gone.cancelled()


async def test_lane_with_two_calls_in_flight_queues_only_behind_both():
    """With two calls allowed, a second command goes at once; the rest wait for a return."""
    fake = FakePartition()
    lane = PartitionLane(fake, LaneLimits(batches_in_flight_max=2))
    tasks = submit_all(lane, ["a"])
    await until(lambda: len(fake.batches) == 1)
    tasks += submit_all(lane, ["b"])
    await until(lambda: len(fake.batches) == 2)
    tasks += submit_all(lane, ["c", "d"])
    await until(lambda: lane.queued == 2)
    fake.release(1)
    await until(lambda: len(fake.batches) == 3)
    fake.release(0)
    fake.release(2)
    assert await settled(tasks) == [("result", c) for c in "abcd"]
    assert fake.batches == [["a"], ["b"], ["c", "d"]]
    assert fake.in_flight_max == 2


async def test_lane_never_has_two_calls_in_flight():
    """However commands arrive, the partition sees one call at a time."""
    fake = FakePartition()
    lane = PartitionLane(fake, LaneLimits(batches_in_flight_max=1, batch_commands_max=3))
    tasks = []
    for round_ in range(5):
        tasks += submit_all(lane, range(round_ * 4, round_ * 4 + 4))
        await until(lambda: fake.unreleased == 1)
        assert fake.in_flight == 1
        fake.release(len(fake.batches) - 1)
    drained = asyncio.create_task(lane.drain())
    while not drained.done():
        await until(lambda: fake.unreleased == 1 or drained.done())
        if fake.unreleased:
            fake.release(len(fake.batches) - 1)
    assert fake.in_flight_max == 1
    assert await settled(tasks) == [("result", n) for n in range(20)]


async def test_drain_returns_once_idle_and_leaves_no_task():
    """drain() waits for the queue and the call in flight; an idle lane keeps no task alive."""
    fake = FakePartition()
    lane = PartitionLane(fake, LaneLimits(batches_in_flight_max=1))
    before = asyncio.all_tasks()
    tasks = submit_all(lane, ["a"])
    await until(lambda: len(fake.batches) == 1)
    tasks += submit_all(lane, ["b"])
    drained = asyncio.create_task(lane.drain())
    await until(lambda: lane.queued == 1)
    fake.release(0)
    await until(lambda: len(fake.batches) == 2)
    assert not drained.done()
    fake.release(1)
    await asyncio.wait_for(drained, TIMEOUT_S)
    assert lane.queued == 0 and fake.in_flight == 0
    await settled(tasks)
    assert asyncio.all_tasks() == before


# ---- lots: many commands, one future ----------------------------------------------------


async def test_enqueue_many_idle_lane_sends_lot_in_one_call_with_one_answer_list():
    """A lot on an idle lane goes in one call; its one future brings every result in order."""
    fake = FakePartition()
    lane = PartitionLane(fake, LaneLimits(batches_in_flight_max=1))
    lot = lane.enqueue_many(["a", "b", "c"])
    await until(lambda: len(fake.batches) == 1)
    assert fake.batches == [["a", "b", "c"]]
    fake.release(0)
    assert await asyncio.wait_for(lot, TIMEOUT_S) == [("result", c) for c in "abc"]


async def test_enqueue_many_shares_a_call_with_single_commands_in_arrival_order():
    """Queued behind a call, single commands and a lot go together as the next call, in order."""
    fake = FakePartition()
    lane = PartitionLane(fake, LaneLimits(batches_in_flight_max=1))
    first = asyncio.create_task(lane.submit("a"))
    await until(lambda: len(fake.batches) == 1)
    before = asyncio.create_task(lane.submit("b"))
    await until(lambda: lane.queued == 1)
    lot = lane.enqueue_many(["c", "d"])
    after = asyncio.create_task(lane.submit("e"))
    await until(lambda: lane.queued == 4)
    assert lane.waiting() == ["b", "c", "d", "e"]
    fake.release(0)
    await until(lambda: len(fake.batches) == 2)
    assert fake.batches[1] == ["b", "c", "d", "e"]
    fake.release(1)
    assert await settled([first, before, after]) == [("result", c) for c in "abe"]
    assert await asyncio.wait_for(lot, TIMEOUT_S) == [("result", "c"), ("result", "d")]


async def test_enqueue_many_lot_without_room_waits_whole_for_the_next_call():
    """A lot that does not fit beside what is queued goes whole in the call after, not split."""
    fake = FakePartition()
    lane = PartitionLane(fake, LaneLimits(batches_in_flight_max=1, batch_commands_max=3))
    first = asyncio.create_task(lane.submit("a"))
    await until(lambda: len(fake.batches) == 1)
    queued = asyncio.create_task(lane.submit("b"))
    await until(lambda: lane.queued == 1)
    lot = lane.enqueue_many(["c", "d", "e"])
    for call in range(3):
        fake.release(call)
        await until(lambda call=call: len(fake.batches) == call + 2 or lot.done())
    assert fake.batches == [["a"], ["b"], ["c", "d", "e"]]
    assert await settled([first, queued]) == [("result", "a"), ("result", "b")]
    assert await asyncio.wait_for(lot, TIMEOUT_S) == [("result", c) for c in "cde"]


async def test_enqueue_many_lot_over_batch_cap_is_split_and_answered_once_in_order():
    """A lot longer than the batch cap goes over several calls; its future answers once, all."""
    fake = FakePartition()
    lane = PartitionLane(fake, LaneLimits(batches_in_flight_max=2, batch_commands_max=2))
    lot = lane.enqueue_many(list("abcde"))
    await until(lambda: len(fake.batches) == 2)
    assert lane.queued == 1
    fake.release(1)
    await until(lambda: len(fake.batches) == 3)
    fake.release(2)
    await asyncio.sleep(0)
    assert not lot.done()  # the first part is still in flight
    fake.release(0)
    assert fake.batches == [["a", "b"], ["c", "d"], ["e"]]
    assert await asyncio.wait_for(lot, TIMEOUT_S) == [("result", c) for c in "abcde"]


async def test_enqueue_many_unavailable_result_is_partition_unavailable_in_its_place():
    """A command the partition could not make durable gets PartitionUnavailable; the rest
    of the lot gets its results."""
    fake = FakePartition()
    lane = PartitionLane(fake, LaneLimits(batches_in_flight_max=1))
    lot = lane.enqueue_many(["a", "b", "c"])
    await until(lambda: len(fake.batches) == 1)
    fake.release(0, answer=[("result", "a"), Unavailable("journal down"), ("result", "c")])
    answers = await asyncio.wait_for(lot, TIMEOUT_S)
    assert answers[0] == ("result", "a") and answers[2] == ("result", "c")
    assert isinstance(answers[1], PartitionUnavailable) and "journal down" in str(answers[1])


async def test_enqueue_many_full_queue_refuses_the_whole_lot_and_queues_none_of_it():
    """A lot that would pass the queue bound is refused at once; nothing of it is sent."""
    fake = FakePartition()
    lane = PartitionLane(fake, LaneLimits(batches_in_flight_max=1, queue_commands_max=3))
    first = asyncio.create_task(lane.submit("a"))
    await until(lambda: len(fake.batches) == 1)
    kept = lane.enqueue_many(["b", "c"])
    with pytest.raises(LaneOverloaded):
        lane.enqueue_many(["d", "e"])
    assert lane.queued == 2
    fake.release(0)
    await until(lambda: len(fake.batches) == 2)
    fake.release(1)
    assert await settled([first, kept]) == [("result", "a"), [("result", "b"), ("result", "c")]]
    assert fake.sent == ["a", "b", "c"]


async def test_enqueue_many_failed_call_fails_the_lot_and_its_unsent_rest_is_dropped():
    """When a call carrying part of a lot fails, the lot's future fails and the part still
    queued is never sent; the lane keeps working."""
    fake = FakePartition()
    lane = PartitionLane(fake, LaneLimits(batches_in_flight_max=1, batch_commands_max=2))
    lot = lane.enqueue_many(list("abcd"))
    await until(lambda: len(fake.batches) == 1)
    boom = ConnectionError("partition down")
    fake.release(0, answer=boom)
    with pytest.raises(ConnectionError):
        await asyncio.wait_for(lot, TIMEOUT_S)
    later = asyncio.create_task(lane.submit("e"))
    await until(lambda: len(fake.batches) == 2)
    fake.release(1)
    assert await asyncio.wait_for(later, TIMEOUT_S) == ("result", "e")
    assert fake.sent == ["a", "b", "e"]


async def test_enqueue_many_cancelled_lot_is_never_sent_and_frees_the_queue():
    """Cancelling a queued lot takes all of it out of the queue before any is sent."""
    fake = FakePartition()
    lane = PartitionLane(fake, LaneLimits(batches_in_flight_max=1))
    first = asyncio.create_task(lane.submit("a"))
    await until(lambda: len(fake.batches) == 1)
    lot = lane.enqueue_many(["gone", "too"])
    kept = asyncio.create_task(lane.submit("kept"))
    await until(lambda: lane.queued == 3)
    lot.cancel()
    await until(lambda: lane.queued == 1)
    fake.release(0)
    await until(lambda: len(fake.batches) == 2)
    fake.release(1)
    assert await settled([first, kept]) == [("result", "a"), ("result", "kept")]
    assert fake.sent == ["a", "kept"]


async def test_enqueue_many_expired_deadline_fails_the_lot_unsent():
    """A lot whose deadline passes while it is queued fails with DeadlineExpired, unsent."""
    now = [100.0]
    fake = FakePartition()
    lane = PartitionLane(fake, LaneLimits(batches_in_flight_max=1), clock=lambda: now[0])
    first = asyncio.create_task(lane.submit("a"))
    await until(lambda: len(fake.batches) == 1)
    late = lane.enqueue_many(["late-1", "late-2"], deadline=101.0)
    now[0] = 102.0
    fake.release(0)
    with pytest.raises(DeadlineExpired):
        await asyncio.wait_for(late, TIMEOUT_S)
    await asyncio.wait_for(lane.drain(), TIMEOUT_S)
    assert await settled([first]) == [("result", "a")]
    assert fake.sent == ["a"]


async def test_enqueue_many_empty_lot_is_answered_at_once_without_a_call():
    """An empty lot answers an empty list and makes no call."""
    fake = FakePartition()
    lane = PartitionLane(fake, LaneLimits(batches_in_flight_max=1))
    assert await asyncio.wait_for(lane.enqueue_many([]), TIMEOUT_S) == []
    await asyncio.wait_for(lane.drain(), TIMEOUT_S)
    assert fake.batches == []


# One step of a scenario: submit some commands, let the loop run, let the oldest open call
# return, or cancel the caller of one earlier command.
steps = st.one_of(
    st.tuples(st.just("submit"), st.integers(1, 5)),
    st.tuples(st.just("yield"), st.integers(1, 3)),
    st.tuples(st.just("complete"), st.just(0)),
    st.tuples(st.just("cancel"), st.integers(0, 1_000)),
)


async def run_scenario(plan, batch_max: int, queue_max: int) -> None:
    """Play `plan` against a lane, finish every call, then check what each caller got."""
    fake = FakePartition()
    lane = PartitionLane(fake, LaneLimits(batches_in_flight_max=1, batch_commands_max=batch_max,
                                          queue_commands_max=queue_max))
    tasks: list[asyncio.Task] = []
    waiting_at_cancel: dict[int, bool] = {}
    for action, n in plan:
        if action == "submit":
            tasks += submit_all(lane, range(len(tasks), len(tasks) + n))
        elif action == "yield":
            for _ in range(n):
                await asyncio.sleep(0)
        elif action == "complete" and fake.unreleased:
            fake.release(len(fake.batches) - 1)
        elif action == "cancel" and tasks:
            command = n % len(tasks)
            waiting_at_cancel.setdefault(command, command in lane.waiting())
            tasks[command].cancel()
    drained = asyncio.create_task(lane.drain())
    while not drained.done():
        await until(lambda: fake.unreleased or drained.done())
        if fake.unreleased:
            fake.release(len(fake.batches) - 1)
    outcomes = await settled(tasks)

    sent = fake.sent
    assert sent == sorted(sent) and max(Counter(sent).values(), default=1) == 1
    assert fake.in_flight_max <= 1
    sent_in_call = {command: call for call, batch in enumerate(fake.batches) for command in batch}
    for command, outcome in enumerate(outcomes):
        if isinstance(outcome, asyncio.CancelledError):
            # Never sent if it was still waiting when cancelled.
            assert not (waiting_at_cancel[command] and command in sent_in_call)
        elif isinstance(outcome, LaneOverloaded):
            assert command not in sent_in_call
        else:
            assert outcome == ("result", command)
            assert command in sent_in_call


@given(plan=st.lists(steps, max_size=40), batch_max=st.integers(1, 4),
       queue_max=st.integers(1, 8))
def test_lane_any_interleaving_sends_each_command_once_in_order(plan, batch_max, queue_max):
    """Under any interleaving each command is sent at most once, in order, its caller answered."""
    asyncio.run(run_scenario(plan, batch_max, queue_max))


def queued(queue, what) -> asyncio.Future | LaneOverloaded:
    """The future of `queue(what)`, or the LaneOverloaded that refused it."""
    try:
        return queue(what)
    except LaneOverloaded as refused:
        return refused


async def run_lot_scenario(plan, batch_max: int, queue_max: int) -> None:
    """Play `plan` with single commands and lots mixed, then check every caller's answer."""
    fake = FakePartition()
    lane = PartitionLane(fake, LaneLimits(batches_in_flight_max=1, batch_commands_max=batch_max,
                                          queue_commands_max=queue_max))
    # (commands, is a lot, future or refusal) per caller, in the order they queued
    callers: list[tuple[list[int], bool, asyncio.Future | LaneOverloaded]] = []
    next_command = 0
    for action, n in plan:
        if action == "submit":
            callers += [([c], False, queued(lane.enqueue, c))
                        for c in range(next_command, next_command + n)]
            next_command += n
        elif action == "lot":
            lot = list(range(next_command, next_command + n))
            callers.append((lot, True, queued(lane.enqueue_many, lot)))
            next_command += n
        elif action == "yield":
            for _ in range(n):
                await asyncio.sleep(0)
        elif action == "complete" and fake.unreleased:
            fake.release(len(fake.batches) - 1)
        elif action == "cancel" and callers:
            answer = callers[n % len(callers)][2]
            if not isinstance(answer, LaneOverloaded):
                answer.cancel()
    drained = asyncio.create_task(lane.drain())
    while not drained.done():
        await until(lambda: fake.unreleased or drained.done())
        if fake.unreleased:
            fake.release(len(fake.batches) - 1)
    outcomes = iter(await settled([answer for _, _, answer in callers
                                   if not isinstance(answer, LaneOverloaded)]))

    sent = fake.sent
    assert sent == sorted(sent) and max(Counter(sent).values(), default=1) == 1
    assert all(len(batch) <= batch_max for batch in fake.batches)
    call_of = {command: call for call, batch in enumerate(fake.batches) for command in batch}
    for commands, is_lot, answer in callers:
        outcome = answer if isinstance(answer, LaneOverloaded) else next(outcomes)
        if isinstance(outcome, LaneOverloaded):
            assert not any(command in call_of for command in commands)
        elif isinstance(outcome, asyncio.CancelledError):
            sent_part = [command for command in commands if command in call_of]
            assert sent_part == commands[:len(sent_part)]  # a prefix, if any
        elif not is_lot:
            assert outcome == ("result", commands[0])
        else:
            assert outcome == [("result", command) for command in commands]
            if len(commands) <= batch_max:  # never split when it fits in one call
                assert len({call_of[command] for command in commands}) == 1


lot_steps = st.one_of(steps, st.tuples(st.just("lot"), st.integers(1, 6)))


@given(plan=st.lists(lot_steps, max_size=40), batch_max=st.integers(1, 5),
       queue_max=st.integers(1, 10))
def test_lane_lots_and_commands_any_interleaving_each_sent_once_in_order(plan, batch_max,
                                                                         queue_max):
    """With lots and single commands mixed, each command is sent at most once, in order, a
    lot that fits a call is never split, and every caller gets exactly its own answers."""
    asyncio.run(run_lot_scenario(plan, batch_max, queue_max))
