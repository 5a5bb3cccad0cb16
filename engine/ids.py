"""Reservation ids that are unique across partitions and restarts without coordination."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case


class ReservationIdSource:
    """Mints `r<partition>-<time><random>` ids: the partition routes, time sorts, 80 bits
    of randomness keep two processes (or one restarted) from ever minting the same id.
    A cart that spans partitions gets one id naming them all, `r<p>.<q>...-<time><random>`,
    under which each of them holds its part."""

    def __init__(self, clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
                 random_bytes: Callable[[int], bytes] = os.urandom) -> None:
        self._clock_ms = clock_ms
        self._random_bytes = random_bytes

    def mint(self, *partitions: int) -> str:
        value = (self._clock_ms() & (2**48 - 1)) << 80 | int.from_bytes(self._random_bytes(10))
        digits = []
        for _ in range(26):
            value, digit = divmod(value, 32)
            digits.append(_ALPHABET[digit])
        return f"r{'.'.join(map(str, partitions))}-{''.join(reversed(digits))}"


def partitions_of_reservation(reservation_id: str) -> tuple[int, ...] | None:
    """The partitions a reservation id was minted for, or None if it is not one of ours."""
    head, _, body = reservation_id.partition("-")
    if head[:1] != "r" or len(body) != 26:
        return None
    parts = head[1:].split(".")
    if not all(part.isascii() and part.isdigit() for part in parts):
        return None
    return tuple(int(part) for part in parts)
