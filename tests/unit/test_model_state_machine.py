"""Random command sequences against the partition state and a plain-dict model, step by step."""

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from engine import snapshot
from engine.config import PartitionConfig
from engine.model import (
    QUANTITIES,
    Commit,
    Expire,
    Movement,
    MovementType,
    Release,
    Reserve,
    ReserveLine,
)
from engine.partition_state import PartitionState
from tests.unit.reference_ledger import ReferenceLedger, summarize

SKUS = ("sku-a", "sku-b", "sku-c")
LOCATIONS = ("dc-1", "store-2")
KEYS = tuple(f"key-{n}" for n in range(12))  # few keys, so retries and conflicts happen
EVENT_IDS = tuple(f"event-{n}" for n in range(12))
ORDERS = ("", "order-1", "order-2")
SKEW_MS = 60_000
START_MS = 1_700_000_000_000

quantities = st.integers(min_value=1, max_value=6)
lines = st.lists(st.builds(ReserveLine, st.sampled_from(SKUS), st.sampled_from(LOCATIONS),
                           quantities),
                 min_size=1, max_size=3, unique_by=lambda line: (line.sku, line.location))
movement_types = st.sampled_from(list(MovementType))


class PartitionMatchesModel(RuleBasedStateMachine):
    """Every step: same results as the model, same quantities, and DESIGN section 4's invariants."""

    def __init__(self):
        super().__init__()
        # Runs from two Reserves up take the numpy path, so both paths meet the model.
        config = PartitionConfig(hold_ttl_seconds_default=30, clock_skew_ms_max=SKEW_MS,
                                 vectorized_run_min=2)
        self.state = PartitionState(config)
        self.model = ReferenceLedger(config.hold_ttl_seconds_default, SKEW_MS)
        self.now_ms = START_MS
        self.ids_minted = 0
        self.issued: list = []  # commands sent so far, for exact retries
        self.reservation_ids: list[str] = []
        self.ledger_totals: dict[tuple[str, str], list[int]] = {}

    def _apply(self, commands: list) -> None:
        results = self.state.apply([c if c is not None else Expire() for c in commands],
                                   self.now_ms)
        assert len(results) == len(commands)
        for command, result in zip(commands, results, strict=True):
            assert summarize(result) == self.model.apply(command, self.now_ms), command
        self.issued.extend(c for c in commands if c is not None)
        for change in self.state.ledger_changes():
            total = self.ledger_totals.setdefault((change.sku, change.location), [0, 0])
            total[0] += change.on_hand_delta
            total[1] += change.committed_delta

    def _reserve(self, data, reuse_id: bool) -> Reserve:
        if reuse_id and self.reservation_ids:
            reservation_id = data.draw(st.sampled_from(self.reservation_ids))
        else:
            self.ids_minted += 1
            reservation_id = f"r0-{self.ids_minted}"
            self.reservation_ids.append(reservation_id)
        return Reserve(data.draw(st.sampled_from(KEYS)), reservation_id, data.draw(lines),
                       data.draw(st.sampled_from([0, 5, 60])), data.draw(st.booleans()),
                       order_ref=data.draw(st.sampled_from(ORDERS)))

    def _movement(self, data) -> Movement:
        kind = data.draw(movement_types)
        quantity = data.draw(st.integers(0 if kind in (MovementType.CYCLE_COUNT,
                                                       MovementType.SAFETY_STOCK_SET) else 1, 8))
        if kind is MovementType.ADJUSTMENT:
            quantity = data.draw(st.sampled_from([-3, -1, 2, 5]))
        offset_ms = data.draw(st.sampled_from([0, -5_000, -40_000, 2_000, 2 * SKEW_MS]))
        occurred_at_ms = self.now_ms + offset_ms if offset_ms or kind is \
            MovementType.CYCLE_COUNT else 0
        location = data.draw(st.sampled_from(LOCATIONS))
        return Movement(
            data.draw(st.sampled_from(EVENT_IDS)), "wms", kind, data.draw(st.sampled_from(SKUS)),
            location, quantity, occurred_at_ms,
            order_ref=data.draw(st.sampled_from(ORDERS)),
            reservation_id=data.draw(st.sampled_from([""] + self.reservation_ids[-3:])),
            destination_location=next(other for other in LOCATIONS if other != location))

    def _lifecycle(self, data, kind):
        reservation_id = data.draw(st.sampled_from(self.reservation_ids + ["r0-missing"]))
        key = data.draw(st.sampled_from(KEYS))
        if kind is Commit:
            return Commit(reservation_id, key, data.draw(st.sampled_from(ORDERS)))
        return Release(reservation_id, key, "abandoned")

    @rule(data=st.data(), reuse_id=st.booleans())
    def reserve(self, data, reuse_id):
        self._apply([self._reserve(data, reuse_id and data.draw(st.booleans()))])

    @rule(data=st.data(), size=st.integers(2, 25))
    def reserve_batch(self, data, size):
        """A batch of single-line Reserves (the vectorized path) and an occasional cart."""
        batch = []
        for _ in range(size):
            command = self._reserve(data, reuse_id=data.draw(st.integers(0, 9)) == 0)
            if data.draw(st.integers(0, 4)):
                command = command._replace(lines=command.lines[:1])
            batch.append(command)
        self._apply(batch)

    @rule(data=st.data())
    def movement(self, data):
        self._apply([self._movement(data)])

    @rule(data=st.data(), kind=st.sampled_from([Commit, Release]))
    def commit_or_release(self, data, kind):
        self._apply([self._lifecycle(data, kind)])

    @precondition(lambda self: self.issued)
    @rule(data=st.data(), tweak=st.booleans())
    def retry(self, data, tweak):
        """Resend an earlier command, exactly or with another payload under the same key."""
        command = data.draw(st.sampled_from(self.issued))
        if tweak and isinstance(command, Movement):
            command = command._replace(quantity=command.quantity + 1)
        elif tweak and isinstance(command, Reserve):
            command = command._replace(allow_partial=not command.allow_partial)
        self._apply([command])

    @rule(data=st.data(), size=st.integers(2, 8))
    def mixed_batch(self, data, size):
        """Several kinds of command in one batch apply in order."""
        makers = [lambda: self._reserve(data, False), lambda: self._movement(data),
                  lambda: self._lifecycle(data, Commit), lambda: self._lifecycle(data, Release),
                  lambda: None]
        self._apply([data.draw(st.sampled_from(makers))() for _ in range(size)])

    @rule(elapsed_s=st.sampled_from([1, 4, 6, 31, 61]))
    def time_passes(self, elapsed_s):
        self.now_ms += elapsed_s * 1000
        self._apply([None])

    @rule()
    def restart_from_snapshot(self):
        """A partition rebuilt from its snapshot carries on exactly as before."""
        self.state = snapshot.load(snapshot.dump(self.state))

    @invariant()
    def quantities_match_model(self):
        for (sku, location), expected in self.model.items.items():
            assert self.state.quantities_of(sku, location) == expected, (sku, location)
        assert self.state.items.size == len(self.model.items)

    @invariant()
    def design_invariants_hold(self):
        """Non-negative quantities; reserved and committed equal the sum of live lines."""
        held, committed = {}, {}
        for reservation in self.state.reservations.all():
            target = {"HELD": held, "COMMITTED": committed}.get(reservation.state.name)
            if target is None:
                continue
            for line, row in enumerate(reservation.rows):
                target[row] = target.get(row, 0) + reservation.unshipped(line)
        columns = self.state.items.columns
        for row in range(self.state.items.size):
            for name in QUANTITIES[1:]:
                assert columns[name][row] >= 0, name
            assert columns["reserved"][row] == held.get(row, 0)
            assert columns["committed"][row] == committed.get(row, 0)


    @invariant()
    def explanations_add_up(self):
        """Every item's explained terms sum to its available-to-sell."""
        for sku, location in self.model.items:
            row = self.state.items.find(sku, location)
            terms = self.state.explain(sku, location).terms
            assert sum(q for _, q in terms) == self.state.items.available_to_sell(row)

    @invariant()
    def ledger_changes_add_up_to_the_quantities(self):
        """What the ERP is sent (every batch's ledger changes) sums to on_hand and committed."""
        for (sku, location), expected in self.model.items.items():
            on_hand_delta, committed_delta = self.ledger_totals.get((sku, location), (0, 0))
            assert (on_hand_delta, committed_delta) == (expected["on_hand"],
                                                        expected["committed"]), (sku, location)


# Built at import, so the profile chosen with --hypothesis-profile (ci or long) applies.
PartitionMatchesModel.TestCase.settings = settings(stateful_step_count=30)
test_partition_matches_model = PartitionMatchesModel.TestCase
