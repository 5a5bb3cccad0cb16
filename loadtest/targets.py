"""What every flash-sale target offers the harness: hold, commit, release, read back."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

# One cart line: (SKU, units).
Line = tuple[str, int]
# Most items per read-back request (GetAvailability takes up to 1,000).
READ_CHUNK_ITEMS = 1_000


class TransientError(Exception):
    """The call may or may not have been applied: retry it with the same idempotency key."""


class TargetUnavailable(Exception):
    """The target cannot be reached or set up; the run reports it as skipped."""


@dataclass(frozen=True)
class HoldAnswer:
    held: bool
    reservation_id: str = ""


class Target(Protocol):
    """One system under test. Business refusals are answers; TransientError means retry."""

    name: str

    async def setup(self, skus: Sequence[str], stock: int) -> None:
        """Put `stock` units of every SKU on hand."""

    async def reserve(self, key: str, lines: Sequence[Line], ttl_s: int,
                      timeout_s: float) -> HoldAnswer:
        """Hold the whole cart or nothing."""

    async def commit(self, reservation_id: str, key: str, timeout_s: float) -> bool:
        """True when the hold became an order; False when refused (expired, released)."""

    async def release(self, reservation_id: str, key: str, timeout_s: float) -> bool:
        """True when the hold was given back; False when there was nothing to release."""

    async def read(self, skus: Sequence[str]) -> dict[str, tuple[int, int]]:
        """(reserved, committed) per SKU, as the target reports them."""

    async def close(self) -> None:
        """Remove what setup made and close connections."""
