"""Remembered idempotency keys: the first command and result of each, for a bounded window."""

from __future__ import annotations

from collections import deque


class IdempotencyTable:
    """Keys are forgotten oldest first, by age or once the table is full."""

    def __init__(self, window_ms: int, keys_max: int) -> None:
        self.window_ms = window_ms
        self.keys_max = keys_max
        # key -> (command, results, index): results[index] is the first result; a run of
        # results shares one columnar holder instead of a built tuple per key.
        self.entries: dict[str, tuple] = {}
        # Keys in the order they were remembered, and (now_ms, count) per batch, so
        # forgetting by age pops from the left without a timestamp per key.
        self._order: deque[str] = deque()
        self._batches: deque[list[int]] = deque()

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, key: str) -> tuple | None:
        """(first command, first result) of a remembered key, else None."""
        entry = self.entries.get(key)
        if entry is None:
            return None
        command, results, index = entry
        return command, results[index]

    def remember(self, key: str, command, result, now_ms: int) -> None:
        self.entries[key] = (command, (result,), 0)
        self._order.append(key)
        self._count_in_batch(now_ms, 1)

    def remember_entries(self, keys: list[str], entries: list[tuple], now_ms: int) -> None:
        """Remember a run at once: `entries[i]` is `(command, results, index)` for keys[i]."""
        self.entries.update(zip(keys, entries))
        self._order.extend(keys)
        self._count_in_batch(now_ms, len(keys))

    def _count_in_batch(self, now_ms: int, count: int) -> None:
        batches = self._batches
        if batches and batches[-1][0] == now_ms:
            batches[-1][1] += count
        else:
            batches.append([now_ms, count])
        if len(self.entries) > self.keys_max:
            self._forget_oldest(len(self.entries) - self.keys_max)

    def forget_expired(self, now_ms: int) -> None:
        """Forget keys older than the window."""
        cutoff_ms = now_ms - self.window_ms
        while self._batches and self._batches[0][0] < cutoff_ms:
            self._forget_oldest(self._batches[0][1])

    def items_in_order(self):
        """(key, command, result, remembered_at_ms) oldest first, for snapshots."""
        keys = iter(self._order)
        for now_ms, count in self._batches:
            for _ in range(count):
                key = next(keys)
                command, results, index = self.entries[key]
                yield key, command, results[index], now_ms

    def _forget_oldest(self, count: int) -> None:
        for _ in range(count):
            del self.entries[self._order.popleft()]
            oldest_batch = self._batches[0]
            oldest_batch[1] -= 1
            if oldest_batch[1] == 0:
                self._batches.popleft()
