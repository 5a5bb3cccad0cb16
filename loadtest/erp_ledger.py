"""The ERP simulator's ledger in SQLite: on-hand rows, idempotency keys, pending acceptances.

Applying a batch and recording its key (or recording a key and its pending acceptance) is
one transaction, so a crash never leaves a change without its key or a key without its change.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from dataclasses import dataclass

from loadtest.erp_contract import AdjustmentBatch

# An accepted batch waits in SQLite until applied; past this many waiting, new batches are
# applied at once instead, so the table stays bounded.
PENDING_MAX = 10_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS on_hand (
    sku TEXT NOT NULL,
    location TEXT NOT NULL,
    -- An int64 overflow turns SQLite's sum into a REAL: refuse it instead of storing it.
    on_hand INTEGER NOT NULL CHECK (typeof(on_hand) = 'integer'),
    committed INTEGER NOT NULL CHECK (typeof(committed) = 'integer'),
    PRIMARY KEY (sku, location)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key TEXT PRIMARY KEY,
    body_hash TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('accepted', 'applied')),
    response_json TEXT NOT NULL,
    lines INTEGER NOT NULL,
    created_at_s REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS pending_acceptances (
    key TEXT PRIMARY KEY REFERENCES idempotency_keys (key),
    batch_json TEXT NOT NULL,
    apply_at_s REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS pending_by_time ON pending_acceptances (apply_at_s);
"""
_UPSERT_DELTAS = """
INSERT INTO on_hand (sku, location, on_hand, committed) VALUES (?, ?, ?, ?)
ON CONFLICT (sku, location) DO UPDATE SET on_hand = on_hand + excluded.on_hand,
                                          committed = committed + excluded.committed
"""


class LedgerOverflow(ValueError):
    """A batch would take a quantity outside int64; nothing of it was applied."""


@dataclass(frozen=True)
class Answer:
    """What the ERP answers an adjustments request: HTTP status and JSON body."""

    status: int
    body: dict


@dataclass(frozen=True)
class LedgerRow:
    sku: str
    location: str
    on_hand: int
    committed: int

    def to_json(self) -> dict:
        return {"sku": self.sku, "location": self.location, "on_hand": self.on_hand,
                "committed": self.committed}


def applied_answer(batch: AdjustmentBatch) -> dict:
    return {"batch_id": batch.batch_id, "applied_lines": len(batch.lines)}


def accepted_answer(batch: AdjustmentBatch) -> dict:
    return {"batch_id": batch.batch_id, "status": "accepted"}


class Ledger:
    """One SQLite connection, used from one thread (the simulator's event loop)."""

    def __init__(self, path: str = ":memory:", pending_max: int = PENDING_MAX) -> None:
        self.path = path
        self.pending_max = pending_max
        # Autocommit mode: every transaction below is an explicit BEGIN ... COMMIT.
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode = WAL")  # a file only; ":memory:" ignores it
        # In WAL mode NORMAL loses no committed transaction when the process dies; only a
        # power cut can drop the last few, which a simulator may.
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.execute("PRAGMA foreign_keys = ON")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    @contextlib.contextmanager
    def _transaction(self):
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def submit(self, key: str, batch: AdjustmentBatch, now_s: float,
               apply_at_s: float | None = None) -> Answer:
        """Answer an adjustments request under `key`, exactly once per key.

        A known key with the same body gets its first answer again (202 while its accepted
        batch waits, 200 once applied) and changes nothing; with another body, 409. A new
        key is applied now (200), or, given `apply_at_s`, accepted (202) to be applied then
        by `apply_due`. Raises LedgerOverflow, with nothing changed, past int64.
        """
        with self._transaction():
            known = self._db.execute(
                "SELECT body_hash, status, response_json FROM idempotency_keys WHERE key = ?",
                (key,)).fetchone()
            if known is not None:
                return _replayed(key, batch, *known)
            if apply_at_s is not None and self._pending_count() < self.pending_max:
                return self._accept(key, batch, now_s, apply_at_s)
            self._apply_lines(batch)
            answer = applied_answer(batch)
            self._record_key(key, batch, "applied", answer, now_s)
            return Answer(200, answer)

    def _accept(self, key: str, batch: AdjustmentBatch, now_s: float,
                apply_at_s: float) -> Answer:
        answer = accepted_answer(batch)
        self._record_key(key, batch, "accepted", answer, now_s)
        self._db.execute("INSERT INTO pending_acceptances (key, batch_json, apply_at_s) "
                         "VALUES (?, ?, ?)", (key, batch.to_json(), apply_at_s))
        return Answer(202, answer)

    def _record_key(self, key: str, batch: AdjustmentBatch, status: str, answer: dict,
                    now_s: float) -> None:
        self._db.execute(
            "INSERT INTO idempotency_keys (key, body_hash, status, response_json, lines, "
            "created_at_s) VALUES (?, ?, ?, ?, ?, ?)",
            (key, batch.body_hash, status, json.dumps(answer), len(batch.lines), now_s))

    def _apply_lines(self, batch: AdjustmentBatch) -> None:
        """All of the batch's lines or, past int64, none (a savepoint undoes the first ones)."""
        self._db.execute("SAVEPOINT lines")
        try:
            self._db.executemany(_UPSERT_DELTAS, [
                (line.sku, line.location, line.on_hand_delta, line.committed_delta)
                for line in batch.lines])
        except sqlite3.IntegrityError as error:
            self._db.execute("ROLLBACK TO lines")
            self._db.execute("RELEASE lines")
            raise LedgerOverflow(f"batch {batch.batch_id!r} would take a quantity past "
                                 f"int64 ({error})") from None
        self._db.execute("RELEASE lines")

    def apply_due(self, now_s: float, batches_max: int = 100) -> int:
        """Apply up to `batches_max` accepted batches whose time has come, each with its
        key's move to 'applied' in one transaction; returns how many were applied."""
        due = self._db.execute(
            "SELECT key FROM pending_acceptances WHERE apply_at_s <= ? "
            "ORDER BY apply_at_s, key LIMIT ?", (now_s, batches_max)).fetchall()
        return sum(self._apply_pending(key) for (key,) in due)

    def _apply_pending(self, key: str) -> bool:
        with self._transaction():
            pending = self._db.execute(
                "SELECT batch_json FROM pending_acceptances WHERE key = ?", (key,)).fetchone()
            if pending is None:
                return False
            batch = AdjustmentBatch.from_json(pending[0])
            self._db.execute("DELETE FROM pending_acceptances WHERE key = ?", (key,))
            try:
                self._apply_lines(batch)
            except LedgerOverflow:
                # A planted row made it unappliable: drop it, keeping the 202 on record,
                # rather than retrying it forever.
                return False
            self._db.execute(
                "UPDATE idempotency_keys SET status = 'applied', response_json = ? "
                "WHERE key = ?", (json.dumps(applied_answer(batch)), key))
            return True

    def next_pending_at_s(self) -> float | None:
        """When the earliest accepted batch is due, or None when none waits."""
        return self._db.execute("SELECT MIN(apply_at_s) FROM pending_acceptances").fetchone()[0]

    def _pending_count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM pending_acceptances").fetchone()[0]

    def page(self, after: tuple[str, str] | None, limit: int) -> tuple[list[LedgerRow], bool]:
        """Up to `limit` rows after the (sku, location) `after`, in (sku, location) order,
        and whether more follow."""
        sku, location = after if after is not None else ("", "")
        rows = self._db.execute(
            "SELECT sku, location, on_hand, committed FROM on_hand "
            "WHERE (sku, location) > (?, ?) ORDER BY sku, location LIMIT ?",
            (sku, location, limit + 1)).fetchall()
        return [LedgerRow(*row) for row in rows[:limit]], len(rows) > limit

    def rows(self, limit: int) -> list[LedgerRow]:
        return self.page(None, limit)[0]

    def row(self, sku: str, location: str) -> LedgerRow | None:
        found = self._db.execute(
            "SELECT sku, location, on_hand, committed FROM on_hand "
            "WHERE sku = ? AND location = ?", (sku, location)).fetchone()
        return LedgerRow(*found) if found else None

    def set_row(self, sku: str, location: str, on_hand: int,
                committed: int | None = None) -> LedgerRow:
        """Set a row directly, as drift planted by a test; committed is kept unless given."""
        with self._transaction():
            self._db.execute(
                "INSERT INTO on_hand (sku, location, on_hand, committed) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (sku, location) DO UPDATE SET on_hand = excluded.on_hand, "
                "committed = coalesce(?, committed)",
                (sku, location, on_hand, committed or 0, committed))
        return self.row(sku, location)

    def key_status(self, key: str) -> str | None:
        """'accepted', 'applied', or None for a key never answered."""
        found = self._db.execute("SELECT status FROM idempotency_keys WHERE key = ?",
                                 (key,)).fetchone()
        return found[0] if found else None

    def totals(self) -> dict:
        """Keys and lines applied over the ledger's life, and batches still waiting."""
        keys, lines = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(lines), 0) FROM idempotency_keys "
            "WHERE status = 'applied'").fetchone()
        return {"keys_applied": keys, "lines_applied": lines,
                "pending_acceptances": self._pending_count()}


def _replayed(key: str, batch: AdjustmentBatch, body_hash: str, status: str,
              response_json: str) -> Answer:
    if body_hash != batch.body_hash:
        return Answer(409, {"error": f"Idempotency-Key {key!r} was used with another body",
                            "field": "Idempotency-Key"})
    return Answer(200 if status == "applied" else 202, json.loads(response_json))
