"""Divergence math: running totals equal a recount, per level, with a bounded table."""

import random

from engine.divergence import LOCATION, NETWORK, Divergence, DivergenceBook


def recount(entries: dict, level: str) -> Divergence:
    diverged = exposed = at_risk = 0
    for (_, location), (actual, published) in entries.items():
        if (location == "") != (level == NETWORK):
            continue
        over = (published or 0) - actual
        diverged += abs(over)
        exposed += over > 0
        at_risk += max(over, 0)
    return Divergence(diverged, exposed, at_risk)


def test_divergence_totals_of_a_small_case():
    """Shown 10 with 7 left is 3 at risk; shown 2 with 5 left is undersell, not exposure."""
    book = DivergenceBook()
    book.set_published(("a", "dc-1"), 10)
    book.set_actual(("a", "dc-1"), 7)
    book.set_published(("b", "dc-1"), 2)
    book.set_actual(("b", "dc-1"), 5)
    book.set_actual(("a", ""), 7)  # never published: the channel shows nothing
    assert book.totals(LOCATION) == Divergence(diverged_units=6, exposed_items=1,
                                               units_at_risk=3)
    assert book.totals(NETWORK) == Divergence(7, 0, 0)
    assert book.published(("a", "")) is None and book.published(("a", "dc-1")) == 10


def test_divergence_running_totals_equal_a_recount_after_random_changes():
    """Thousands of random sets of either figure keep the totals exactly a recount."""
    draw = random.Random(11)
    book, entries = DivergenceBook(), {}
    keys = [(f"s{n}", location) for n in range(30) for location in ("", "dc-1", "dc-2")]
    for _ in range(5_000):
        key = draw.choice(keys)
        value = draw.randint(-5, 40)
        actual, published = entries.get(key, (0, None))
        if draw.random() < 0.5:
            book.set_actual(key, value)
            entries[key] = (value, published)
        else:
            book.set_published(key, value)
            entries[key] = (actual, value)
        if draw.random() < 0.02:
            for level in (NETWORK, LOCATION):
                assert book.totals(level) == recount(entries, level)
    for level in (NETWORK, LOCATION):
        assert book.totals(level) == recount(entries, level)


def test_divergence_book_refuses_new_keys_past_its_bound():
    """A full book keeps its keys up to date and counts the ones it could not take."""
    book = DivergenceBook(keys_max=1)
    assert book.set_actual(("a", ""), 3)
    assert not book.set_actual(("b", ""), 4)
    assert book.set_published(("a", ""), 5)
    assert book.keys_refused == 1 and len(book) == 1
    assert book.totals(NETWORK) == Divergence(2, 1, 2)
