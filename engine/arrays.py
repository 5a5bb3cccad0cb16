"""Growing numpy arrays by doubling, so appends amortise."""

from __future__ import annotations

import numpy as np


def grown(array: np.ndarray, rows: int, fill: int = 0) -> np.ndarray:
    """A copy of `array` with room for at least `rows` rows (doubling), new rows `fill`."""
    if rows <= len(array):
        return array
    capacity = max(len(array), 1)
    while capacity < rows:
        capacity *= 2
    bigger = np.full((capacity, *array.shape[1:]), fill, dtype=array.dtype)
    bigger[: len(array)] = array
    return bigger
