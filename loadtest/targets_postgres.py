"""The database baseline: PostgreSQL holds with `SELECT ... FOR UPDATE` on the stock rows.

As Saleor allocates: one transaction per call locks the cart's stock rows (in SKU order, so
two carts never deadlock), checks what is left, and writes the hold; an idempotency row
taken with INSERT ... ON CONFLICT DO NOTHING answers a retry with the first result. A
sweeper gives expired holds back. Each run works in a schema of its own, dropped at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence

import asyncpg

from loadtest.targets import HoldAnswer, Line, TargetUnavailable, TransientError

SWEEP_INTERVAL_S = 0.25
SWEEP_HOLDS_MAX = 500
CONNECT_TIMEOUT_S = 5.0

_SCHEMA = """
CREATE SCHEMA {s};
CREATE TABLE {s}.stock (sku text PRIMARY KEY, on_hand bigint NOT NULL,
                        reserved bigint NOT NULL DEFAULT 0, committed bigint NOT NULL DEFAULT 0);
CREATE TABLE {s}.idempotency (key text PRIMARY KEY, answer text);
CREATE TABLE {s}.holds (id bigserial PRIMARY KEY, state text NOT NULL,
                        expires_at_ms bigint NOT NULL, skus text[] NOT NULL,
                        units bigint[] NOT NULL);
CREATE INDEX ON {s}.holds (expires_at_ms) WHERE state = 'HELD';
"""


class PostgresTarget:
    """Reserve, Commit and Release as transactions over an asyncpg pool."""

    name = "postgres"

    def __init__(self, dsn: str, run_id: str, pool_size: int) -> None:
        self.dsn = dsn
        self._schema = f"flash_{run_id}".replace("-", "_").lower()
        self._pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._sweeper: asyncio.Task | None = None

    async def setup(self, skus: Sequence[str], stock: int) -> None:
        try:
            self._pool = await asyncpg.create_pool(
                self.dsn, min_size=self._pool_size, max_size=self._pool_size,
                timeout=CONNECT_TIMEOUT_S)
        except (OSError, asyncpg.PostgresError, TimeoutError) as error:
            raise TargetUnavailable(f"PostgreSQL at {self.dsn}: "
                                    f"{type(error).__name__}: {error}") from error
        async with self._pool.acquire() as connection:
            await connection.execute(_SCHEMA.format(s=self._schema))
            await connection.copy_records_to_table(
                "stock", schema_name=self._schema, columns=["sku", "on_hand"],
                records=[(sku, stock) for sku in skus])
        self._sweeper = asyncio.create_task(self._sweep_forever())

    async def reserve(self, key: str, lines: Sequence[Line], ttl_s: int,
                      timeout_s: float) -> HoldAnswer:
        answer = await self._transaction(self._reserve, timeout_s, key, lines, ttl_s)
        held = answer.startswith("HELD:")
        return HoldAnswer(held, answer[5:] if held else "")

    async def _reserve(self, connection, key: str, lines: Sequence[Line], ttl_s: int) -> str:
        s = self._schema
        if (first := await self._first_answer(connection, key)) is not None:
            return first
        ordered = sorted(lines)
        skus = [sku for sku, _ in ordered]
        rows = await connection.fetch(
            f"SELECT sku, on_hand - reserved - committed AS available FROM {s}.stock "
            f"WHERE sku = ANY($1::text[]) ORDER BY sku FOR UPDATE", skus)
        available = {row["sku"]: row["available"] for row in rows}
        if any(available.get(sku, 0) < units for sku, units in ordered):
            answer = "REJECTED"
        else:
            units = [units for _, units in ordered]
            await connection.execute(
                f"UPDATE {s}.stock SET reserved = stock.reserved + line.units FROM "
                f"unnest($1::text[], $2::bigint[]) AS line(sku, units) "
                f"WHERE stock.sku = line.sku", skus, units)
            hold_id = await connection.fetchval(
                f"INSERT INTO {s}.holds (state, expires_at_ms, skus, units) "
                f"VALUES ('HELD', $1, $2, $3) RETURNING id",
                int(time.time() * 1000) + 1000 * ttl_s, skus, units)
            answer = f"HELD:{hold_id}"
        await connection.execute(f"UPDATE {s}.idempotency SET answer = $2 WHERE key = $1",
                                 key, answer)
        return answer

    async def commit(self, reservation_id: str, key: str, timeout_s: float) -> bool:
        return await self._transaction(self._settle, timeout_s, key, reservation_id,
                                       "COMMITTED") == "COMMITTED"

    async def release(self, reservation_id: str, key: str, timeout_s: float) -> bool:
        return await self._transaction(self._settle, timeout_s, key, reservation_id,
                                       "RELEASED") == "RELEASED"

    async def _settle(self, connection, key: str, reservation_id: str, state: str) -> str:
        s = self._schema
        if (first := await self._first_answer(connection, key)) is not None:
            return first
        hold = await connection.fetchrow(
            f"SELECT state, expires_at_ms, skus, units FROM {s}.holds WHERE id = $1 "
            f"FOR UPDATE", int(reservation_id))
        answer = "REFUSED"
        if hold is not None and hold["state"] == "HELD":
            target = state
            if state == "COMMITTED" and hold["expires_at_ms"] <= time.time() * 1000:
                target = "EXPIRED"  # too late to commit: expire it now
            await self._give_back(connection, hold["skus"], hold["units"], target)
            await connection.execute(f"UPDATE {s}.holds SET state = $2 WHERE id = $1",
                                     int(reservation_id), target)
            answer = target if target == state else "REFUSED"
        await connection.execute(f"UPDATE {s}.idempotency SET answer = $2 WHERE key = $1",
                                 key, answer)
        return answer

    async def _give_back(self, connection, skus: list[str], units: list[int],
                         state: str) -> None:
        """Move a hold's units out of reserved: to committed, or back to available."""
        committed = "stock.committed + line.units" if state == "COMMITTED" else "stock.committed"
        # Lock the rows in SKU order first, as Reserve does, so the two never deadlock.
        await connection.execute(
            f"SELECT 1 FROM {self._schema}.stock WHERE sku = ANY($1::text[]) ORDER BY sku "
            f"FOR UPDATE", skus)
        await connection.execute(
            f"UPDATE {self._schema}.stock SET reserved = stock.reserved - line.units, "
            f"committed = {committed} FROM unnest($1::text[], $2::bigint[]) AS line(sku, units) "
            f"WHERE stock.sku = line.sku", skus, units)

    async def _first_answer(self, connection, key: str) -> str | None:
        """None when this call takes the key; else the answer the key's first call gave.

        A concurrent call with the same key waits on the key's row until the first commits.
        """
        taken = await connection.fetchval(
            f"INSERT INTO {self._schema}.idempotency (key) VALUES ($1) ON CONFLICT DO NOTHING "
            f"RETURNING true", key)
        if taken:
            return None
        return await connection.fetchval(
            f"SELECT answer FROM {self._schema}.idempotency WHERE key = $1", key)

    async def _transaction(self, work, timeout_s: float, *args) -> str:
        async def run() -> str:
            async with self._pool.acquire() as connection, connection.transaction():
                return await work(connection, *args)
        try:
            return await asyncio.wait_for(run(), timeout_s)
        except (asyncpg.DeadlockDetectedError, asyncpg.SerializationError,
                asyncpg.InterfaceError, asyncpg.ConnectionDoesNotExistError, OSError,
                TimeoutError) as error:
            raise TransientError(f"{type(error).__name__}: {error}") from error

    async def _sweep_forever(self) -> None:
        """Give back expired holds every SWEEP_INTERVAL_S, skipping rows a call has locked."""
        while True:
            with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                async with self._pool.acquire() as connection, connection.transaction():
                    due = await connection.fetch(
                        f"SELECT id, skus, units FROM {self._schema}.holds WHERE state = 'HELD' "
                        f"AND expires_at_ms <= $1 ORDER BY id LIMIT {SWEEP_HOLDS_MAX} "
                        f"FOR UPDATE SKIP LOCKED", int(time.time() * 1000))
                    if due:
                        # One give-back of the summed lines locks each SKU once, in order.
                        units_by_sku: dict[str, int] = {}
                        for hold in due:
                            for sku, units in zip(hold["skus"], hold["units"]):
                                units_by_sku[sku] = units_by_sku.get(sku, 0) + units
                        skus = sorted(units_by_sku)
                        await self._give_back(connection, skus,
                                              [units_by_sku[sku] for sku in skus], "EXPIRED")
                        await connection.execute(
                            f"UPDATE {self._schema}.holds SET state = 'EXPIRED' "
                            f"WHERE id = ANY($1::bigint[])", [hold["id"] for hold in due])
            await asyncio.sleep(SWEEP_INTERVAL_S)

    async def read(self, skus: Sequence[str]) -> dict[str, tuple[int, int]]:
        rows = await self._pool.fetch(
            f"SELECT sku, reserved, committed FROM {self._schema}.stock "
            f"WHERE sku = ANY($1::text[])", list(skus))
        return {row["sku"]: (row["reserved"], row["committed"]) for row in rows}

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
        if self._pool is not None:
            with contextlib.suppress(asyncpg.PostgresError, OSError):
                await self._pool.execute(f"DROP SCHEMA IF EXISTS {self._schema} CASCADE")
            await self._pool.close()
