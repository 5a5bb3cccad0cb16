"""Reservation ids that are unique across partitions and restarts without coordination."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case


class ReservationIdSource:
    """Mints `r<partition>-<time><random>` ids: the partition routes, time sorts, 80 bits
    of randomness keep two processes (or one restarted) from ever minting the same id."""

    def __init__(self, clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
                 random_bytes: Callable[[int], bytes] = os.urandom) -> None:
        self._clock_ms = clock_ms
        self._random_bytes = random_bytes

    def mint(self, partition: int) -> str:
        value = (self._clock_ms() & (2**48 - 1)) << 80 | int.from_bytes(self._random_bytes(10))
        digits = []
        for _ in range(26):
            value, digit = divmod(value, 32)
            digits.append(_ALPHABET[digit])
        return f"r{partition}-{''.join(reversed(digits))}"


def partition_of_reservation(reservation_id: str) -> int | None:
    """The partition a reservation id was minted for, or None if it is not one of ours."""
    head, _, body = reservation_id.partition("-")
    digits = head[1:]
    if not (head[:1] == "r" and digits.isascii() and digits.isdigit() and len(body) == 26):
        return None
    return int(digits)
