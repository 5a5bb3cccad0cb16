"""The gateway's router: validation before routing, one partition per SKU, two-phase carts."""

from __future__ import annotations

import asyncio

import pytest

from engine.config import GatewayConfig, LaneLimits
from engine.ids import partitions_of_reservation
from engine.model import (
    Commit,
    ConfirmHold,
    GetAvailability,
    ItemRef,
    LineCode,
    Movement,
    MovementCode,
    MovementType,
    Outcome,
    Release,
    ReservationState,
    ReservationStatus,
    Reserve,
    ReserveLine,
)
from engine.partition_host import PartitionHost
from engine.routing import partition_of
from engine.validation import ValidationError
from gateway import carts
from gateway.carts import CartAborted
from gateway.partitions import LocalPartitions, PartitionUnavailable
from gateway.router import Router

NOW_MS = 1_700_000_000_000
LOC = "dc-1"
# sku-0 lives on partition 0 and sku-4 on partition 1 (of 2): a cart of both spans two.
LEFT, RIGHT = "sku-0", "sku-4"
TENTATIVE_S = 5


class Clock:
    """A settable clock shared by every partition host."""

    def __init__(self) -> None:
        self.now_ms = NOW_MS

    def __call__(self) -> int:
        return self.now_ms


class CountingPartitions(LocalPartitions):
    """Local partitions that count calls and may run a hook before a batch is applied."""

    def __init__(self, hosts, before_apply=None) -> None:
        super().__init__(hosts)
        self.calls = 0
        self.before_apply = before_apply

    async def apply(self, partition, commands):
        self.calls += 1
        if self.before_apply:  # the router tags each command with its partition
            self.before_apply([command for _, command in commands])
        return await super().apply(partition, commands)


def new_router(stock: int = 10, before_apply=None, **config) -> tuple[Router, Clock]:
    """Two partitions with `stock` units of LEFT and RIGHT at LOC, behind a router."""
    clock = Clock()
    hosts = [PartitionHost(p, clock_ms=clock) for p in range(2)]
    for sku in (LEFT, RIGHT):
        hosts[partition_of(sku, 2)].state.load_items([sku], [LOC], [stock])
    partitions = CountingPartitions(hosts, before_apply)
    config = GatewayConfig(cart_tentative_ttl_s=TENTATIVE_S, **config)
    return Router(partitions, config, clock_ms=clock), clock


def reserved(router: Router, sku: str) -> int:
    host = router.partitions.hosts[partition_of(sku, 2)]
    return host.state.quantities_of(sku, LOC)["reserved"]


def on_hand(router: Router, sku: str) -> int:
    host = router.partitions.hosts[partition_of(sku, 2)]
    return host.state.quantities_of(sku, LOC)["on_hand"]


def committed(router: Router, sku: str) -> int:
    host = router.partitions.hosts[partition_of(sku, 2)]
    return host.state.quantities_of(sku, LOC)["committed"]


def cart(key: str, left: int, right: int, **fields) -> Reserve:
    lines = (ReserveLine(LEFT, LOC, left), ReserveLine(RIGHT, LOC, right))
    return Reserve(key, "", lines, **fields)


def sweep(router: Router) -> None:
    for host in router.partitions.hosts:
        host.sweep()


async def test_reserve_one_partition_mints_an_id_of_that_partition():
    """A Reserve whose lines share a partition goes there alone, with an id naming it."""
    router, _ = new_router()
    result = await router.reserve(Reserve("k", "", (ReserveLine(RIGHT, LOC, 2),)))
    assert result.status is ReservationStatus.HELD
    assert partitions_of_reservation(result.reservation_id) == (partition_of(RIGHT, 2),)
    assert reserved(router, RIGHT) == 2


async def test_reserve_cart_across_partitions_is_held_with_one_id_and_final_expiry():
    """A fillable cart spanning partitions is HELD under one id that names both partitions."""
    router, _ = new_router()
    result = await router.reserve(cart("k", 3, 4, ttl_seconds=60))
    assert result.status is ReservationStatus.HELD
    assert partitions_of_reservation(result.reservation_id) == (0, 1)
    assert [line.reserved for line in result.lines] == [3, 4]
    assert [line.available_after for line in result.lines] == [7, 6]
    assert (reserved(router, LEFT), reserved(router, RIGHT)) == (3, 4)
    assert result.expires_at_unix_ms == NOW_MS + 60_000
    for host in router.partitions.hosts:  # confirmed: each part falls due with the cart
        part = host.state.reservations.get(result.reservation_id)
        assert part.expires_at_ms == NOW_MS + 60_000


async def test_reserve_cart_that_cannot_be_filled_leaves_nothing_held():
    """One short line rejects the whole cart and rolls back the part that was held."""
    router, _ = new_router()
    result = await router.reserve(cart("k", 3, 11))
    assert result.status is ReservationStatus.REJECTED and result.reservation_id == ""
    assert [(line.reserved, line.code) for line in result.lines] == [
        (0, LineCode.OK), (0, LineCode.INSUFFICIENT_AVAILABLE)]
    assert [line.available_after for line in result.lines] == [10, 10]
    assert (reserved(router, LEFT), reserved(router, RIGHT)) == (0, 0)


async def test_reserve_cart_partial_holds_what_it_can_and_commits_it():
    """With allow_partial a cart is PARTIALLY_HELD; its commit commits the part held."""
    router, _ = new_router()
    result = await router.reserve(cart("k", 3, 11, allow_partial=True))
    assert result.status is ReservationStatus.PARTIALLY_HELD
    assert [line.reserved for line in result.lines] == [3, 10]
    answer = await router.commit(Commit(result.reservation_id, "c"))
    assert (answer.outcome, answer.state) == (Outcome.OK, ReservationState.COMMITTED)
    assert (committed(router, LEFT), committed(router, RIGHT)) == (3, 10)


async def test_reserve_cart_partial_with_one_empty_part_commits_the_other():
    """A part that held nothing is no reason to refuse the cart's commit."""
    router, _ = new_router()
    await router.apply_movements([Movement("sold", "pos", MovementType.SALE, RIGHT, LOC, 10)])
    result = await router.reserve(cart("k", 3, 1, allow_partial=True))
    assert result.status is ReservationStatus.PARTIALLY_HELD
    answer = await router.commit(Commit(result.reservation_id, "c"))
    assert (answer.outcome, answer.state) == (Outcome.OK, ReservationState.COMMITTED)
    assert (committed(router, LEFT), committed(router, RIGHT)) == (3, 0)


async def test_reserve_cart_retried_returns_the_first_answer_and_holds_once():
    """A cart retried with its key replays every part: same id, same expiry, no second hold."""
    router, clock = new_router()
    first = await router.reserve(cart("k", 3, 4))
    clock.now_ms += 1_000
    again = await router.reserve(cart("k", 3, 4))
    assert again == first
    assert (reserved(router, LEFT), reserved(router, RIGHT)) == (3, 4)


async def test_reserve_cart_key_reused_with_other_payload_is_refused_and_changes_nothing():
    """The same key with another cart is an idempotency conflict; nothing more is held."""
    router, _ = new_router()
    await router.reserve(cart("k", 3, 4))
    result = await router.reserve(cart("k", 3, 5))
    assert result.outcome is Outcome.IDEMPOTENCY_CONFLICT
    assert (reserved(router, LEFT), reserved(router, RIGHT)) == (3, 4)


async def test_release_cart_releases_every_part():
    """Releasing a cart's id gives back the stock of every partition."""
    router, _ = new_router()
    result = await router.reserve(cart("k", 3, 4))
    answer = await router.release(Release(result.reservation_id, "r"))
    assert (answer.outcome, answer.state) == (Outcome.OK, ReservationState.RELEASED)
    assert (reserved(router, LEFT), reserved(router, RIGHT)) == (0, 0)


async def test_reserve_cart_key_reused_with_other_ttl_is_refused_and_changes_nothing():
    """Parts equal to an earlier cart's but under another cart id are a conflict, not a hold."""
    router, _ = new_router()
    first = await router.reserve(cart("k", 3, 4, ttl_seconds=600))
    result = await router.reserve(cart("k", 3, 4, ttl_seconds=900))
    assert result.outcome is Outcome.IDEMPOTENCY_CONFLICT
    assert (reserved(router, LEFT), reserved(router, RIGHT)) == (3, 4)
    answer = await router.commit(Commit(first.reservation_id, "c"))
    assert answer.state is ReservationState.COMMITTED


async def test_reserve_cart_whose_phase_two_never_arrives_lapses_after_tentative_ttl(
        monkeypatch):
    """Partitions unreachable after phase 1 keep tentative holds only until the TTL passes."""
    monkeypatch.setattr(carts, "ROLLBACK_RETRY_DELAYS_S", (0, 0))
    def unreachable_after_phase_one(commands):
        if any(type(command) in (ConfirmHold, Release) for command in commands):
            raise PartitionUnavailable("partition is unavailable")
    router, clock = new_router(before_apply=unreachable_after_phase_one)
    with pytest.raises(CartAborted):
        await router.reserve(cart("k", 3, 4))
    assert (reserved(router, LEFT), reserved(router, RIGHT)) == (3, 4)
    clock.now_ms += TENTATIVE_S * 1000 - 1
    sweep(router)
    assert (reserved(router, LEFT), reserved(router, RIGHT)) == (3, 4)
    clock.now_ms += 1
    sweep(router)
    assert (reserved(router, LEFT), reserved(router, RIGHT)) == (0, 0)


async def test_reserve_cart_whose_caller_goes_away_between_phases_is_still_confirmed():
    """Cancelling the caller does not cut a cart in two: it is confirmed, and drain waits."""
    router, clock = new_router(cart_confirm_delay_s=0.05)
    attempt = asyncio.create_task(router.reserve(cart("k", 3, 4)))
    while reserved(router, RIGHT) == 0 or reserved(router, LEFT) == 0:
        await asyncio.sleep(0.001)
    attempt.cancel()
    with pytest.raises(asyncio.CancelledError):
        await attempt
    await router.drain()
    clock.now_ms += TENTATIVE_S * 1000
    sweep(router)
    assert (reserved(router, LEFT), reserved(router, RIGHT)) == (3, 4)
    again = await router.reserve(cart("k", 3, 4))
    assert again.status is ReservationStatus.HELD


async def test_reserve_cart_with_a_failed_partition_is_aborted_and_its_key_holds_nothing():
    """A part failing after another was held aborts the cart; a retry with its key holds nothing."""
    failures = iter([True])
    def right_fails_once(commands):
        if any(type(c) is Reserve and c.lines[0].sku == RIGHT for c in commands) and \
                next(failures, False):
            raise PartitionUnavailable("partition is unavailable")
    router, _ = new_router(before_apply=right_fails_once)
    with pytest.raises(CartAborted, match="could not be held"):
        await router.reserve(cart("k", 3, 4))
    assert (reserved(router, LEFT), reserved(router, RIGHT)) == (0, 0)
    with pytest.raises(CartAborted):
        await router.reserve(cart("k", 3, 4))
    assert (reserved(router, LEFT), reserved(router, RIGHT)) == (0, 0)


async def test_reserve_cart_confirmed_too_late_is_aborted_and_rolled_back():
    """A confirmation after the tentative holds lapsed aborts the cart; nothing stays held."""
    def late(commands):
        if any(type(command) is ConfirmHold for command in commands):
            clock.now_ms = NOW_MS + TENTATIVE_S * 1000
    router, clock = new_router(before_apply=late)
    with pytest.raises(CartAborted, match="expired"):
        await router.reserve(cart("k", 3, 4))
    assert (reserved(router, LEFT), reserved(router, RIGHT)) == (0, 0)


@pytest.mark.parametrize("reservation_id", ["nonsense", "r7-0123456789abcdef0123456789abcdef",
                                            "r0.9-0123456789abcdef0123456789abcdef"])
async def test_commit_of_id_naming_no_partition_of_ours_is_not_found(reservation_id):
    """An id this engine could not have minted is NOT_FOUND without reaching a partition."""
    router, _ = new_router()
    answer = await router.commit(Commit(reservation_id, "c"))
    assert answer.outcome is Outcome.NOT_FOUND
    assert router.partitions.calls == 0


async def test_reserve_invalid_is_refused_before_any_partition_is_called():
    """Validation names the field and nothing is sent to a partition."""
    router, _ = new_router()
    with pytest.raises(ValidationError, match=r"lines\[1\]\.quantity"):
        await router.reserve(cart("k", 3, 0))
    assert router.partitions.calls == 0


async def test_get_availability_merges_partitions_in_request_order():
    """Items on different partitions come back in the order asked, unknown ones included."""
    router, _ = new_router()
    await router.reserve(cart("k", 3, 4))
    query = GetAvailability((ItemRef(RIGHT, LOC), ItemRef("ghost", LOC), ItemRef(LEFT, LOC)))
    result = await router.get_availability(query)
    assert [(i.sku, i.reserved, i.known) for i in result.items] == [
        (RIGHT, 4, True), ("ghost", 0, False), (LEFT, 3, True)]


async def test_apply_movements_answers_each_in_request_order():
    """Movements for SKUs on different partitions are answered in request order."""
    router, _ = new_router()
    movements = [Movement(f"e{n}", "erp", MovementType.RECEIPT, sku, LOC, 5)
                 for n, sku in enumerate((RIGHT, LEFT, RIGHT))]
    results = await router.apply_movements(movements + movements[:1])
    assert [(r.event_id, r.code) for r in results] == [
        ("e0", MovementCode.APPLIED), ("e1", MovementCode.APPLIED),
        ("e2", MovementCode.APPLIED), ("e0", MovementCode.DUPLICATE)]


async def test_apply_checked_movements_sends_one_call_per_partition_answers_in_order():
    """A batch of movements makes one lane lot, hence one call, per partition it touches."""
    router, _ = new_router()
    movements = [Movement(f"e{n}", "erp", MovementType.RECEIPT, sku, LOC, 1)
                 for n, sku in enumerate((LEFT, RIGHT, LEFT, LEFT, RIGHT, RIGHT))]
    answers = await router.apply_checked_movements(movements)
    assert router.partitions.calls == 2
    assert [(a.event_id, a.code) for a in answers] == [
        (f"e{n}", MovementCode.APPLIED) for n in range(6)]


async def test_apply_checked_movements_full_lane_refuses_its_partition_only():
    """A partition whose lane cannot take its lot answers LaneOverloaded for each of those
    movements, in place; the other partition's movements are applied."""
    router, _ = new_router(lanes=LaneLimits(queue_commands_max=2))
    movements = [Movement(f"e{n}", "erp", MovementType.RECEIPT, sku, LOC, 1)
                 for n, sku in enumerate((LEFT, RIGHT, LEFT, LEFT))]
    answers = await router.apply_checked_movements(movements)
    assert [type(a).__name__ for a in answers] == [
        "LaneOverloaded", "MovementResult", "LaneOverloaded", "LaneOverloaded"]
    assert answers[1].code is MovementCode.APPLIED
    assert on_hand(router, LEFT) == 10  # none of its lot was applied


async def test_apply_checked_movements_failed_partition_answers_its_error_in_place():
    """A partition call that fails answers its error for each of its movements; the other
    partition's movements get their results."""
    def fail_left(commands):
        if any(command.sku == LEFT for command in commands):
            raise PartitionUnavailable("partition 0 is restarting")
    router, _ = new_router(before_apply=fail_left)
    movements = [Movement(f"e{n}", "erp", MovementType.RECEIPT, sku, LOC, 1)
                 for n, sku in enumerate((RIGHT, LEFT))]
    answers = await router.apply_checked_movements(movements)
    assert answers[0].code is MovementCode.APPLIED
    assert isinstance(answers[1], PartitionUnavailable)
    with pytest.raises(PartitionUnavailable):
        await router.apply_movements(movements)
