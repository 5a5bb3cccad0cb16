"""One result per command of a batch, in order, with runs of Reserves left columnar."""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence


class BatchResults(Sequence):
    """A sequence over segments: plain lists of results, and ReserveRuns built on read."""

    def __init__(self) -> None:
        self.segments: list[Sequence] = []
        self._ends: list[int] = []  # cumulative length at the end of each segment

    def append(self, result) -> None:
        if self.segments and type(self.segments[-1]) is list:
            self.segments[-1].append(result)
            self._ends[-1] += 1
        else:
            self._add_segment([result])

    def add_run(self, run: Sequence) -> None:
        self._add_segment(run)

    def _add_segment(self, segment: Sequence) -> None:
        self.segments.append(segment)
        self._ends.append(len(self) + len(segment))

    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0

    def __iter__(self):
        return itertools.chain.from_iterable(self.segments)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError("batch result index out of range")
        segment = bisect.bisect_right(self._ends, index)
        start = self._ends[segment - 1] if segment else 0
        return self.segments[segment][index - start]
