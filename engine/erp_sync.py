"""The ERP sync job: drain every partition's journal into the ERP, exactly once, gently.

Per round: read the journals from the reader checkpoints for a window, sum the changes per
SKU-location (leaving out the ERP's own), save the plan, post its batches (bounded in
flight, backoff with jitter, Retry-After, circuit breaker), then checkpoint. Memory holds at
most one window; the backlog waits in the journal, which is not trimmed past a checkpoint.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import logging
import random
import time
from collections.abc import Callable

import redis

from engine import journal
from engine.circuit_breaker import BreakerState, CircuitBreaker
from engine.config import ErpSyncConfig
from engine.erp_client import ErpAdapter, ErpRejected, ErpRetryLater
from engine.erp_outbox import SyncState
from engine.erp_plan import Plan, Window
from engine.journal_store import JournalStore

log = logging.getLogger(__name__)
READER = "erp-sync"
LEASE_TTL_MS = 10_000
STATUS_INTERVAL_S = 1.0
STATUS_TTL_MS = 10_000
# Sync lags kept for percentiles (one per journal entry that had something to send).
LAG_SAMPLES_MAX = 100_000


class SyncStats:
    """What operators and benchmarks read: progress, errors and lag."""

    def __init__(self) -> None:
        self.requests = collections.Counter()  # by outcome: ok, retry, rate_limited, rejected
        self.batches_posted = 0
        self.lines_posted = 0
        self.plans_finished = 0
        self.dead_letters = 0
        self.journal_gaps = 0
        self.lag_ms: collections.deque[int] = collections.deque(maxlen=LAG_SAMPLES_MAX)

    def lag_ms_percentile(self, fraction: float) -> int:
        if not self.lag_ms:
            return 0
        ordered = sorted(self.lag_ms)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


class ErpSync:
    """Drains `partitions` journals under `config.key_prefix` into `erp`."""

    def __init__(self, client: redis.Redis, erp: ErpAdapter, partitions: int,
                 config: ErpSyncConfig | None = None,
                 clock_s: Callable[[], float] = time.monotonic) -> None:
        self.config = config = config or ErpSyncConfig()
        self._erp = erp
        self._stores = [JournalStore(client, partition, config.key_prefix)
                        for partition in range(partitions)]
        self.state = SyncState(client, config.key_prefix)
        self.breaker = CircuitBreaker(config.breaker_failures_max, config.breaker_recovery_s,
                                      clock_s)
        self._clock_s = clock_s
        self._not_before_s = 0.0  # no call before this: the ERP's Retry-After
        self.stats = SyncStats()
        self.oldest_pending_ms = 0  # when the oldest change not yet in the ERP was applied
        self._lease_lost = False

    # ---- running ----------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Drain until `stop` is set. Cancelling it anywhere is safe: a plan is saved before
        its first batch is posted, and the next job resumes it under the same keys."""
        if not await self._take_lease(stop):
            return
        renewing = asyncio.create_task(self._renew_lease(stop))
        publishing = asyncio.create_task(self._publish_status(stop))
        try:
            await asyncio.to_thread(self.register)
            while not stop.is_set() and not self._lease_lost:
                try:
                    # First a plan left unsettled by a crash or an error: a new window read
                    # from the same checkpoints would post its changes again.
                    await self._resume()
                    # A reconciliation compares while no plan is in flight.
                    if await asyncio.to_thread(self.state.paused) or \
                            not await self.round(stop):
                        await _wait(stop, self.config.idle_poll_s)
                except redis.RedisError as error:
                    log.warning("Redis unreachable (%s); retrying in 1 s", error)
                    await _wait(stop, 1.0)
        finally:
            renewing.cancel()
            publishing.cancel()
            with contextlib.suppress(redis.RedisError):
                await asyncio.to_thread(self.state.drop_lease)

    async def round(self, stop: asyncio.Event | None = None) -> bool:
        """Read one window and settle it in the ERP; False if the journals had nothing new."""
        window = await self._read_window(stop)
        if not window.reached:
            return False
        if window.lines():
            plan = await asyncio.to_thread(self.state.save_plan, window,
                                           self.config.batch_lines_max)
            await self._settle(plan, set(), window.change_times_ms)
        else:  # nothing for the ERP (holds, its own movements): only move the checkpoints
            await asyncio.to_thread(self._checkpoint, window.reached)
        return True

    async def _resume(self) -> None:
        pending = await asyncio.to_thread(self.state.pending_plan)
        if pending is not None:
            plan, settled = pending
            log.info("resuming plan %s: %d of %d batches settled", plan.number, len(settled),
                     len(plan.batches))
            await self._settle(plan, settled, [])

    def register(self) -> None:
        """Register the reader on every partition; trimming waits for it from now on."""
        for store in self._stores:
            store.register_reader(READER)

    # ---- reading ----------------------------------------------------------------------

    async def _read_window(self, stop: asyncio.Event | None) -> Window:
        config = self.config
        window = Window(config.erp_sources, config.plan_lines_max)
        checkpoints = await asyncio.to_thread(self._checkpoints)
        closes_at_s = self._clock_s() + config.window_s
        while True:
            read = await asyncio.to_thread(self._read_some, window, checkpoints)
            self.oldest_pending_ms = min(window.change_times_ms, default=0)
            if window.full or self._clock_s() >= closes_at_s or (stop and stop.is_set()):
                return window
            if not read:
                if not window.reached:
                    return window  # idle: the caller waits
                await _wait(stop, config.idle_poll_s)

    def _checkpoints(self) -> list[int]:
        return [store.readers()[READER] for store in self._stores]

    def _read_some(self, window: Window, checkpoints: list[int]) -> int:
        """Read up to one chunk per partition into the window; how many entries were read."""
        read, chunk = 0, self.config.read_entries_max
        for partition, store in enumerate(self._stores):
            reached = window.reached.get(partition, checkpoints[partition])
            for count, raw in enumerate(store.entries_after(reached, chunk=chunk), 1):
                entry = journal.decode_ledger(raw)
                # An entry may start at or before `reached` only when the reader was
                # registered in its middle (registration counts in entries); a start past
                # it means entries are missing.
                if entry.first_seq > reached + 1:
                    self.stats.journal_gaps += 1
                    log.error("partition %s: journal has no entries %s..%s for the ERP "
                              "(trimmed before the reader was registered?)", partition,
                              reached + 1, entry.first_seq - 1)
                window.add(partition, entry)
                reached = entry.last_seq
                read += 1
                if count == chunk or window.full:
                    break
            if window.full:
                break
        return read

    def _checkpoint(self, reached: dict[int, int]) -> None:
        for partition, seq in reached.items():
            self._stores[partition].checkpoint(READER, seq)

    # ---- posting -----------------------------------------------------------------------

    async def _settle(self, plan: Plan, settled: set[int], change_times_ms: list[int]) -> None:
        """Post every unsettled batch of the plan, bounded in flight, then checkpoint."""
        slots = asyncio.Semaphore(self.config.in_flight_max)

        async def settle_one(index: int) -> None:
            async with slots:
                await self._post_until_settled(plan, index)

        # A failure (Redis, a lost lease) cancels the other batches: the plan is resumed.
        try:
            async with asyncio.TaskGroup() as batches:
                for index in range(len(plan.batches)):
                    if index not in settled:
                        batches.create_task(settle_one(index))
        except BaseExceptionGroup as failed:
            raise failed.exceptions[0] from None
        await asyncio.to_thread(self.state.finish, plan, self._stores, READER)
        now_ms = int(time.time() * 1000)
        self.stats.lag_ms.extend(now_ms - applied_ms for applied_ms in change_times_ms)
        self.stats.plans_finished += 1
        self.oldest_pending_ms = 0

    async def _post_until_settled(self, plan: Plan, index: int) -> None:
        lines, key = plan.batches[index], plan.key(index)
        for attempt in itertools.count():
            await self._wait_until_allowed()
            try:
                await self._erp.post_adjustments(key, key, lines)
            except ErpRetryLater as error:
                await self._after_retryable(error, attempt, key)
                continue
            except ErpRejected as error:
                self.breaker.succeeded()  # it answered: it is up
                self.stats.requests["rejected"] += 1
                await self._dead_letter(plan, index, error)
                return
            self.breaker.succeeded()
            self.stats.requests["ok"] += 1
            self.stats.batches_posted += 1
            self.stats.lines_posted += len(lines)
            await asyncio.to_thread(self.state.settle, index)
            return

    async def _wait_until_allowed(self) -> None:
        while True:
            if self._lease_lost:
                raise LeaseLost("another sync job holds the lease")
            wait_s = max(self._not_before_s - self._clock_s(), self.breaker.try_acquire())
            if wait_s <= 0:
                return
            await asyncio.sleep(wait_s)

    async def _after_retryable(self, error: ErpRetryLater, attempt: int, key: str) -> None:
        if error.rate_limited:
            # The ERP is up and asked for a pause: every call waits, not only this one.
            self.breaker.succeeded()
            self.stats.requests["rate_limited"] += 1
            pause_s = error.retry_after_s if error.retry_after_s is not None else 1.0
            self._not_before_s = max(self._not_before_s, self._clock_s() + pause_s)
            return
        self.stats.requests["retry"] += 1
        if error.retry_after_s is not None:
            # Down, and it said until when: no call at all until then, then one probe.
            self.breaker.trip(error.retry_after_s)
            log.warning("ERP down (%s); next call in %.1fs", error, error.retry_after_s)
            return
        self.breaker.failed()
        delay_s = random.uniform(0, min(self.config.backoff_cap_s,
                                        self.config.backoff_base_s * 2 ** min(attempt, 30)))
        log.warning("batch %s not taken (%s); retrying in %.2fs", key, error, delay_s)
        await asyncio.sleep(delay_s)

    async def _dead_letter(self, plan: Plan, index: int, error: ErpRejected) -> None:
        reason = ("idempotency key already used with another body" if error.status == 409
                  else "refused as invalid")
        log.error("batch %s refused by the ERP (%s): parked in %s", plan.key(index), error,
                  self.state.dlq_key)
        await asyncio.to_thread(self.state.dead_letter, plan, index, error.status, error.body,
                                reason)
        self.stats.dead_letters += 1

    # ---- the lease ---------------------------------------------------------------------

    async def _take_lease(self, stop: asyncio.Event) -> bool:
        """Wait for the lease (False if stopped first): two jobs posting the same window
        would post it twice."""
        warned = False
        while not await asyncio.to_thread(self.state.take_lease, LEASE_TTL_MS):
            if not warned:
                log.warning("another sync job holds the lease; waiting for it")
                warned = True
            if await _wait(stop, 0.5):
                return False
        return True

    async def _renew_lease(self, stop: asyncio.Event) -> None:
        while not await _wait(stop, LEASE_TTL_MS / 4000):
            try:
                renewed = await asyncio.to_thread(self.state.renew_lease, LEASE_TTL_MS)
            except redis.RedisError as error:
                log.warning("cannot renew the sync lease: %s", error)
                continue
            if not renewed:
                log.error("the sync lease was lost; this job stops posting")
                self._lease_lost = True
                return

    async def _publish_status(self, stop: asyncio.Event) -> None:
        """Every second: breaker and lag, where serve's dashboard reads them."""
        while not await _wait(stop, STATUS_INTERVAL_S):
            status = {"breaker_state": int(self.breaker_state()), "lag_s": self.lag_s(),
                      "updated_at_unix_ms": int(time.time() * 1000)}
            try:
                await asyncio.to_thread(self.state.publish_status, status, STATUS_TTL_MS)
            except redis.RedisError as error:
                log.debug("status not published: %s", error)

    # ---- what operators read ------------------------------------------------------------

    def backlog_commands(self) -> int:
        """Commands journaled and not yet checkpointed by this reader, over all partitions."""
        total = 0
        for store in self._stores:
            drained = store.readers().get(READER)
            if drained is not None:
                total += max(0, store.last_seq() - drained)
        return total

    def lag_s(self) -> float:
        if not self.oldest_pending_ms:
            return 0.0
        return max(0.0, time.time() - self.oldest_pending_ms / 1000)

    def breaker_state(self) -> BreakerState:
        return self.breaker.state


class LeaseLost(Exception):
    """Another sync job took over: this one must not post."""


async def _wait(stop: asyncio.Event | None, timeout_s: float) -> bool:
    """Sleep up to `timeout_s`, waking when `stop` is set; True if it is."""
    if stop is None:
        await asyncio.sleep(timeout_s)
        return False
    try:
        await asyncio.wait_for(stop.wait(), timeout_s)
    except TimeoutError:
        return False
    return True
