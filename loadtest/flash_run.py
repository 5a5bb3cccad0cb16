"""Drives one target through a flash-sale workload: buyers on schedule, retries, read-back."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from loadtest import oversell
from loadtest.progress import ProgressBar
from loadtest.recorder import Recorder
from loadtest.targets import HoldAnswer, Target, TransientError
from loadtest.workload import CLOSED, Buyer, WorkloadSpec

# A fault to inject during a run: seconds after the start, its name, and what it does
# (returns a line saying what was done).
Fault = tuple[float, str, Callable[[], Awaitable[str]]]
# Most SKUs the divergence sampler reads each time (one GetAvailability).
SAMPLE_SKUS_MAX = 1_000
PROGRESS_EVERY_S = 0.25
BACKOFF_FIRST_S, BACKOFF_MAX_S = 0.05, 1.0


@dataclass(frozen=True)
class RunSettings:
    # Requests in flight at once (a checkout fleet's connection budget).
    requests_in_flight_max: int = 512
    # Buyers between arrival and their last answer; past it, arrivals wait (and count late).
    buyers_live_max: int = 50_000
    attempt_timeout_s: float = 5.0
    # A call still failing this long after its scheduled start is given up ("failed").
    retry_for_s: float = 30.0
    sample_interval_s: float = 1.0
    progress: bool = True


@dataclass
class RunFacts:
    """The run's own timings, read-back and fault log, beside the Recorder's figures."""

    run_s: float = 0.0
    samples: list[tuple[float, int]] = field(default_factory=list)
    read: dict[str, tuple[int, int]] = field(default_factory=dict)
    read_from_s: float = 0.0
    read_to_s: float = 0.0
    faults: list[dict] = field(default_factory=list)
    # The closed curve: how long buyers were still waiting to begin, and the operations
    # answered by then (the target's saturated throughput; the tail after it is not).
    saturated_s: float = 0.0
    saturated_ops: int = 0


class FlashRun:
    """One target, one workload: call `await run()` once."""

    def __init__(self, target: Target, buyers: Sequence[Buyer], skus: Sequence[str],
                 spec: WorkloadSpec, settings: RunSettings, recorder: Recorder,
                 key_prefix: str, faults: Sequence[Fault] = (),
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self._target = target
        self._buyers = buyers
        self._skus = skus
        self._spec = spec
        self._settings = settings
        self.recorder = recorder
        self._key_prefix = key_prefix
        self._faults = faults
        self._clock = clock
        self._started = 0.0
        self._arrived = 0
        self._in_flight = asyncio.Semaphore(settings.requests_in_flight_max)
        self.facts = RunFacts()

    def _now(self) -> float:
        return self._clock() - self._started

    async def run(self) -> RunFacts:
        """Play every buyer, then read the target's quantities back."""
        self._started = self._clock()
        bar = ProgressBar(self._target.name, self._spec.duration_s, self._settings.progress)
        helpers = [asyncio.create_task(self._sample_forever()),
                   asyncio.create_task(self._progress_forever(bar)),
                   *(asyncio.create_task(self._inject(fault)) for fault in self._faults)]
        try:
            await (self._dispatch_closed() if self._spec.arrival == CLOSED
                   else self._dispatch())
        finally:
            for helper in helpers:
                helper.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
        self.facts.run_s = self._now()
        self.facts.read_from_s = self._now()
        self.facts.read = await self._target.read(self._skus)
        self.facts.read_to_s = self._now()
        counts = self.recorder
        bar.done(f"done in {self.facts.run_s:.1f} s: {counts.ops:,} ops, "
                 f"held {counts.count('reserve', 'held'):,}, "
                 f"rejected {counts.count('reserve', 'rejected'):,}, "
                 f"attempt errors {counts.counts['attempt_errors']:,}")
        return self.facts

    async def _dispatch(self) -> None:
        """Start each buyer at its arrival time; at most buyers_live_max at once."""
        live: set[asyncio.Task] = set()
        buyers = self._buyers
        index = 0
        while index < len(buyers):
            now_s = self._now()
            while (index < len(buyers) and buyers[index].arrive_s <= now_s
                   and len(live) < self._settings.buyers_live_max):
                task = asyncio.create_task(self._buyer(buyers[index], buyers[index].arrive_s))
                live.add(task)
                task.add_done_callback(live.discard)
                index += 1
            self._arrived = index
            if index == len(buyers):
                break
            if len(live) >= self._settings.buyers_live_max:
                await asyncio.wait(live, return_when=asyncio.FIRST_COMPLETED)
            else:
                await asyncio.sleep(max(0.0, buyers[index].arrive_s - self._now()))
        if live:
            await asyncio.gather(*live)

    async def _dispatch_closed(self) -> None:
        """Begin a buyer each time a Reserve is answered, at most requests_in_flight_max
        Reserves outstanding, until the buyers run out or the duration has passed."""
        slots = asyncio.Semaphore(self._settings.requests_in_flight_max)
        live: set[asyncio.Task] = set()
        for index, buyer in enumerate(self._buyers):
            await slots.acquire()
            if self._now() >= self._spec.duration_s:
                break
            task = asyncio.create_task(self._buyer(buyer, self._now(), slots.release))
            live.add(task)
            task.add_done_callback(live.discard)
            self._arrived = index + 1
        self.facts.saturated_s = self._now()
        self.facts.saturated_ops = self.recorder.ops
        if live:
            await asyncio.gather(*live)

    async def _buyer(self, buyer: Buyer, scheduled_s: float,
                     reserve_answered: Callable[[], None] = lambda: None) -> None:
        """Reserve the cart; if held, think, then commit, release, or let the hold be."""
        key = f"{self._key_prefix}-b{buyer.index}"
        lines = [(self._skus[sku], units) for sku, units in buyer.lines]
        ttl_s = self._spec.hold_ttl_s
        try:
            reserved = await self._attempts(
                "reserve", scheduled_s,
                lambda timeout_s: self._target.reserve(f"{key}-reserve", lines, ttl_s,
                                                       timeout_s))
        finally:
            reserve_answered()
        if reserved is None:
            return
        first_sent_s, answer = reserved
        assert isinstance(answer, HoldAnswer)
        if not answer.held:
            return
        acked_s = self._now()
        hold = {"first_sent_s": first_sent_s, "acked_s": acked_s, "ttl_s": ttl_s}
        if buyer.outcome in ("commit", "release"):
            await asyncio.sleep(buyer.think_s)
            hold.update(await self._settle(buyer.outcome, answer.reservation_id, key))
        self.recorder.holds.extend(oversell.HoldRecord(sku, units, **hold)
                                   for sku, units in lines)

    async def _settle(self, outcome: str, reservation_id: str, key: str) -> dict:
        """Commit or release a hold; what the harness now knows about it."""
        call = self._target.commit if outcome == "commit" else self._target.release
        settled = await self._attempts(
            outcome, self._now(),
            lambda timeout_s: call(reservation_id, f"{key}-{outcome}", timeout_s))
        if outcome == "commit":
            if settled is None:
                return {"commit_unknown": True}
            if not settled[1]:
                return await self._release_after_refused_commit(reservation_id, key)
            return {"committed": True}
        if settled is None:  # may or may not have been released: it ended no earlier
            return {"released_s": self._now()}
        first_sent_s, released = settled
        return {"released_s": first_sent_s, "release_acked": bool(released)}

    async def _release_after_refused_commit(self, reservation_id: str, key: str) -> dict:
        """Release a hold whose Commit was refused, as the README asks of a checkout: a cart
        spanning partitions can have one part committed while another expired."""
        self.recorder.counts["release_after_refused_commit"] += 1
        released = await self._attempts(
            "release", self._now(),
            lambda timeout_s: self._target.release(reservation_id, f"{key}-cleanup", timeout_s))
        if released is None:
            return {"released_s": self._now()}
        return {"released_s": released[0], "release_acked": bool(released[1])}

    async def _attempts(self, kind: str, scheduled_s: float,
                        call: Callable[[float], Awaitable[object]]):
        """(first sent, answer) after retrying transient errors with the same key; None
        once retry_for_s has passed since `scheduled_s` (the operation failed)."""
        first_sent_s = None
        backoff_s = BACKOFF_FIRST_S
        while True:
            async with self._in_flight:
                sent_s = self._now()
                first_sent_s = sent_s if first_sent_s is None else first_sent_s
                try:
                    answer = await call(self._settings.attempt_timeout_s)
                except (TransientError, TimeoutError) as error:
                    failure = error
                except Exception as error:  # an unexpected answer: counted, never retried
                    self.recorder.attempt_failed(self._now(), error)
                    self.recorder.op_done(kind, scheduled_s, self._now(), "failed")
                    return None
                else:
                    self.recorder.op_done(kind, scheduled_s, self._now(),
                                          _outcome(kind, answer))
                    return first_sent_s, answer
            self.recorder.attempt_failed(self._now(), failure)
            if self._now() - scheduled_s > self._settings.retry_for_s:
                self.recorder.op_done(kind, scheduled_s, self._now(), "failed")
                return None
            await asyncio.sleep(backoff_s)
            backoff_s = min(BACKOFF_MAX_S, backoff_s * 2)

    async def _sample_forever(self) -> None:
        """The target's reserved + committed over the sampled SKUs, once a sample interval."""
        skus = list(self._skus[:SAMPLE_SKUS_MAX])
        while True:
            await asyncio.sleep(self._settings.sample_interval_s)
            with contextlib.suppress(Exception):  # a sample lost to a fault is just missing
                before_s = self._now()
                read = await asyncio.wait_for(self._target.read(skus), 5.0)
                at_s = (before_s + self._now()) / 2
                self.facts.samples.append((at_s, sum(r + c for r, c in read.values())))

    async def _progress_forever(self, bar: ProgressBar) -> None:
        counts = self.recorder
        while True:
            bar.show(self._now(), self._arrived, len(self._buyers), counts.ops,
                     counts.count("reserve", "held"), counts.count("reserve", "rejected"),
                     counts.counts["attempt_errors"])
            await asyncio.sleep(PROGRESS_EVERY_S)

    async def _inject(self, fault: Fault) -> None:
        at_s, name, action = fault
        await asyncio.sleep(max(0.0, at_s - self._now()))
        started_s = self._now()
        try:
            what = await action()
        except Exception as error:  # a fault that could not be injected is reported, not fatal
            what = f"not injected: {type(error).__name__}: {error}"
        self.facts.faults.append({"name": name, "at_s": round(started_s, 3), "what": what})


def _outcome(kind: str, answer: object) -> str:
    if kind == "reserve":
        return "held" if answer.held else "rejected"
    if kind == "commit":
        return "committed" if answer else "refused"
    return "released" if answer else "refused"
