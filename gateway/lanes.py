"""Per-partition coalescing: a batch or two in flight per partition, the commands behind queued."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence

from engine.config import LaneLimits
from engine.model import Command, Result, Unavailable
from gateway.partitions import PartitionUnavailable

# Reaches one partition: one result per command, in order.
ApplyBatch = Callable[[list[Command]], Awaitable[Sequence[Result]]]
# What a lot's future brings for each of its commands.
Answer = Result | Exception


class LaneOverloaded(Exception):
    """The partition's queue is full; the command was not queued."""


class DeadlineExpired(Exception):
    """The command's deadline passed before its batch was formed; it was not sent."""


class _Lot:
    """Commands queued as one item, answered by one future: per-lot work, not per-command."""

    __slots__ = ("commands", "deadline", "answers", "sent", "parts_in_flight")

    def __init__(self, commands: list[Command], deadline: float | None) -> None:
        self.commands = commands
        self.deadline = deadline
        self.answers: list[Answer | None] = [None] * len(commands)
        self.sent = 0  # commands[:sent] have gone in calls
        self.parts_in_flight = 0


class PartitionLane:
    """Coalesces commands for one partition: while its calls are in flight, new commands
    queue, and the queue goes as one call when a call returns (no timer: an idle lane adds
    no delay)."""

    def __init__(self, apply_batch: ApplyBatch, limits: LaneLimits,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._apply_batch = apply_batch
        self._limits = limits
        self._clock = clock
        # Keyed by each caller's future, so a cancelled caller leaves the queue in O(1).
        # A value is (command, deadline) for one command, or a _Lot.
        self._queue: OrderedDict[asyncio.Future, tuple[Command, float | None] | _Lot] = (
            OrderedDict())
        self._queued_commands = 0
        # The calls in flight; an idle lane holds no task.
        self._in_flight: set[asyncio.Task[None]] = set()
        self._pump_scheduled = False

    @property
    def queued(self) -> int:
        """Commands waiting, not in flight."""
        return self._queued_commands

    def waiting(self) -> list[Command]:
        """The commands waiting, oldest first: none of them has been sent."""
        return [command for item in self._queue.values()
                for command in (item.commands[item.sent:] if type(item) is _Lot
                                else item[:1])]

    def enqueue(self, command: Command, deadline: float | None = None,
                beyond_limit: bool = False) -> asyncio.Future[Result]:
        """Queue `command` for the next batch; the future resolves with its own result.

        Cancelling the future before its batch is formed takes the command out: it is
        never sent. `beyond_limit` queues even when the lane is full, for the commands
        that finish work already done (a cart's confirmations and rollbacks).
        """
        if self._queued_commands >= self._limits.queue_commands_max and not beyond_limit:
            raise LaneOverloaded(f"{self._queued_commands} commands already queued for this "
                                 "partition")
        return self._queue_item((command, deadline), 1)

    def enqueue_many(self, commands: Sequence[Command],
                     deadline: float | None = None) -> asyncio.Future[list[Answer]]:
        """Queue `commands` as one lot; its one future brings an answer per command, in order.

        An answer is the command's result, or PartitionUnavailable for a command the
        partition could not confirm durable; a failed call fails the future. A lot that
        does not fit in the queue is refused whole (LaneOverloaded). It shares a call with
        whatever else is queued when there is room for all of it, and is split across calls
        only when it is longer than batch_commands_max. Its deadline counts until its first
        command is sent; cancelling the future takes out what has not been sent.
        """
        if self._queued_commands + len(commands) > self._limits.queue_commands_max:
            raise LaneOverloaded(f"{self._queued_commands} commands already queued for this "
                                 f"partition; {len(commands)} more do not fit")
        if not commands:
            answered = asyncio.get_running_loop().create_future()
            answered.set_result([])
            return answered
        return self._queue_item(_Lot(list(commands), deadline), len(commands))

    def _queue_item(self, item: tuple[Command, float | None] | _Lot,
                    size: int) -> asyncio.Future:
        future = asyncio.get_running_loop().create_future()
        self._queue[future] = item
        self._queued_commands += size
        future.add_done_callback(self._forget_if_cancelled)
        if not self._pump_scheduled and len(self._in_flight) < self._limits.batches_in_flight_max:
            # On the next turn of the loop, so what callers queue in this one goes together.
            self._pump_scheduled = True
            asyncio.get_running_loop().call_soon(self._pump)
        return future

    async def submit(self, command: Command, deadline: float | None = None) -> Result:
        """Send `command` with the next batch and return its result; `deadline` is on `clock`."""
        return await self.enqueue(command, deadline)

    def _forget_if_cancelled(self, future: asyncio.Future) -> None:
        if future.cancelled():
            item = self._queue.pop(future, None)
            if item is not None:
                self._queued_commands -= _unsent(item)

    async def drain(self) -> None:
        """Wait until nothing is queued or in flight (for graceful shutdown)."""
        while self._in_flight or self._queue:
            if self._in_flight:
                # wait() rather than await: a drainer being cancelled must not cancel a call.
                await asyncio.wait(set(self._in_flight))
            else:
                await asyncio.sleep(0)  # the pump is scheduled and will take the queue

    def _pump(self) -> None:
        """Send the queue as batches while fewer than `batches_in_flight_max` are in flight."""
        self._pump_scheduled = False
        while self._queue and len(self._in_flight) < self._limits.batches_in_flight_max:
            batch = self._take_batch()
            if batch:
                call = asyncio.create_task(self._send(batch))
                self._in_flight.add(call)
                call.add_done_callback(self._returned)

    def _returned(self, call: asyncio.Task[None]) -> None:
        self._in_flight.discard(call)
        self._pump()  # the queue goes as soon as a call returns

    def _take_batch(self) -> list[_Part]:
        """Pop up to a batch of live commands (lots whole where they fit), failing those
        whose deadline has passed."""
        now = self._clock()
        room = self._limits.batch_commands_max
        batch: list[_Part] = []
        while self._queue and room:
            future, item = self._queue.popitem(last=False)
            lot = item if type(item) is _Lot else None
            size = _unsent(item)
            self._queued_commands -= size
            if future.done():  # cancelled, its done-callback not yet run
                continue
            deadline = item[1] if lot is None else item.deadline
            if deadline is not None and deadline <= now and not (lot and lot.sent):
                future.set_exception(DeadlineExpired(
                    f"deadline passed {now - deadline:.3f}s before the command was sent"))
                continue
            if lot is None:
                batch.append((future, item[0], 0, 0))
                room -= 1
                continue
            if size > room and batch:  # whole in the next call rather than split over two
                self._put_back_first(future, lot)
                break
            start = lot.sent
            lot.sent = stop = start + min(size, room)
            lot.parts_in_flight += 1
            room -= stop - start
            batch.append((future, lot, start, stop))
            if stop < len(lot.commands):  # longer than a call: the rest goes in the next
                self._put_back_first(future, lot)
        return batch

    def _put_back_first(self, future: asyncio.Future, lot: _Lot) -> None:
        """Queue what is unsent of `lot` ahead of everything else, for the next call."""
        self._queue[future] = lot
        self._queue.move_to_end(future, last=False)
        self._queued_commands += _unsent(lot)

    async def _send(self, batch: list[_Part]) -> None:
        """Make one call for `batch` and hand each caller its own result or the call's error."""
        commands: list[Command] = []
        for _, what, start, stop in batch:
            if type(what) is _Lot:
                commands += what.commands[start:stop]
            else:
                commands.append(what)
        try:
            results = await self._apply_batch(commands)
            if len(results) != len(commands):
                raise RuntimeError(
                    f"apply_batch returned {len(results)} results for {len(commands)} commands")
        except asyncio.CancelledError:
            for future, *_ in batch:
                future.cancel()
            raise
        except Exception as error:  # the partition failed this batch; later batches still go
            for future, *_ in batch:
                if not future.done():
                    future.set_exception(error)
            return
        _answer(batch, results)


# One caller's share of a call: (future, command, 0, 0), or (future, lot, start, stop) for
# the lot's commands[start:stop].
_Part = tuple[asyncio.Future, Command | _Lot, int, int]


def _unsent(item: tuple[Command, float | None] | _Lot) -> int:
    return len(item.commands) - item.sent if type(item) is _Lot else 1


def _answer(batch: list[_Part], results: Sequence[Result]) -> None:
    """Hand each caller of a returned call its results; a lot's future once all its parts are in."""
    offset = 0
    for future, what, start, stop in batch:
        if type(what) is not _Lot:
            result = results[offset]
            offset += 1
            if future.done():  # a caller cancelled in flight just drops its result
                continue
            if type(result) is Unavailable:  # not acknowledged: it may not be durable
                future.set_exception(PartitionUnavailable(result.reason))
            else:
                future.set_result(result)
            continue
        part = results[offset:offset + stop - start]
        offset += stop - start
        what.parts_in_flight -= 1
        if future.done():
            continue
        what.answers[start:stop] = [PartitionUnavailable(result.reason)
                                    if type(result) is Unavailable else result
                                    for result in part]
        if not what.parts_in_flight and what.sent == len(what.commands):
            future.set_result(what.answers)
