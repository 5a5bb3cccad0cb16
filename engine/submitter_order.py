"""Each submitter's batches enter a partition in the order the submitter sent them."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

# A batch whose predecessor never arrives (its call was lost) waits at most this long.
PREDECESSOR_WAIT_S = 1.0
# Submitters remembered; the oldest (a gateway long gone) are forgotten past it.
SUBMITTERS_MAX = 4096


class SubmitterOrder:
    """A threaded actor may start two calls of one caller in either order; a gateway lane
    numbers its batches, and each waits here until the one before it has been applied."""

    def __init__(self, wait_s: float = PREDECESSOR_WAIT_S) -> None:
        self._wait_s = wait_s
        self._next: OrderedDict[str, int] = OrderedDict()
        self._changed = threading.Condition()

    @contextmanager
    def turn(self, submitter: str, number: int, oldest: int = 0) -> Iterator[None]:
        """Hold batch `number` of `submitter` until every earlier one entered, then let it in.

        `oldest` is the submitter's oldest batch still unanswered when it sent this one:
        nothing before it can still arrive, so a submitter this actor has not seen (or a
        restarted actor) waits only for batches that are really on their way.
        """
        with self._changed:
            self._changed.wait_for(lambda: self._next.get(submitter, oldest) >= number,
                                   self._wait_s)
        try:
            yield
        finally:
            with self._changed:
                self._next[submitter] = max(self._next.get(submitter, 0), number + 1)
                self._next.move_to_end(submitter)
                if len(self._next) > SUBMITTERS_MAX:
                    self._next.popitem(last=False)
                self._changed.notify_all()
