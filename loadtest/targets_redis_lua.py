"""The hand-rolled baseline: holds as Redis+Lua scripts (check, DECRBY, SET NX key, TTL).

What most teams write: an available counter per SKU decremented by a script that checks it
first, an idempotency key taken with SET NX (kept for the TTL), the hold as a hash with its
expiry in a sorted set, and a sweeper that gives expired holds back. Keys are built inside
the scripts from a run prefix, which a single (non-cluster) Redis allows.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from loadtest.targets import HoldAnswer, Line, TargetUnavailable, TransientError

SWEEP_INTERVAL_S = 0.25
SWEEP_HOLDS_MAX = 1_000

# ARGV: prefix, key, hold id, ttl_s, now_ms, then SKU and units per line. Idempotency keys
# and holds outlive the TTL by 3600 s, so a late retry still finds its answer.
RESERVE_LUA = """
local p = ARGV[1]
local idem = p .. 'idem:' .. ARGV[2]
if not redis.call('SET', idem, 'PENDING', 'NX', 'EX', tonumber(ARGV[4]) + 3600) then
  return redis.call('GET', idem)
end
local lines = {}
for i = 6, #ARGV, 2 do
  local sku, units = ARGV[i], tonumber(ARGV[i + 1])
  if tonumber(redis.call('GET', p .. 'avail:' .. sku) or '0') < units then
    redis.call('SET', idem, 'REJECTED', 'KEEPTTL')
    return 'REJECTED'
  end
  table.insert(lines, sku .. '|' .. units)
end
for i = 6, #ARGV, 2 do
  redis.call('DECRBY', p .. 'avail:' .. ARGV[i], ARGV[i + 1])
  redis.call('INCRBY', p .. 'reserved:' .. ARGV[i], ARGV[i + 1])
end
local expires_ms = tonumber(ARGV[5]) + 1000 * tonumber(ARGV[4])
redis.call('HSET', p .. 'hold:' .. ARGV[3], 'state', 'HELD', 'lines', table.concat(lines, ';'))
redis.call('PEXPIRE', p .. 'hold:' .. ARGV[3], 1000 * (tonumber(ARGV[4]) + 3600))
redis.call('ZADD', p .. 'expiry', expires_ms, ARGV[3])
local answer = 'HELD:' .. ARGV[3]
redis.call('SET', idem, answer, 'KEEPTTL')
return answer
"""

# Ends a hold: ARGV prefix, key, hold id, now_ms, the new state. A hold past its expiry
# cannot be committed (it is expired on the spot); released or expired units go back.
SETTLE_LUA = """
local p = ARGV[1]
local idem = p .. 'idem:' .. ARGV[2]
if not redis.call('SET', idem, 'PENDING', 'NX', 'EX', 3600) then
  return redis.call('GET', idem)
end
local hold = p .. 'hold:' .. ARGV[3]
local state = redis.call('HGET', hold, 'state')
local answer = 'REFUSED'
if state == 'HELD' then
  local target = ARGV[5]
  local due = redis.call('ZSCORE', p .. 'expiry', ARGV[3])
  if target == 'COMMITTED' and due and tonumber(due) <= tonumber(ARGV[4]) then
    target = 'EXPIRED'
  end
  for line in string.gmatch(redis.call('HGET', hold, 'lines'), '[^;]+') do
    local sku, units = string.match(line, '(.+)|(%d+)')
    redis.call('DECRBY', p .. 'reserved:' .. sku, units)
    if target == 'COMMITTED' then
      redis.call('INCRBY', p .. 'committed:' .. sku, units)
    else
      redis.call('INCRBY', p .. 'avail:' .. sku, units)
    end
  end
  redis.call('HSET', hold, 'state', target)
  redis.call('ZREM', p .. 'expiry', ARGV[3])
  if target == ARGV[5] then answer = target end
end
redis.call('SET', idem, answer, 'KEEPTTL')
return answer
"""

# Gives back holds due by now_ms, at most ARGV[3] of them: ARGV prefix, now_ms, limit.
SWEEP_LUA = """
local p = ARGV[1]
local due = redis.call('ZRANGEBYSCORE', p .. 'expiry', '-inf', ARGV[2], 'LIMIT', 0, ARGV[3])
for _, id in ipairs(due) do
  local hold = p .. 'hold:' .. id
  if redis.call('HGET', hold, 'state') == 'HELD' then
    for line in string.gmatch(redis.call('HGET', hold, 'lines'), '[^;]+') do
      local sku, units = string.match(line, '(.+)|(%d+)')
      redis.call('DECRBY', p .. 'reserved:' .. sku, units)
      redis.call('INCRBY', p .. 'avail:' .. sku, units)
    end
    redis.call('HSET', hold, 'state', 'EXPIRED')
  end
  redis.call('ZREM', p .. 'expiry', id)
end
return #due
"""


class RedisLuaTarget:
    """The three scripts over one redis.asyncio pool, plus the expiry sweeper task."""

    name = "redis_lua"

    def __init__(self, url: str, run_id: str, connections_max: int) -> None:
        self.url = url
        self._prefix = f"flash:{run_id}:"
        self._connections_max = connections_max
        self._sweeper: asyncio.Task | None = None

    async def setup(self, skus: Sequence[str], stock: int) -> None:
        # One connection per request in flight, as a service would pool them.
        # ... plus a few for the sweeper and the harness's read-backs.
        self._redis = aioredis.Redis.from_url(self.url,
                                              max_connections=self._connections_max + 8)
        self._reserve = self._redis.register_script(RESERVE_LUA)
        self._settle_script = self._redis.register_script(SETTLE_LUA)
        self._sweep = self._redis.register_script(SWEEP_LUA)
        try:
            await self._redis.ping()
        except (RedisConnectionError, OSError) as error:
            raise TargetUnavailable(f"Redis at {self.url}: {error}") from error
        await self._redis.mset({f"{self._prefix}avail:{sku}": stock for sku in skus})
        self._sweeper = asyncio.create_task(self._sweep_forever())

    async def reserve(self, key: str, lines: Sequence[Line], ttl_s: int,
                      timeout_s: float) -> HoldAnswer:
        # The hold is named by its cart's key: one hold per key, as the script allows.
        args = [self._prefix, key, key, ttl_s, int(time.time() * 1000)]
        for sku, units in lines:
            args += [sku, units]
        answer = await self._call(self._reserve, args, timeout_s)
        held = answer.startswith(b"HELD:")
        return HoldAnswer(held, answer[5:].decode() if held else "")

    async def commit(self, reservation_id: str, key: str, timeout_s: float) -> bool:
        return await self._settle(reservation_id, key, "COMMITTED", timeout_s)

    async def release(self, reservation_id: str, key: str, timeout_s: float) -> bool:
        return await self._settle(reservation_id, key, "RELEASED", timeout_s)

    async def _settle(self, reservation_id: str, key: str, state: str,
                      timeout_s: float) -> bool:
        args = [self._prefix, key, reservation_id, int(time.time() * 1000), state]
        return await self._call(self._settle_script, args, timeout_s) == state.encode()

    async def _call(self, script, args: list, timeout_s: float) -> bytes:
        try:
            return await asyncio.wait_for(script(args=args), timeout_s)
        except (RedisConnectionError, RedisTimeoutError, TimeoutError) as error:
            raise TransientError(f"{type(error).__name__}: {error}") from error

    async def _sweep_forever(self) -> None:
        """Give back expired holds every SWEEP_INTERVAL_S, as a cron or worker would."""
        while True:
            with contextlib.suppress(RedisConnectionError, RedisTimeoutError):
                while await self._sweep(args=[self._prefix, int(time.time() * 1000),
                                              SWEEP_HOLDS_MAX]) >= SWEEP_HOLDS_MAX:
                    pass
            await asyncio.sleep(SWEEP_INTERVAL_S)

    async def read(self, skus: Sequence[str]) -> dict[str, tuple[int, int]]:
        reserved = await self._redis.mget([f"{self._prefix}reserved:{sku}" for sku in skus])
        committed = await self._redis.mget([f"{self._prefix}committed:{sku}" for sku in skus])
        return {sku: (int(r or 0), int(c or 0)) for sku, r, c in zip(skus, reserved, committed)}

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        # The Redis may be shared: only this run's keys go.
        with contextlib.suppress(RedisConnectionError, OSError):
            batch = []
            async for key in self._redis.scan_iter(match=f"{self._prefix}*", count=10_000):
                batch.append(key)
                if len(batch) >= 10_000:
                    await self._redis.unlink(*batch)
                    batch.clear()
            if batch:
                await self._redis.unlink(*batch)
        await self._redis.aclose()
