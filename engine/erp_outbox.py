"""The sync job's state in Redis: its id, the plan being posted, its lease, and dead letters.

Keys under `{prefix}:erp:`: `sync-id`, `plan-number`, `plan` (hash: the plan and which of
its batches are settled), `lease` (the one job allowed to post), `paused` (set while a
reconciliation compares), `status` (what a running job shows), `dlq` and `history`
(streams: refused batches, finished plans).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence

import redis

from engine.erp_plan import Plan, Window, plan_window
from engine.journal_store import JournalStore

SETTLED, DEAD = b"settled", b"dead"
DLQ_ENTRIES_MAX = 100_000
HISTORY_ENTRIES_MAX = 100_000

# KEYS: lease. ARGV: owner, ttl_ms. Renew only a lease this owner still holds.
_RENEW_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# KEYS: lease. ARGV: owner. Drop the lease only if this owner still holds it.
_DROP_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class SyncState:
    """Everything the sync job must find again after a restart."""

    def __init__(self, client: redis.Redis, prefix: str = "availability") -> None:
        self._client = client
        base = f"{prefix}:erp"
        self._sync_id_key, self._number_key = f"{base}:sync-id", f"{base}:plan-number"
        self._plan_key, self._lease_key = f"{base}:plan", f"{base}:lease"
        self._pause_key, self._status_key = f"{base}:paused", f"{base}:status"
        self.dlq_key, self.history_key = f"{base}:dlq", f"{base}:history"
        self._renew = client.register_script(_RENEW_LUA)
        self._drop = client.register_script(_DROP_LUA)
        self.owner = uuid.uuid4().hex

    def sync_id(self) -> str:
        """This engine's sync id, drawn once: keys of an engine whose Redis was wiped and
        rebuilt can never collide with keys the ERP already holds."""
        self._client.set(self._sync_id_key, uuid.uuid4().hex[:12], nx=True)
        return self._client.get(self._sync_id_key).decode()

    # ---- the plan -------------------------------------------------------------------------

    def save_plan(self, window: Window, batch_lines_max: int) -> Plan:
        """Number the window's plan and store it before anything is posted."""
        plan = plan_window(window, self.sync_id(), self._client.incr(self._number_key),
                           batch_lines_max)
        with self._client.pipeline(transaction=True) as pipe:
            pipe.delete(self._plan_key)
            pipe.hset(self._plan_key, "plan", plan.encode())
            pipe.execute()
        return plan

    def pending_plan(self) -> tuple[Plan, set[int]] | None:
        """The plan a stopped job left, and which of its batches are already settled."""
        fields = self._client.hgetall(self._plan_key)
        if b"plan" not in fields:
            return None
        settled = {int(name.split(b":", 1)[1]) for name in fields if name.startswith(b"done:")}
        return Plan.decode(fields[b"plan"]), settled

    def progress(self) -> tuple[int, bool, int]:
        """(plan number drawn last, whether a plan is pending, batches settled in it)."""
        with self._client.pipeline(transaction=True) as pipe:
            pipe.get(self._number_key)
            pipe.hlen(self._plan_key)
            number, fields = pipe.execute()
        return int(number or 0), fields > 0, max(fields - 1, 0)

    def settle(self, index: int) -> None:
        self._client.hset(self._plan_key, f"done:{index}", SETTLED)

    def dead_letter(self, plan: Plan, index: int, status: int, body: str, reason: str) -> None:
        """Park a batch the ERP refused, with its answer, and count it settled: atomically."""
        entry = {"batch_id": plan.key(index), "idempotency_key": plan.key(index),
                 "lines": json.dumps([line._asdict() for line in plan.batches[index]]),
                 "status": str(status), "response": body, "reason": reason,
                 "at_unix_ms": str(int(time.time() * 1000))}
        with self._client.pipeline(transaction=True) as pipe:
            pipe.xadd(self.dlq_key, entry, maxlen=DLQ_ENTRIES_MAX, approximate=True)
            pipe.hset(self._plan_key, f"done:{index}", DEAD)
            pipe.execute()

    def finish(self, plan: Plan, stores: Sequence[JournalStore], reader: str) -> None:
        """Checkpoint every partition the plan read, then drop the plan. A crash in between
        leaves the plan, which is posted again (the ERP drops repeated keys) and finished."""
        for partition, seq in sorted(plan.reached.items()):
            stores[partition].checkpoint(reader, seq)
        with self._client.pipeline(transaction=True) as pipe:
            # What went where, so `availability trace` can follow a change into the ERP.
            pipe.xadd(self.history_key, {
                "plan": plan.number, "keys": json.dumps([plan.key(i)
                                                         for i in range(len(plan.batches))]),
                "reached": json.dumps(plan.reached), "finished_at_unix_ms":
                    int(time.time() * 1000)}, maxlen=HISTORY_ENTRIES_MAX, approximate=True)
            pipe.delete(self._plan_key)
            pipe.execute()

    def dead_letters(self) -> int:
        return self._client.xlen(self.dlq_key)

    # ---- what a running job shows others ---------------------------------------------------

    def publish_status(self, status: dict, ttl_ms: int) -> None:
        """The job's breaker and lag for other processes' dashboards; lapses if it dies."""
        with self._client.pipeline(transaction=True) as pipe:
            pipe.hset(self._status_key, mapping=status)
            pipe.pexpire(self._status_key, ttl_ms)
            pipe.execute()

    def status(self) -> dict[str, float]:
        """The running job's last published figures; empty when none runs."""
        return {name.decode(): float(value)
                for name, value in self._client.hgetall(self._status_key).items()}

    # ---- pausing, for reconciliation ------------------------------------------------------

    def pause(self, ttl_ms: int) -> None:
        """Ask the sync job to start no new plan for up to `ttl_ms` (a reconciliation runs)."""
        self._client.set(self._pause_key, 1, px=ttl_ms)

    def paused(self) -> bool:
        return bool(self._client.exists(self._pause_key))

    def unpause(self) -> None:
        self._client.delete(self._pause_key)

    # ---- the lease --------------------------------------------------------------------------

    def take_lease(self, ttl_ms: int) -> bool:
        """Become the one job that posts, unless another holds the lease."""
        return bool(self._client.set(self._lease_key, self.owner, nx=True, px=ttl_ms))

    def renew_lease(self, ttl_ms: int) -> bool:
        return bool(self._renew(keys=[self._lease_key], args=[self.owner, ttl_ms]))

    def drop_lease(self) -> None:
        self._drop(keys=[self._lease_key], args=[self.owner])
