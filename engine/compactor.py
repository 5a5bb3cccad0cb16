"""A partition's next snapshot, built from its last snapshot and journal in a process of its own.

    python -m engine.compactor --redis-url URL --key-prefix P --partition N --epoch E

The partition never stops for it: the compactor reads only what Redis holds, so its
snapshot cannot hold a change the journal lacks, and it writes under the partition's
epoch, so a compactor outlived by its actor (or by that actor's epoch) is fenced.
"""

from __future__ import annotations

import argparse
import json
import sys

from engine import journal, snapshot
from engine.config import PartitionConfig
from engine.journal_store import JournalStore, connect
from engine.partition_state import PartitionState


def compact(store: JournalStore, config: PartitionConfig | None, now_ms: int) -> int | None:
    """Store a snapshot of everything the journal holds; the snapshot's seq, or None if
    Redis refused it (a newer snapshot is already there)."""
    saved = store.load_snapshot()
    state = snapshot.load(saved[1], config) if saved else PartitionState(config)
    before = state.seq
    journal.replay(state, store.entries_after(state.seq))
    if saved and state.seq == before:
        return before  # nothing new since the stored one
    return state.seq if store.save_snapshot(state.seq, snapshot.dump(state), now_ms) else None


def command(redis_url: str, key_prefix: str, partition: int, config: PartitionConfig | None,
            epoch: int, now_ms: int) -> list[str]:
    """The command line that runs `compact` for a partition at its epoch, from its actor."""
    return [sys.executable, "-m", "engine.compactor", "--redis-url", redis_url,
            "--key-prefix", key_prefix, "--partition", str(partition), "--epoch", str(epoch),
            "--now-ms", str(now_ms),
            "--config", json.dumps(config.tunables() if config else None)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.compactor", description=__doc__)
    parser.add_argument("--redis-url", required=True)
    parser.add_argument("--key-prefix", required=True)
    parser.add_argument("--partition", type=int, required=True)
    parser.add_argument("--epoch", type=int, required=True)
    parser.add_argument("--now-ms", type=int, required=True)
    parser.add_argument("--config", default="null", help="PartitionConfig fields as JSON")
    args = parser.parse_args(argv)
    fields = json.loads(args.config)
    store = JournalStore(connect(args.redis_url), args.partition, args.key_prefix)
    store.epoch = args.epoch
    seq = compact(store, PartitionConfig(**fields) if fields else None, args.now_ms)
    return 0 if seq is not None else 1


if __name__ == "__main__":
    sys.exit(main())
