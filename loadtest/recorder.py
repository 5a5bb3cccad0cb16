"""What a flash-sale run saw: counts, HDR latencies, per-second series, holds and phases."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from loadtest.latency import LatencyHistogram
from loadtest.oversell import HoldRecord

KINDS = ("reserve", "commit", "release")
# Outcomes an operation ends with; "failed" is one the harness gave up retrying.
OUTCOMES = ("held", "rejected", "committed", "refused", "released", "failed")


@dataclass
class PhaseTally:
    """Operations started within one phase of a run (steady, or after a fault)."""

    latency: LatencyHistogram = field(default_factory=LatencyHistogram)
    ops: int = 0
    failed_ops: int = 0
    attempt_errors: int = 0

    def summary(self) -> dict:
        return {"ops": self.ops, "failed_ops": self.failed_ops,
                "attempt_errors": self.attempt_errors, **self.latency.summary()}


class Recorder:
    """Counts and times every operation of one target's run; times in seconds from its start.

    `phase_of` names the phase an instant belongs to (chaos runs split a run by fault).
    """

    def __init__(self, phase_of: Callable[[float], str] = lambda at_s: "run") -> None:
        self._phase_of = phase_of
        self.latency = {kind: LatencyHistogram() for kind in ("all", *KINDS)}
        self.counts: Counter[str] = Counter()
        self.phases: dict[str, PhaseTally] = {}
        self.ops_by_second: list[int] = []
        # Latency of the operations answered in each second: how a fault or a spike moved it.
        self.latency_by_second: list[LatencyHistogram] = []
        self.errors_by_second: list[int] = []
        self.holds: list[HoldRecord] = []
        self.first_error = ""

    def op_done(self, kind: str, scheduled_s: float, done_s: float, outcome: str) -> None:
        """One operation answered (or given up), its latency from its scheduled start."""
        latency_s = max(0.0, done_s - scheduled_s)
        phase = self._phase(scheduled_s)
        self.counts[f"{kind}:{outcome}"] += 1
        if outcome == "failed":
            phase.failed_ops += 1
            return
        self.latency["all"].record_s(latency_s)
        self.latency[kind].record_s(latency_s)
        phase.latency.record_s(latency_s)
        phase.ops += 1
        _bump(self.ops_by_second, done_s)
        second = max(0, math.floor(done_s))
        while second >= len(self.latency_by_second):
            self.latency_by_second.append(LatencyHistogram())
        self.latency_by_second[second].record_s(latency_s)

    def attempt_failed(self, at_s: float, error: BaseException) -> None:
        """One attempt ended in an error (it may be retried)."""
        self.counts["attempt_errors"] += 1
        self._phase(at_s).attempt_errors += 1
        _bump(self.errors_by_second, at_s)
        self.first_error = self.first_error or f"{type(error).__name__}: {error}"

    def _phase(self, at_s: float) -> PhaseTally:
        name = self._phase_of(at_s)
        phase = self.phases.get(name)
        if phase is None:  # not setdefault: a tally holds an HDR histogram, costly to build
            phase = self.phases[name] = PhaseTally()
        return phase

    @property
    def ops(self) -> int:
        return self.latency["all"].count

    def count(self, kind: str, outcome: str) -> int:
        return self.counts[f"{kind}:{outcome}"]


def _bump(series: list[int], at_s: float) -> None:
    second = max(0, math.floor(at_s))
    if second >= len(series):
        series.extend([0] * (second + 1 - len(series)))
    series[second] += 1
