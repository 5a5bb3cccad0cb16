"""The client sends a lone write at once and coalesces writes that find every RPC slot busy."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

import grpc
import pytest
from hypothesis import given
from hypothesis import strategies as st
from inventory.v1 import availability_pb2 as pb

from gateway.client import AvailabilityClient, AvailabilityError, Coalescer

TIMEOUT_S = 5
StatusCode = grpc.StatusCode


@dataclass
class Rpc:
    """One call the fake server received."""

    kind: str  # "unary" or "batch"
    commands: list
    timeout_s: float | None
    gate: asyncio.Future
    finished: bool = False


def answer_ok(command):
    return ("answer", command)


class FakeServer:
    """Unary and Batch send functions that record each RPC and return when the test releases it."""

    def __init__(self, answer_of: Callable = answer_ok) -> None:
        self.answer_of = answer_of
        self.rpcs: list[Rpc] = []
        self.in_flight = 0
        self.in_flight_max = 0

    async def send_one(self, command, timeout_s):
        (answer,) = await self._rpc("unary", [command], timeout_s)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def send_batch(self, commands, timeout_s):
        return await self._rpc("batch", commands, timeout_s)

    async def _rpc(self, kind, commands, timeout_s):
        rpc = Rpc(kind, list(commands), timeout_s, asyncio.get_running_loop().create_future())
        self.rpcs.append(rpc)
        self.in_flight += 1
        self.in_flight_max = max(self.in_flight_max, self.in_flight)
        try:
            failure = await rpc.gate
        finally:
            self.in_flight -= 1
            rpc.finished = True
        if failure is not None:
            raise failure
        return [self.answer_of(command) for command in commands]

    def release(self, rpc: int, failure: Exception | None = None) -> None:
        """Let RPC number `rpc` return its answers, or fail as a whole with `failure`."""
        self.rpcs[rpc].gate.set_result(failure)

    @property
    def unreleased(self) -> list[int]:
        return [number for number, rpc in enumerate(self.rpcs) if not rpc.gate.done()]

    @property
    def sent(self) -> list:
        return [command for rpc in self.rpcs for command in rpc.commands]


def coalescer_for(fake: FakeServer, **limits) -> Coalescer:
    return Coalescer(fake.send_one, fake.send_batch, **limits)


async def until(predicate) -> None:
    """Yield to the loop until `predicate()` holds, failing after TIMEOUT_S."""
    async def poll():
        while not predicate():
            await asyncio.sleep(0)
    await asyncio.wait_for(poll(), timeout=TIMEOUT_S)


async def settled(tasks) -> list:
    """Each task's result, or the exception it raised, within TIMEOUT_S."""
    return await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), TIMEOUT_S)


def submit_all(coalescer: Coalescer, commands, timeout_s=None) -> list[asyncio.Task]:
    return [asyncio.create_task(coalescer.submit(command, timeout_s)) for command in commands]


async def fill_slots(fake: FakeServer, coalescer: Coalescer, commands) -> list[asyncio.Task]:
    """Submit `commands`, one unary RPC each, and wait until all are in flight."""
    tasks = submit_all(coalescer, commands)
    await until(lambda: len(fake.rpcs) == len(commands))
    return tasks


def codes(outcomes) -> list:
    return [o.code if isinstance(o, AvailabilityError) else o for o in outcomes]


async def test_submit_lone_call_goes_unary_at_once():
    """One caller alone gets one unary RPC at once, without waiting for company."""
    fake = FakeServer()
    coalescer = coalescer_for(fake)
    task = asyncio.create_task(coalescer.submit("a", 2.0))
    await until(lambda: len(fake.rpcs) == 1)
    assert (fake.rpcs[0].kind, fake.rpcs[0].commands) == ("unary", ["a"])
    assert 0 < fake.rpcs[0].timeout_s <= 2.0
    fake.release(0)
    assert await asyncio.wait_for(task, TIMEOUT_S) == ("answer", "a")
    assert coalescer.rpcs_in_flight == 0


async def test_submit_below_in_flight_cap_each_goes_unary():
    """While RPC slots are free, concurrent calls each go at once as their own RPC."""
    fake = FakeServer()
    coalescer = coalescer_for(fake, rpcs_in_flight_max=3)
    tasks = await fill_slots(fake, coalescer, ["a", "b", "c"])
    assert [(rpc.kind, rpc.commands) for rpc in fake.rpcs] == [
        ("unary", ["a"]), ("unary", ["b"]), ("unary", ["c"])]
    for number in range(3):
        fake.release(number)
    assert await settled(tasks) == [answer_ok(c) for c in "abc"]


async def test_submit_beyond_in_flight_cap_coalesces_into_one_batch_in_order():
    """Calls that find every slot busy wait, then go as one Batch when an RPC returns."""
    fake = FakeServer()
    coalescer = coalescer_for(fake, rpcs_in_flight_max=2)
    first = await fill_slots(fake, coalescer, ["a", "b"])
    queued = submit_all(coalescer, ["c", "d", "e"])
    await until(lambda: coalescer.queued == 3)
    assert len(fake.rpcs) == 2
    fake.release(1)
    await until(lambda: len(fake.rpcs) == 3)
    assert (fake.rpcs[2].kind, fake.rpcs[2].commands) == ("batch", ["c", "d", "e"])
    assert coalescer.queued == 0
    fake.release(2)
    fake.release(0)
    assert await settled([*first, *queued]) == [answer_ok(c) for c in "abcde"]


async def test_submit_batch_error_statuses_fail_only_their_callers():
    """A command refused inside a Batch raises its own code; the others get their answers."""
    refusals = {"b": StatusCode.NOT_FOUND, "d": StatusCode.INVALID_ARGUMENT}

    def answer_of(command):
        code = refusals.get(command)
        return answer_ok(command) if code is None else AvailabilityError(code, command)

    fake = FakeServer(answer_of)
    coalescer = coalescer_for(fake, rpcs_in_flight_max=1)
    tasks = await fill_slots(fake, coalescer, ["a"])
    tasks += submit_all(coalescer, ["b", "c", "d"])
    await until(lambda: coalescer.queued == 3)
    fake.release(0)
    await until(lambda: len(fake.rpcs) == 2)
    fake.release(1)
    outcomes = await settled(tasks)
    assert codes(outcomes) == [answer_ok("a"), StatusCode.NOT_FOUND, answer_ok("c"),
                               StatusCode.INVALID_ARGUMENT]
    assert [outcomes[1].details, outcomes[3].details] == ["b", "d"]


async def test_submit_failed_batch_rpc_fails_all_its_callers():
    """A Batch RPC that fails as a whole fails each of its callers with its code, no others."""
    fake = FakeServer()
    coalescer = coalescer_for(fake, rpcs_in_flight_max=1)
    first = await fill_slots(fake, coalescer, ["a"])
    queued = submit_all(coalescer, ["b", "c"])
    await until(lambda: coalescer.queued == 2)
    fake.release(0)
    await until(lambda: len(fake.rpcs) == 2)
    fake.release(1, AvailabilityError(StatusCode.UNAVAILABLE, "journal down"))
    assert codes(await settled([*first, *queued])) == [
        answer_ok("a"), StatusCode.UNAVAILABLE, StatusCode.UNAVAILABLE]
    assert coalescer.rpcs_in_flight == 0


async def test_submit_unary_error_raises_its_code():
    """A refused unary call raises AvailabilityError with the code the server gave."""
    fake = FakeServer(lambda command: AvailabilityError(StatusCode.ALREADY_EXISTS, "key reused"))
    coalescer = coalescer_for(fake)
    task = asyncio.create_task(coalescer.submit("a"))
    await until(lambda: len(fake.rpcs) == 1)
    fake.release(0)
    with pytest.raises(AvailabilityError) as raised:
        await asyncio.wait_for(task, TIMEOUT_S)
    assert (raised.value.code, raised.value.details) == (StatusCode.ALREADY_EXISTS, "key reused")


async def test_submit_wrong_result_count_fails_batch_with_internal():
    """A Batch answering the wrong number of results fails its callers with INTERNAL."""
    fake = FakeServer()

    async def short_batch(commands, timeout_s):
        return (await fake.send_batch(commands, timeout_s))[:-1]

    coalescer = Coalescer(fake.send_one, short_batch, rpcs_in_flight_max=1)
    first = await fill_slots(fake, coalescer, ["a"])
    queued = submit_all(coalescer, ["b", "c"])
    await until(lambda: coalescer.queued == 2)
    fake.release(0)
    await until(lambda: len(fake.rpcs) == 2)
    fake.release(1)
    assert codes(await settled([*first, *queued])) == [
        answer_ok("a"), StatusCode.INTERNAL, StatusCode.INTERNAL]


async def test_submit_full_queue_raises_resource_exhausted_and_sends_nothing():
    """Past the queue bound a call is refused at once and never sent; the queue is unchanged."""
    fake = FakeServer()
    coalescer = coalescer_for(fake, rpcs_in_flight_max=1, queue_commands_max=2)
    tasks = await fill_slots(fake, coalescer, ["a"])
    tasks += submit_all(coalescer, ["b", "c"])
    await until(lambda: coalescer.queued == 2)
    with pytest.raises(AvailabilityError) as raised:
        await asyncio.wait_for(coalescer.submit("d"), TIMEOUT_S)
    assert raised.value.code == StatusCode.RESOURCE_EXHAUSTED
    assert coalescer.queued == 2
    fake.release(0)
    await until(lambda: len(fake.rpcs) == 2)
    fake.release(1)
    assert await settled(tasks) == [answer_ok(c) for c in "abc"]
    assert fake.sent == ["a", "b", "c"]


async def test_submit_cancelled_while_queued_is_never_sent():
    """A caller cancelled while queued leaves the queue; its command never reaches the server."""
    fake = FakeServer()
    coalescer = coalescer_for(fake, rpcs_in_flight_max=1)
    first = await fill_slots(fake, coalescer, ["a"])
    gone, kept = submit_all(coalescer, ["gone", "kept"])
    await until(lambda: coalescer.queued == 2)
    gone.cancel()
    await until(lambda: coalescer.queued == 1)
    fake.release(0)
    await until(lambda: len(fake.rpcs) == 2)
    fake.release(1)
    assert await settled([*first, kept]) == [answer_ok("a"), answer_ok("kept")]
    assert gone.cancelled()
    assert "gone" not in fake.sent


async def test_submit_deadline_passed_while_queued_raises_deadline_exceeded_unsent():
    """A call whose deadline passes while queued fails with DEADLINE_EXCEEDED and is not sent."""
    fake = FakeServer()
    coalescer = coalescer_for(fake, rpcs_in_flight_max=1)
    first = await fill_slots(fake, coalescer, ["a"])
    late = asyncio.create_task(coalescer.submit("late", 0.01))
    others = submit_all(coalescer, ["b"])
    with pytest.raises(AvailabilityError) as raised:
        await asyncio.wait_for(late, TIMEOUT_S)
    assert raised.value.code == StatusCode.DEADLINE_EXCEEDED
    assert "not sent" in raised.value.details
    assert coalescer.queued == 1
    fake.release(0)
    await until(lambda: len(fake.rpcs) == 2)
    fake.release(1)
    assert await settled([*first, *others]) == [answer_ok("a"), answer_ok("b")]
    assert "late" not in fake.sent


async def test_submit_expired_timeout_sends_nothing():
    """A call made with no time left fails with DEADLINE_EXCEEDED and makes no RPC."""
    fake = FakeServer()
    coalescer = coalescer_for(fake)
    with pytest.raises(AvailabilityError) as raised:
        await asyncio.wait_for(coalescer.submit("a", 0), TIMEOUT_S)
    assert raised.value.code == StatusCode.DEADLINE_EXCEEDED
    assert fake.rpcs == []


async def test_submit_in_flight_caller_stops_waiting_at_its_deadline():
    """A sent caller gives up at its own deadline while its batch-mates still get answers."""
    fake = FakeServer()
    coalescer = coalescer_for(fake, rpcs_in_flight_max=1)
    first = await fill_slots(fake, coalescer, ["a"])
    short = asyncio.create_task(coalescer.submit("short", 0.5))
    patient = submit_all(coalescer, ["patient"])
    await until(lambda: coalescer.queued == 2)
    fake.release(0)
    await until(lambda: len(fake.rpcs) == 2)
    assert fake.rpcs[1].commands == ["short", "patient"]
    with pytest.raises(AvailabilityError) as raised:
        await asyncio.wait_for(short, TIMEOUT_S)
    assert raised.value.code == StatusCode.DEADLINE_EXCEEDED
    assert "in flight" in raised.value.details
    fake.release(1)
    assert await settled([*first, *patient]) == [answer_ok("a"), answer_ok("patient")]


async def test_submit_batch_timeout_is_longest_remaining_or_none():
    """A Batch carries its longest remaining deadline, or none when a member has none."""
    fake = FakeServer()
    coalescer = coalescer_for(fake, rpcs_in_flight_max=1)
    tasks = await fill_slots(fake, coalescer, ["a"])
    tasks += [asyncio.create_task(coalescer.submit(c, t)) for c, t in [("b", 30), ("c", 60)]]
    await until(lambda: coalescer.queued == 2)
    fake.release(0)
    await until(lambda: len(fake.rpcs) == 2)
    assert 30 < fake.rpcs[1].timeout_s <= 60
    tasks += [asyncio.create_task(coalescer.submit(c, t)) for c, t in [("d", 30), ("e", None)]]
    await until(lambda: coalescer.queued == 2)
    fake.release(1)
    await until(lambda: len(fake.rpcs) == 3)
    assert fake.rpcs[2].timeout_s is None
    fake.release(2)
    assert await settled(tasks) == [answer_ok(c) for c in "abcde"]


async def test_submit_batches_never_exceed_batch_commands_max():
    """A queue longer than the batch cap goes over several Batches, in order, none too big."""
    fake = FakeServer()
    coalescer = coalescer_for(fake, rpcs_in_flight_max=1, batch_commands_max=2)
    tasks = await fill_slots(fake, coalescer, ["a"])
    tasks += submit_all(coalescer, ["b", "c", "d", "e", "f"])
    await until(lambda: coalescer.queued == 5)
    for number in range(4):
        fake.release(number)
        await until(lambda n=number: len(fake.rpcs) == n + 2 or coalescer.queued == 0)
    assert [rpc.commands for rpc in fake.rpcs] == [["a"], ["b", "c"], ["d", "e"], ["f"]]
    assert await settled(tasks) == [answer_ok(c) for c in "abcdef"]


async def test_close_fails_queued_and_in_flight_batch_callers_with_cancelled():
    """Closing fails every queued or batched caller with CANCELLED and refuses new calls."""
    fake = FakeServer()
    coalescer = coalescer_for(fake, rpcs_in_flight_max=1, batch_commands_max=1)
    first = await fill_slots(fake, coalescer, ["a"])
    queued = submit_all(coalescer, ["b", "c"])
    await until(lambda: coalescer.queued == 2)
    fake.release(0)
    await until(lambda: len(fake.rpcs) == 2)
    await asyncio.wait_for(coalescer.close(), TIMEOUT_S)
    assert codes(await settled([*first, *queued])) == [
        answer_ok("a"), StatusCode.CANCELLED, StatusCode.CANCELLED]
    with pytest.raises(AvailabilityError) as raised:
        await coalescer.submit("d")
    assert raised.value.code == StatusCode.CANCELLED
    assert fake.sent == ["a", "b"]


class FakeStub:
    """The generated stub's Reserve and Batch, answering from canned responses."""

    def __init__(self, batch_response: pb.BatchResponse | None = None,
                 error: grpc.aio.AioRpcError | None = None) -> None:
        self.batch_response = batch_response
        self.error = error
        self.requests: list = []

    async def Reserve(self, request, timeout=None, metadata=None):
        self.requests.append(("Reserve", request, metadata))
        if self.error is not None:
            raise self.error
        return pb.ReserveResponse(reservation_id="r-" + request.idempotency_key,
                                  status=pb.RESERVATION_STATUS_HELD)

    async def Batch(self, request, timeout=None, metadata=None):
        self.requests.append(("Batch", request, metadata))
        return self.batch_response


async def test_reserve_alone_sends_reserve_rpc_with_metadata():
    """A lone reserve turns tuples into lines and goes as a Reserve RPC with the metadata."""
    async with AvailabilityClient("unused.invalid:1",
                                  metadata=[("authorization", "Bearer t")]) as client:
        client._stub = stub = FakeStub()
        response = await client.reserve([("sku-1", "loc-1", 2)], idempotency_key="k1",
                                        timeout=TIMEOUT_S)
    assert response.reservation_id == "r-k1"
    name, request, metadata = stub.requests[0]
    assert (name, metadata) == ("Reserve", (("authorization", "Bearer t"),))
    assert request.lines == [pb.ReserveLine(sku="sku-1", location="loc-1", quantity=2)]


async def test_reserve_rpc_error_raises_availability_error():
    """A failed Reserve RPC raises AvailabilityError with the RPC's code and details."""
    error = grpc.aio.AioRpcError(StatusCode.INVALID_ARGUMENT, grpc.aio.Metadata(),
                                 grpc.aio.Metadata(), details="lines[0].quantity: too big")
    async with AvailabilityClient("unused.invalid:1") as client:
        client._stub = FakeStub(error=error)
        with pytest.raises(AvailabilityError) as raised:
            await client.reserve([("s", "l", 0)], idempotency_key="k", timeout=TIMEOUT_S)
    assert raised.value.code == StatusCode.INVALID_ARGUMENT
    assert raised.value.details == "lines[0].quantity: too big"


async def test_batch_results_decode_to_responses_and_status_codes():
    """BatchResult numbers become the same StatusCode a unary call raises; OKs their response."""
    held = pb.ReserveResponse(reservation_id="r1", status=pb.RESERVATION_STATUS_HELD)
    response = pb.BatchResponse(results=[
        pb.BatchResult(reserve=held),
        pb.BatchResult(status_code=StatusCode.NOT_FOUND.value[0], status_message="no such id"),
        pb.BatchResult(reserve=held),  # the wrong kind of answer for a commit
    ])
    async with AvailabilityClient("unused.invalid:1") as client:
        client._stub = stub = FakeStub(batch_response=response)
        requests = [pb.ReserveRequest(idempotency_key="k1"),
                    pb.ReleaseRequest(reservation_id="x"), pb.CommitRequest(reservation_id="y")]
        answers = await client._send_writes(requests, None)
    assert [c.WhichOneof("command") for c in stub.requests[0][1].commands] == [
        "reserve", "release", "commit"]
    assert answers[0] == held
    assert (answers[1].code, answers[1].details) == (StatusCode.NOT_FOUND, "no such id")
    assert answers[2].code == StatusCode.INTERNAL


def test_client_batch_commands_max_above_server_limit_is_refused():
    """A client cannot be built to send more commands per Batch than the server takes."""
    with pytest.raises(ValueError, match="batch_commands_max"):
        AvailabilityClient("unused.invalid:1", batch_commands_max=1_001)


# One step of a random run: a new call (refused by the server or not), or one RPC returning
# (normally, or failing as a whole).
steps = st.one_of(
    st.tuples(st.just("call"), st.booleans()),
    st.tuples(st.just("return"), st.integers(0, 50), st.booleans()),
)


async def run_interleaving(plan, rpcs_in_flight_max: int, batch_commands_max: int) -> None:
    refused: set[int] = set()

    def answer_of(command):
        return (AvailabilityError(StatusCode.NOT_FOUND, str(command)) if command in refused
                else answer_ok(command))

    fake = FakeServer(answer_of)
    coalescer = coalescer_for(fake, rpcs_in_flight_max=rpcs_in_flight_max,
                              batch_commands_max=batch_commands_max)
    tasks: list[asyncio.Task] = []
    failed_rpcs: set[int] = set()

    def quiet() -> bool:
        return (len(fake.sent) + coalescer.queued == len(tasks)
                and coalescer.rpcs_in_flight == fake.in_flight
                and all(rpc.finished for rpc in fake.rpcs if rpc.gate.done()))

    async def return_rpc(number: int, fail: bool) -> None:
        failed_rpcs.update([number] if fail else [])
        fake.release(number, AvailabilityError(StatusCode.UNAVAILABLE, "down") if fail else None)
        await until(quiet)

    for step in plan:
        if step[0] == "call":
            if step[1]:
                refused.add(len(tasks))
            tasks.append(asyncio.create_task(coalescer.submit(len(tasks))))
            await until(quiet)
        elif fake.unreleased:
            await return_rpc(fake.unreleased[step[1] % len(fake.unreleased)], step[2])
    while fake.unreleased:
        await return_rpc(fake.unreleased[0], False)
    outcomes = await settled(tasks)

    assert sorted(fake.sent) == list(range(len(tasks)))
    assert fake.in_flight_max <= rpcs_in_flight_max
    assert all(len(rpc.commands) <= batch_commands_max for rpc in fake.rpcs)
    rpc_of = {command: number for number, rpc in enumerate(fake.rpcs) for command in rpc.commands}
    for command, outcome in enumerate(outcomes):
        if rpc_of[command] in failed_rpcs:
            assert codes([outcome]) == [StatusCode.UNAVAILABLE]
        elif command in refused:
            assert (outcome.code, outcome.details) == (StatusCode.NOT_FOUND, str(command))
        else:
            assert outcome == answer_ok(command)


@given(plan=st.lists(steps, max_size=40), rpcs_in_flight_max=st.integers(1, 4),
       batch_commands_max=st.integers(1, 5))
def test_submit_any_interleaving_answers_each_caller_its_own_result(
        plan, rpcs_in_flight_max, batch_commands_max):
    """Any interleaving sends each call once, answers it its own, caps the RPCs in flight."""
    asyncio.run(run_interleaving(plan, rpcs_in_flight_max, batch_commands_max))



async def test_submit_batches_split_to_stay_under_the_byte_budget():
    """Queued calls whose sizes add up past the byte budget go as several batches, in order."""
    fake = FakeServer()
    coalescer = coalescer_for(fake, rpcs_in_flight_max=1, size_of=lambda command: 400,
                              batch_bytes_max=1_000)
    (lone,) = await fill_slots(fake, coalescer, ["first"])
    queued = submit_all(coalescer, [f"c{n}" for n in range(5)])
    await until(lambda: coalescer.queued == 5)
    for rpc in range(4):  # the unary call, then each batch as the one before returns
        await until(lambda rpc=rpc: len(fake.rpcs) == rpc + 1)
        fake.release(rpc)
    assert [rpc.commands for rpc in fake.rpcs[1:]] == [["c0", "c1"], ["c2", "c3"], ["c4"]]
    assert await settled(queued) == [("answer", f"c{n}") for n in range(5)]
    await settled([lone])
