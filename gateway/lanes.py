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


class LaneOverloaded(Exception):
    """The partition's queue is full; the command was not queued."""


class DeadlineExpired(Exception):
    """The command's deadline passed before its batch was formed; it was not sent."""


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
        self._queue: OrderedDict[asyncio.Future[Result], tuple[Command, float | None]] = (
            OrderedDict())
        # The calls in flight; an idle lane holds no task.
        self._in_flight: set[asyncio.Task[None]] = set()
        self._pump_scheduled = False

    @property
    def queued(self) -> int:
        """Commands waiting, not in flight."""
        return len(self._queue)

    def waiting(self) -> list[Command]:
        """The commands waiting, oldest first: none of them has been sent."""
        return [command for command, _ in self._queue.values()]

    def enqueue(self, command: Command, deadline: float | None = None,
                beyond_limit: bool = False) -> asyncio.Future[Result]:
        """Queue `command` for the next batch; the future resolves with its own result.

        Cancelling the future before its batch is formed takes the command out: it is
        never sent. `beyond_limit` queues even when the lane is full, for the commands
        that finish work already done (a cart's confirmations and rollbacks).
        """
        if len(self._queue) >= self._limits.queue_commands_max and not beyond_limit:
            raise LaneOverloaded(f"{len(self._queue)} commands already queued for this partition")
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._queue[future] = (command, deadline)
        future.add_done_callback(self._forget_if_cancelled)
        if not self._pump_scheduled and len(self._in_flight) < self._limits.batches_in_flight_max:
            # On the next turn of the loop, so what callers queue in this one goes together.
            self._pump_scheduled = True
            asyncio.get_running_loop().call_soon(self._pump)
        return future

    async def submit(self, command: Command, deadline: float | None = None) -> Result:
        """Send `command` with the next batch and return its result; `deadline` is on `clock`."""
        return await self.enqueue(command, deadline)

    def _forget_if_cancelled(self, future: asyncio.Future[Result]) -> None:
        if future.cancelled():
            self._queue.pop(future, None)

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

    def _take_batch(self) -> list[tuple[asyncio.Future[Result], Command]]:
        """Pop up to a batch of live commands, failing those whose deadline has passed."""
        now = self._clock()
        batch: list[tuple[asyncio.Future[Result], Command]] = []
        while self._queue and len(batch) < self._limits.batch_commands_max:
            future, (command, deadline) = self._queue.popitem(last=False)
            if future.done():  # cancelled, its done-callback not yet run
                continue
            if deadline is not None and deadline <= now:
                future.set_exception(DeadlineExpired(
                    f"deadline passed {now - deadline:.3f}s before the command was sent"))
                continue
            batch.append((future, command))
        return batch

    async def _send(self, batch: list[tuple[asyncio.Future[Result], Command]]) -> None:
        """Make one call for `batch` and hand each caller its own result or the call's error."""
        try:
            results = await self._apply_batch([command for _, command in batch])
            if len(results) != len(batch):
                raise RuntimeError(
                    f"apply_batch returned {len(results)} results for {len(batch)} commands")
        except asyncio.CancelledError:
            for future, _ in batch:
                future.cancel()
            raise
        except Exception as error:  # the partition failed this batch; later batches still go
            for future, _ in batch:
                if not future.done():
                    future.set_exception(error)
            return
        for (future, _), result in zip(batch, results):
            if future.done():  # a caller cancelled in flight just drops its result
                continue
            if type(result) is Unavailable:  # not acknowledged: it may not be durable
                future.set_exception(PartitionUnavailable(result.reason))
            else:
                future.set_result(result)
