"""One partition's state with its clock and its sweep of due holds: the actor's work, minus Ray."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from engine.config import PartitionConfig
from engine.model import Command, Expire, Result, SetChannelRules
from engine.partition_state import PartitionState

# A hold is swept within this long of falling due (plus one batch); DESIGN asks for 1 s.
SWEEP_INTERVAL_S = 0.5
# With no hold due, a sweep still runs this often to forget finished reservations and
# expired keys; otherwise an idle partition takes no sequence numbers (no journal entries).
HOUSEKEEPING_INTERVAL_MS = 60_000


# Told of every batch that took sequence numbers: (commands, now_ms, first_seq, last_seq).
OnApplied = Callable[[Sequence[Command], int, int, int], None]


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class PartitionHost:
    """Applies batches to one PartitionState at the host's clock, and sweeps expired holds."""

    def __init__(self, partition: int, config: PartitionConfig | None = None,
                 clock_ms: Callable[[], int] = wall_clock_ms,
                 on_applied: OnApplied | None = None) -> None:
        self.partition = partition
        self.state = PartitionState(config)
        self._clock_ms = clock_ms
        self._swept_at_ms = clock_ms()
        self._on_applied = on_applied
        if on_applied is None:  # nothing to recover first: the rules apply from the start
            self.adopt_channel_rules()

    def adopt_channel_rules(self) -> None:
        """Put the configured channel rules in force, unless the state has them already."""
        rules = self.state.config.channels
        if rules != self.state.channel_book.rules:
            self.apply([SetChannelRules(rules.to_json())])

    def apply(self, commands: Sequence[Command]) -> list[Result]:
        """One result per command, in order, built now so they travel as plain tuples."""
        state = self.state
        seq_before, now_ms = state.seq, self._clock_ms()
        results = list(state.apply(commands, now_ms))
        if self._on_applied is not None and state.seq != seq_before:
            # The state's own clock, which replay must see again to rebuild the same state.
            self._on_applied(commands, state.now_ms, seq_before + 1, state.seq)
        return results

    def sweep(self) -> int:
        """Expire the holds that are due and return how many; with none due, apply nothing."""
        now_ms = self._clock_ms()
        due_ms = self.state.reservations.next_due_ms()
        if (due_ms is None or due_ms > now_ms) and \
                now_ms - self._swept_at_ms < HOUSEKEEPING_INTERVAL_MS:
            return 0
        self._swept_at_ms = now_ms
        return self.apply([Expire()])[0].expired

    def status(self) -> dict[str, int]:
        """What a readiness probe or an operator wants to know at a glance."""
        state = self.state
        return {"partition": self.partition, "seq": state.seq, "items": state.items.size,
                "reservations": len(state.reservations)}
