"""The SKUs reserved most lately, counted in a bounded table."""

from __future__ import annotations

from collections import Counter

# How many SKUs a dashboard lists, and how many the table keeps between trims.
TOP_DEFAULT = 1_000


class HotSkus:
    """Reserve lines per SKU, trimmed to the `top` largest whenever it doubles past them.

    Trimming keeps memory at most 2 * `top` entries whatever the catalogue size, at an
    amortized O(1) per line; a SKU first seen after a trim starts again from 0, so the
    figures are a lower bound, exact for SKUs that stay hot. `decay` halves every count,
    so the list follows what is hot now rather than since the gateway started.
    """

    def __init__(self, top: int = TOP_DEFAULT) -> None:
        if top < 1:
            raise ValueError(f"top must be at least 1, not {top}")
        self.top = top
        self._counts: Counter[str] = Counter()

    def __len__(self) -> int:
        return len(self._counts)

    def add(self, sku: str, lines: int = 1) -> None:
        counts = self._counts
        counts[sku] += lines
        if len(counts) > 2 * self.top:
            self._counts = Counter(dict(counts.most_common(self.top)))

    def decay(self) -> None:
        """Halve every count, forgetting those that reach 0."""
        self._counts = Counter({sku: count // 2 for sku, count in self._counts.items()
                                if count > 1})

    def most_common(self, count: int) -> list[tuple[str, int]]:
        return self._counts.most_common(min(count, self.top))
