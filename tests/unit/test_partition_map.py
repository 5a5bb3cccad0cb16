"""The partition map: its default spread, moves with a new epoch, and its JSON form."""

from __future__ import annotations

import zlib

import pytest

from engine.partition_map import PartitionMap, spread


def test_spread_puts_a_sku_on_the_actor_it_had_before_virtual_partitions():
    """With A dividing P, a SKU's actor is crc32(sku) mod A, as when actors were partitions."""
    layout = spread(64, 4)
    for sku in ("a", "SKU-1", "sku-ünï", "x" * 100):
        crc = zlib.crc32(sku.encode())
        assert layout.owners[crc % 64] == crc % 4


def test_move_changes_one_owner_and_the_epoch_only():
    """A move names the new owner of one partition, one epoch on; others stay put."""
    layout = spread(8, 2)
    moved = layout.moved(3, 0)
    assert (moved.epoch, moved.owners[3], moved.actors) == (2, 0, 2)
    assert [o for vp, o in enumerate(moved.owners) if vp != 3] == \
        [o for vp, o in enumerate(layout.owners) if vp != 3]
    assert layout.moved(3, 5).actors == 6  # a new actor grows the map


def test_move_of_an_unknown_partition_is_refused_and_changes_nothing():
    """A partition outside 0..P-1 is refused; the map it was asked of is unchanged."""
    layout = spread(8, 2)
    with pytest.raises(ValueError):
        layout.moved(8, 0)
    assert layout == spread(8, 2)


def test_map_survives_its_json_form():
    """What is stored in Redis reads back as the same map."""
    layout = spread(12, 3).moved(5, 3)
    assert PartitionMap.from_json(layout.to_json()) == layout
