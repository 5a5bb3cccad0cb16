"""Which partition owns a SKU: a stable hash, the same in every process and release."""

from __future__ import annotations

import zlib


def partition_of(sku: str, partitions: int) -> int:
    """All locations of a SKU land in one partition (Python's `hash` is salted per process)."""
    return zlib.crc32(sku.encode()) % partitions
