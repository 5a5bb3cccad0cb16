"""The hot-SKU table stays bounded whatever the catalogue, and keeps the SKUs that stay hot."""

from __future__ import annotations

import pytest

from gateway.hot_skus import HotSkus


def test_add_keeps_at_most_twice_top_entries():
    """A hundred thousand distinct SKUs never grow the table past 2 * top entries."""
    hot = HotSkus(top=100)
    for number in range(100_000):
        hot.add(f"SKU-{number}")
        assert len(hot) <= 200


def test_add_keeps_a_hot_sku_across_trims_with_its_exact_count():
    """A SKU reserved often survives every trim, first in the list, its count exact."""
    hot = HotSkus(top=10)
    for number in range(5_000):
        hot.add(f"cold-{number}")
        if number % 10 == 0:
            hot.add("HOT-1", 3)
    assert hot.most_common(1) == [("HOT-1", 1_500)]


def test_most_common_answers_at_most_top():
    """Asking for more than `top` answers `top` at most."""
    hot = HotSkus(top=3)
    for number in range(5):
        hot.add(f"SKU-{number}", number + 1)
    assert [sku for sku, _ in hot.most_common(10)] == ["SKU-4", "SKU-3", "SKU-2"]


def test_decay_halves_counts_and_forgets_the_ones():
    """Decay follows what is hot now: counts halve, and a count of 1 is forgotten."""
    hot = HotSkus(top=10)
    hot.add("A", 8)
    hot.add("B", 1)
    hot.decay()
    assert hot.most_common(10) == [("A", 4)]


def test_new_refuses_a_top_below_one():
    """A table of no entries would show nothing: refused."""
    with pytest.raises(ValueError):
        HotSkus(top=0)
