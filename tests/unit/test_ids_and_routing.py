"""Reservation ids are unique and name their partition; SKUs route to partitions stably."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from engine.ids import ReservationIdSource, partitions_of_reservation
from engine.routing import partition_of

T0_MS = 1_700_000_000_000


def seeded_source(seed: int = 7, clock_ms=lambda: T0_MS) -> ReservationIdSource:
    return ReservationIdSource(clock_ms, random.Random(seed).randbytes)


@pytest.mark.parametrize("source", [ReservationIdSource(), seeded_source()],
                         ids=["os-random", "fixed-clock"])
def test_ids_are_unique_over_many_mints(source):
    """Fifty thousand ids, even minted in the same millisecond, never repeat."""
    ids = [source.mint(n % 8) for n in range(50_000)]
    assert len(set(ids)) == len(ids)


def test_ids_from_two_sources_at_the_same_instant_differ():
    """Two processes minting in the same millisecond differ only by, and thanks to, randomness."""
    assert seeded_source(1).mint(0) == seeded_source(1).mint(0)
    assert seeded_source(1).mint(0) != seeded_source(2).mint(0)


@pytest.mark.parametrize("partition", [0, 1, 9, 63, 1023, 10**9])
def test_ids_carry_their_partition(partition):
    """partitions_of_reservation reads back the partition an id was minted for."""
    reservation_id = ReservationIdSource().mint(partition)
    assert partitions_of_reservation(reservation_id) == (partition,)
    assert len(reservation_id.encode()) <= 128
    assert reservation_id.isascii() and reservation_id.isprintable()


def test_ids_of_carts_carry_every_partition():
    """A cart spanning partitions gets one id that names each of them, in the order given."""
    reservation_id = ReservationIdSource().mint(0, 3, 12)
    assert reservation_id.startswith("r0.3.12-")
    assert partitions_of_reservation(reservation_id) == (0, 3, 12)


def test_ids_sort_by_mint_time_within_a_partition():
    """Ids minted later sort later, so a partition's ids order by age."""
    clock = iter(range(T0_MS, T0_MS + 10_000_000, 997))
    source = ReservationIdSource(lambda: next(clock), random.Random(3).randbytes)
    ids = [source.mint(5) for _ in range(1000)]
    assert ids == sorted(ids)


@pytest.mark.parametrize("reservation_id", [
    "", "abc", "r-0123456789abcdef0123456789abcdef", "rx-0123456789abcdef0123456789abcdef",
    "r1-short", "r1-0123456789abcdef0123456789abcdef0", "q1-0123456789abcdef0123456789abcdef",
    "r1_0123456789abcdef0123456789abcdef",
    "r\u00b2-0123456789abcdef0123456789abcdef",
    "r\u0663-0123456789abcdef0123456789abcdef",
    "r1.-0123456789abcdef0123456789abcdef", "r1..2-0123456789abcdef0123456789abcdef",
], ids=["empty", "no-dash", "no-partition", "letter-partition", "short-body", "long-body",
        "wrong-prefix", "underscore", "superscript-digit", "arabic-indic-digit",
        "trailing-dot", "empty-part"])
def test_ids_not_minted_by_us_have_no_partition(reservation_id):
    """An id of any other shape reads as no partition (the gateway answers NOT_FOUND)."""
    assert partitions_of_reservation(reservation_id) is None


@pytest.mark.parametrize("sku, partitions, expected", [
    ("sku-1", 16, 14), ("sku-1", 64, 46), ("sku-1", 1000, 470),
    ("SKU-00042", 16, 14), ("SKU-00042", 64, 30),
    ("tee-red-m", 64, 42), ("\u00e9-unicode", 64, 58), ("", 64, 0),
])
def test_partition_of_is_pinned(sku, partitions, expected):
    """The SKU hash is fixed: a change would move every SKU's state to another partition."""
    assert partition_of(sku, partitions) == expected


def test_partition_of_spreads_skus_evenly():
    """Twenty thousand SKUs land within 15% of an even share of 32 partitions."""
    counts = Counter(partition_of(f"SKU-{n:06d}", 32) for n in range(20_000))
    share = 20_000 / 32
    assert len(counts) == 32
    assert all(0.85 * share <= count <= 1.15 * share for count in counts.values())


def test_partition_of_a_single_partition_is_zero():
    """With one partition every SKU lives in partition 0."""
    assert {partition_of(f"sku-{n}", 1) for n in range(100)} == {0}
