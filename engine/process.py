"""Settings for a process on the hot path (a partition, a gateway): garbage collection tuned."""

from __future__ import annotations

import gc

# A partition holds millions of long-lived, acyclic objects (reservations, remembered
# keys), and a gateway the hundreds of thousands that importing Ray leaves. CPython's
# default thresholds re-scan them over and over as the hot path allocates (an ingest read
# of thousands of entries sets off collection after collection); collecting young
# objects every 50,000 allocations instead of 700 keeps the cycle collector (which has
# little to find here) off the hot path.
YOUNG_COLLECTION_ALLOCATIONS = 50_000


def tune_garbage_collector() -> None:
    """Freeze what is alive now (loaded once, kept for good) and collect young objects rarely."""
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_ALLOCATIONS, middle, old)
