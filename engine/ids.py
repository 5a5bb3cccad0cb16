"""Reservation ids that are unique across partitions and restarts without coordination."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

_DIGITS = 32  # 128 bits in hexadecimal: fixed width, so ids of one partition sort by time


class _RandomPool:
    """os.urandom read 4 KiB at a time: one system call per 400 ids rather than per id."""

    def __init__(self) -> None:
        self._pool, self._offset, self._pid = b"", 0, 0

    def __call__(self, size: int) -> bytes:
        # A forked child must not reuse its parent's pool, or both would mint the same ids.
        if self._offset + size > len(self._pool) or self._pid != os.getpid():
            self._pool, self._offset, self._pid = os.urandom(4096), 0, os.getpid()
        start = self._offset
        self._offset += size
        return self._pool[start:self._offset]


class ReservationIdSource:
    """Mints `r<partition>-<time><random>` ids: the partition routes, time sorts, 80 bits
    of randomness keep two processes (or one restarted) from ever minting the same id.
    A cart that spans partitions gets one id naming them all, `r<p>.<q>...-<time><random>`,
    under which each of them holds its part."""

    def __init__(self, clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
                 random_bytes: Callable[[int], bytes] | None = None) -> None:
        self._clock_ms = clock_ms
        self._random_bytes = random_bytes or _RandomPool()

    def mint(self, *partitions: int) -> str:
        value = (self._clock_ms() & (2**48 - 1)) << 80 | int.from_bytes(self._random_bytes(10))
        head = partitions[0] if len(partitions) == 1 else ".".join(map(str, partitions))
        return f"r{head}-{value:032x}"


def partitions_of_reservation(reservation_id: str) -> tuple[int, ...] | None:
    """The partitions a reservation id was minted for, or None if it is not one of ours."""
    head, _, body = reservation_id.partition("-")
    if head[:1] != "r" or len(body) != _DIGITS:
        return None
    parts = head[1:].split(".")
    if not all(part.isascii() and part.isdigit() for part in parts):
        return None
    return tuple(int(part) for part in parts)
