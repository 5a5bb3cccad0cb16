"""The flash-sale workload: seeded buyers with arrival times, carts and what each does next."""

from __future__ import annotations

import bisect
import itertools
import random
from dataclasses import dataclass

ARRIVALS = ("flat", "ramp", "spike", "closed")
# "closed" is the saturating curve: every buyer is waiting at the start and a new one
# begins as soon as a Reserve is answered, so each target runs at its own capacity.
CLOSED = "closed"
OUTCOMES = ("commit", "release", "expire", "keep")
# The spike: this share of the buyers arrive within SPIKE_WIDTH of the duration, starting at
# SPIKE_AT of it (the sale opens); the rest arrive evenly over the whole duration.
SPIKE_SHARE = 0.6
SPIKE_AT = 0.2
SPIKE_WIDTH = 0.1
# A buyer thinks between THINK_LOW and THINK_HIGH times --think-s before committing or releasing.
THINK_LOW, THINK_HIGH = 0.5, 1.5


class WorkloadError(ValueError):
    """A workload setting out of range; the message starts with the option's name."""


@dataclass(frozen=True)
class WorkloadSpec:
    duration_s: float = 30.0
    buyers: int = 100_000
    skus: int = 10
    stock: int = 1_000
    arrival: str = "spike"
    # Cart sizes in units, each with its weight: ((1, 70), (2, 20), (3, 10)).
    cart_mix: tuple[tuple[int, int], ...] = ((1, 70), (2, 20), (3, 10))
    # Of the buyers whose cart is held: commit_ratio commit, abandon_rate abandon (of those,
    # abandon_release_share release, the rest let the hold expire), the rest keep their hold.
    commit_ratio: float = 0.6
    abandon_rate: float = 0.3
    abandon_release_share: float = 0.5
    think_s: float = 1.0
    hold_ttl_s: int = 10
    seed: int = 1

    def check(self) -> None:
        """Raise WorkloadError naming the first option out of range."""
        rules = [
            ("--duration", self.duration_s > 0, "must be above 0"),
            ("--buyers", self.buyers >= 1, "must be at least 1"),
            ("--skus", self.skus >= 1, "must be at least 1"),
            ("--stock", self.stock >= 1, "must be at least 1"),
            ("--arrival", self.arrival in ARRIVALS, f"must be one of {', '.join(ARRIVALS)}"),
            ("--commit-ratio", 0 <= self.commit_ratio <= 1, "must be between 0 and 1"),
            ("--abandon-rate", 0 <= self.abandon_rate <= 1, "must be between 0 and 1"),
            ("--abandon-rate", self.commit_ratio + self.abandon_rate <= 1,
             "plus --commit-ratio must be at most 1"),
            ("--abandon-release-share", 0 <= self.abandon_release_share <= 1,
             "must be between 0 and 1"),
            ("--think-s", self.think_s >= 0, "must be at least 0"),
            ("--hold-ttl-s", 1 <= self.hold_ttl_s <= 86_400, "must be between 1 and 86400"),
            ("--cart-mix", bool(self.cart_mix), "needs at least one size"),
        ]
        for option, ok, rule in rules:
            if not ok:
                raise WorkloadError(f"{option} {rule}")


@dataclass(frozen=True)
class Buyer:
    index: int
    arrive_s: float
    # (SKU index, units) per line, each SKU once.
    lines: tuple[tuple[int, int], ...]
    outcome: str
    think_s: float

    @property
    def units(self) -> int:
        return sum(units for _, units in self.lines)


def parse_cart_mix(text: str) -> tuple[tuple[int, int], ...]:
    """'1:70,2:20,3:10' -> ((1, 70), (2, 20), (3, 10)): cart size in units, then weight."""
    mix = []
    for part in filter(None, (piece.strip() for piece in text.split(","))):
        size, _, weight = part.partition(":")
        try:
            pair = (int(size), int(weight or "1"))
        except ValueError:
            raise WorkloadError(f"--cart-mix: {part!r} is not SIZE:WEIGHT") from None
        if not 1 <= pair[0] <= 500 or pair[1] < 1:
            raise WorkloadError(f"--cart-mix: {part!r}: size 1..500 and weight at least 1")
        mix.append(pair)
    if not mix:
        raise WorkloadError("--cart-mix needs at least one SIZE:WEIGHT")
    return tuple(mix)


def sku_names(run_id: str, count: int) -> list[str]:
    """This run's SKUs: fresh names, so a run against a shared engine starts from its stock."""
    return [f"FLASH-{run_id}-{n:05d}" for n in range(count)]


def arrival_offset_s(arrival: str, duration_s: float, rng: random.Random) -> float:
    """One buyer's arrival, seconds after the start, drawn from the curve's distribution."""
    if arrival == CLOSED:
        return 0.0
    if arrival == "ramp":  # the rate rises linearly from 0: CDF (t/D)^2
        return duration_s * rng.random() ** 0.5
    if arrival == "spike" and rng.random() < SPIKE_SHARE:
        return duration_s * (SPIKE_AT + SPIKE_WIDTH * rng.random())
    return duration_s * rng.random()


def build_buyers(spec: WorkloadSpec) -> list[Buyer]:
    """Every buyer of the run, in arrival order; the same spec always gives the same list."""
    spec.check()
    rng = random.Random(spec.seed)
    sizes = [size for size, _ in spec.cart_mix]
    cumulative = list(itertools.accumulate(weight for _, weight in spec.cart_mix))
    arrivals = sorted(arrival_offset_s(spec.arrival, spec.duration_s, rng)
                      for _ in range(spec.buyers))
    buyers = []
    for index, arrive_s in enumerate(arrivals):
        size = sizes[bisect.bisect_right(cumulative, rng.random() * cumulative[-1])]
        buyers.append(Buyer(index, arrive_s, _cart_lines(size, spec.skus, rng),
                            _outcome(spec, rng.random(), rng.random()),
                            spec.think_s * rng.uniform(THINK_LOW, THINK_HIGH)))
    return buyers


def _cart_lines(units: int, skus: int, rng: random.Random) -> tuple[tuple[int, int], ...]:
    """`units` spread round-robin over distinct SKUs: fewer SKUs than units raise quantities."""
    chosen = sorted(rng.sample(range(skus), min(units, skus)))
    quantities = [units // len(chosen) + (n < units % len(chosen)) for n in range(len(chosen))]
    return tuple(zip(chosen, quantities))


def _outcome(spec: WorkloadSpec, draw: float, release_draw: float) -> str:
    if draw < spec.commit_ratio:
        return "commit"
    if draw < spec.commit_ratio + spec.abandon_rate:
        return "release" if release_draw < spec.abandon_release_share else "expire"
    return "keep"
