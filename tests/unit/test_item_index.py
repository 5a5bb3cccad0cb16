"""The item table finds exactly the SKU-locations added to it, even when their hashes collide."""

from __future__ import annotations

import numpy as np
import pytest

from engine.item_index import EMPTY
from engine.items import ItemTable
from engine.model import ReserveLine

LOCATIONS = ("dc-1", "store-2", "store-3")


class CollidingTable(ItemTable):
    """Three hash values (one negative) for every key, so nearly every key collides."""

    def _hash(self, sku: str, location_id: int) -> int:
        return hash(sku) % 3 - 1

    def _hashes(self, skus: list[str], location_ids: np.ndarray) -> np.ndarray:
        return np.array([hash(sku) % 3 - 1 for sku in skus], dtype=np.int64)


TABLES = pytest.mark.parametrize("table_type", [ItemTable, CollidingTable],
                                 ids=["hashed", "colliding"])


def keys(count: int, prefix: str = "sku") -> list[tuple[str, str]]:
    return [(f"{prefix}-{n}", LOCATIONS[n % len(LOCATIONS)]) for n in range(count)]


def add_in_bulk(table: ItemTable, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], int]:
    rows = table.add_many([sku for sku, _ in pairs], [location for _, location in pairs])
    return dict(zip(pairs, rows.tolist(), strict=True))


def assert_agrees(table: ItemTable, reference: dict[tuple[str, str], int]) -> None:
    """find and rows_of give the reference's row for known keys and nothing for others."""
    unknown = [("ghost", "dc-1"), ("sku-1", "nowhere"), ("sku-1", "store-3"), ("", "dc-1"),
               *keys(50, "absent")]
    probes = list(reference) + [key for key in unknown if key not in reference]
    expected = [reference.get(key, EMPTY) for key in probes]
    found = [table.find(*key) for key in probes]
    assert found == [None if row == EMPTY else row for row in expected]
    lines = [ReserveLine(sku, location, 1) for sku, location in probes]
    assert table.rows_of(lines).tolist() == expected
    assert table.size == len(reference)


@TABLES
def test_item_index_add_many_finds_every_key_across_growth(table_type):
    """Bulk loads in chunks, past the initial capacity, each find their own rows."""
    table, reference = table_type(), {}
    for chunk in range(4):
        reference.update(add_in_bulk(table, keys(1500, f"chunk{chunk}")))
        assert_agrees(table, reference)
    assert table.capacity >= 6000


@TABLES
def test_item_index_find_or_add_adds_once_across_growth(table_type):
    """find_or_add numbers new keys in order and returns the same row for a known key."""
    table, reference = table_type(), {}
    for key in keys(3000):
        reference[key] = table.find_or_add(*key)
    assert list(reference.values()) == list(range(3000))
    assert [table.find_or_add(*key) for key in reference] == list(range(3000))
    assert_agrees(table, reference)


@TABLES
def test_item_index_mixed_single_and_bulk_adds(table_type):
    """Single adds and bulk loads interleave without losing or renumbering a row."""
    table, reference = table_type(), {}
    for round_ in range(6):
        for key in keys(100, f"single{round_}"):
            reference[key] = table.find_or_add(*key)
        reference.update(add_in_bulk(table, keys(700, f"bulk{round_}")))
    assert_agrees(table, reference)


@TABLES
def test_item_index_same_sku_at_many_locations_are_distinct(table_type):
    """One SKU at several locations is several rows, and a SKU at an unseen location is none."""
    table = table_type()
    reference = add_in_bulk(table, [("sku-1", location) for location in LOCATIONS])
    assert_agrees(table, reference)
    assert table.find("sku-1", "dc-9") is None


@TABLES
@pytest.mark.parametrize("bad_load", [
    [("new-1", "dc-1"), ("new-2", "dc-1"), ("new-1", "dc-1")],
    [("new-1", "dc-1"), ("sku-7", LOCATIONS[7 % 3])],
    [("sku-0", "dc-1")],
], ids=["repeated-in-load", "already-present", "only-existing"])
def test_item_index_add_many_refuses_repeated_or_existing_keys(table_type, bad_load):
    """A load naming a key twice, or a key already present, raises and adds nothing."""
    table = table_type()
    reference = add_in_bulk(table, keys(40))
    quantities = table.matrix.copy()
    with pytest.raises(ValueError, match="repeated or already exists"):
        add_in_bulk(table, bad_load)
    assert_agrees(table, reference)
    assert table.find("new-1", "dc-1") is None and table.find("new-2", "dc-1") is None
    assert np.array_equal(table.matrix, quantities)
    reference.update(add_in_bulk(table, [("new-1", "dc-1")]))  # and the table still works
    assert_agrees(table, reference)


def test_item_index_colliding_keys_are_confirmed_against_the_stored_key():
    """Keys that share a hash are told apart by their SKU and location, never by hash alone."""
    table = CollidingTable()
    add_in_bulk(table, keys(30))
    assert len(table._index.collided) > 20  # the subclass really does collide
    assert {table._hash(sku, 0) for sku, _ in keys(30)} <= {-1, 0, 1}
