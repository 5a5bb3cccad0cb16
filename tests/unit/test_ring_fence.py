"""Ring-fenced channels: the rule, fence arithmetic in a partition, FenceShown and SettleFences,
refusals that change nothing, snapshot and replay, the router, and the publisher's side."""

from __future__ import annotations

import pytest

from engine import journal, snapshot
from engine.channel_publishing import WEBHOOK, Publish, Velocity
from engine.channels import DEFAULT, Channel, ChannelError, ChannelRules
from engine.config import GatewayConfig, PartitionConfig
from engine.model import (
    FenceItem,
    FenceShown,
    GetAvailability,
    ItemRef,
    Outcome,
    Release,
    ReservationStatus,
    SetChannelRules,
    SettleFences,
    WatchChanges,
)
from engine.model import MovementType as MT
from engine.partition_host import PartitionHost
from engine.partition_state import PartitionState
from engine.publisher import ChannelPublisher
from engine.validation import ValidationError
from gateway.partitions import LocalPartitions
from gateway.router import Router
from tests.unit.partition_helpers import NOW, apply_one, apply_refused, move, reserve
from tests.unit.test_publisher import URL, FakeStore, FakeTime, FakeWebhook, change

SKU = "sku-1"
MARKET = Channel("market", locations=("dc-*",), publish=Publish(WEBHOOK, URL, 60.0, 100.0),
                 ring_fence=True)
RULES = ChannelRules((Channel(DEFAULT), Channel("web", locations=("dc-*",)), MARKET))


def stocked(dc_1: int = 10, dc_2: int = 0, vectorized: bool = False) -> PartitionState:
    state = PartitionState(PartitionConfig(channels=RULES,
                                           vectorized_run_min=1 if vectorized else 10**9))
    apply_one(state, SetChannelRules(RULES.to_json()))
    for location, units in (("dc-1", dc_1), ("dc-2", dc_2)):
        if units:
                apply_one(state, move(f"seed-{location}", MT.RECEIPT, units, SKU, location))
    return state


def shown(*items: tuple[str, int], seq: int = 1, channel: str = "market") -> FenceShown:
    return FenceShown(channel, tuple(FenceItem(SKU, location, units)
                                     for location, units in items), seq)


def figure(state: PartitionState, channel: str, location: str = "dc-1") -> int:
    answer = apply_one(state, GetAvailability((ItemRef(SKU, location),), channel))
    return answer.items[0].available_to_sell


def fences(state: PartitionState, location: str = "dc-1") -> tuple[int, int]:
    book, row = state.channel_book, state.items.find(SKU, location)
    slot = book.fence_slot("market")
    return int(book.fence[row, slot]), int(book.shown[row, slot])


# ---- the rule --------------------------------------------------------------------------------


def load(tmp_path, text: str) -> ChannelRules:
    path = tmp_path / "channels.toml"
    path.write_text(text)
    return ChannelRules.load(path)


def test_ring_fence_rule_parses_and_survives_json(tmp_path):
    """A webhook channel may be ring-fenced with a hold; both travel through to_json."""
    rules = load(tmp_path, f"""
[[channels]]
name = "market"
publish = "webhook"
webhook_url = "{URL}"
cadence_s = 30
ring_fence = true
fence_hold_s = 90
""")
    market = rules.get("market")
    assert market.ring_fence and market.fence_hold_seconds == 90.0 and not market.plain
    assert ChannelRules.from_json(rules.to_json()) == rules


def test_fence_hold_defaults_to_the_velocity_lag_then_the_cadence():
    """Without fence_hold_s a feed's fence stands for the velocity lag, else one cadence."""
    publish = Publish(WEBHOOK, URL, 30.0)
    assert Channel("m", publish=publish, ring_fence=True).fence_hold_seconds == 30.0
    lagged = Channel("m", publish=publish, ring_fence=True, velocity=Velocity(lag_s=400.0))
    assert lagged.fence_hold_seconds == 400.0


@pytest.mark.parametrize(("settings", "named"), [
    ("ring_fence = true", "ring_fence: only with publish"),
    ('ring_fence = "yes"', "ring_fence: must be true or false"),
    ("fence_hold_s = 5", "fence_hold_s: only with ring_fence"),
    (f'publish = "webhook"\nwebhook_url = "{URL}"\nring_fence = true\nfence_hold_s = -1',
     "fence_hold_s: must be a number"),
])
def test_ring_fence_rule_errors_name_the_field(tmp_path, settings, named):
    """A stream channel cannot be fenced; a hold needs a fence and must be seconds."""
    with pytest.raises(ChannelError, match=named):
        load(tmp_path, f'[[channels]]\nname = "market"\n{settings}\n')


# ---- arithmetic ----------------------------------------------------------------------------


def test_other_channels_see_available_less_fences_and_the_fenced_channel_its_whole_figure():
    """10 at dc-1, 6 fenced for the marketplace: web and default see 4, the marketplace 10."""
    state = stocked()
    result = apply_one(state, shown(("dc-1", 6)))
    assert result.outcome is Outcome.OK and result.rows == 1
    assert fences(state) == (6, 6)
    assert figure(state, "web") == 4 and figure(state, "") == 4
    assert figure(state, "market") == 10


@pytest.mark.parametrize("vectorized", [True, False], ids=["numpy-run", "one-by-one"])
def test_web_and_default_reserves_cannot_take_fenced_units_but_the_marketplace_can(vectorized):
    """With 8 of 10 fenced, web gets no 3, default no 3 on either path; the marketplace gets
    its 8, and its fence is consumed by them."""
    state = stocked(vectorized=vectorized)
    apply_one(state, shown(("dc-1", 8)))
    web = apply_one(state, reserve("w", (SKU, "", 3), channel="web"))
    plain = apply_one(state, reserve("d", (SKU, "dc-1", 3)))
    assert web.status is plain.status is ReservationStatus.REJECTED
    assert apply_one(state, reserve("d2", (SKU, "dc-1", 2))).status is ReservationStatus.HELD
    market = apply_one(state, reserve("m", (SKU, "", 8), channel="market"))
    assert market.status is ReservationStatus.HELD and market.lines[0].location == "dc-1"
    assert fences(state) == (0, 0)
    assert state.quantities_of(SKU, "dc-1")["reserved"] == 10


def test_release_of_the_marketplaces_hold_does_not_restore_its_fence():
    """Units given back are everyone's again until the next publish fences them."""
    state = stocked()
    apply_one(state, shown(("dc-1", 5)))
    apply_one(state, reserve("m", (SKU, "dc-1", 3), channel="market"))
    assert fences(state) == (2, 2)
    apply_one(state, Release("res-m", "x"))
    assert fences(state) == (2, 2)
    assert figure(state, "web") == 8


def test_a_network_promise_is_sold_at_one_row_from_fences_at_several():
    """Shown 2 as 1 at each DC, the marketplace's order of 2 at dc-1 takes both fences."""
    state = stocked(dc_1=1, dc_2=1)
    apply_one(state, move("more", MT.RECEIPT, 1, SKU, "dc-1"))
    apply_one(state, shown(("dc-1", 1), ("dc-2", 1)))
    assert apply_one(state, reserve("m", (SKU, "", 2), channel="market")).status \
        is ReservationStatus.HELD
    assert fences(state) == (0, 0) and fences(state, "dc-2") == (0, 1)
    assert figure(state, "web", "dc-2") == 1


# ---- FenceShown and SettleFences ---------------------------------------------------------------


def test_a_lower_figure_keeps_the_old_fence_until_its_settle():
    """Shown 6 then 2: the fence stays 6 while the channel may act on 6, then settles to 2."""
    state = stocked()
    apply_one(state, shown(("dc-1", 6), seq=1))
    apply_one(state, shown(("dc-1", 2), seq=2))
    assert fences(state) == (6, 2)
    settled = apply_one(state, SettleFences("market", 2))
    assert (settled.rows, settled.skipped) == (1, False)
    assert fences(state) == (2, 2) and figure(state, "web") == 8


def test_a_settle_overtaken_by_a_later_publish_keeps_that_publish_covered():
    """Shown 6, 2, then 4: settling publish 1 or 2 keeps 4 fenced (publish 3 may not have
    been applied yet); settling publish 3 brings the fence to what was shown last."""
    state = stocked()
    for seq, units in ((1, 6), (2, 2), (3, 4)):
        apply_one(state, shown(("dc-1", units), seq=seq))
    apply_one(state, shown(("dc-1", 3), seq=4))
    first = apply_one(state, SettleFences("market", 2))
    assert first.skipped and fences(state) == (4, 3)
    apply_one(state, SettleFences("market", 4))
    assert fences(state) == (3, 3)


@pytest.mark.parametrize(("command", "named"), [
    (shown(("dc-1", 3), channel="nowhere"), "channel:"),
    (shown(("dc-1", 3), channel="web"), "not ring-fenced"),
    (shown(("dc-1", 3), ("dc-2", -1)), "items[1].units"),
    (shown(("dc-1", 3), ("dc-9", 1)), "items[1]: 'sku-1' at 'dc-9'"),
    (FenceShown("market", (FenceItem("", "dc-1", 1),), 1), "items[0].sku"),
    (shown(("dc-1", 3), ("dc-1", 2)), "items[1]: repeats"),
    (SettleFences("web", 1), "not ring-fenced"),
    (SettleFences("market", -1), "publish_seq"),
])
def test_bad_fence_commands_are_refused_naming_the_field_and_change_nothing(command, named):
    """Every fault is found before any row changes: fences, figures and holds stay as they were."""
    state = stocked(dc_2=5)
    apply_one(state, shown(("dc-1", 4), ("dc-2", 1), seq=1))
    before = (fences(state), fences(state, "dc-2"), list(state.channel_book.unsettled["market"]))
    result = apply_refused(state, command)
    assert result.outcome is Outcome.INVALID and named in result.message
    assert (fences(state), fences(state, "dc-2"),
            list(state.channel_book.unsettled["market"])) == before


def _fenced_history() -> list[tuple[list, int]]:
    return [([shown(("dc-1", 6), ("dc-2", 2), seq=1)], NOW + 1),
            ([reserve("m", (SKU, "dc-1", 1), channel="market")], NOW + 2),
            ([shown(("dc-1", 3), seq=2), SettleFences("market", 1)], NOW + 3),
            ([shown(("dc-2", 5), seq=3)], NOW + 4)]


def _fence_state(state: PartitionState) -> tuple:
    book, size = state.channel_book, state.items.size
    return (book.fence[:size].tolist(), book.shown[:size].tolist(),
            [(seq, sorted(rows.items())) for seq, rows in book.unsettled["market"]])


def test_snapshot_and_journal_replay_rebuild_the_same_fences():
    """Fences follow feeds, not holds: a snapshot carries them, and a journal replays them."""
    state = stocked(dc_2=5)
    start = snapshot.dump(state)
    entries, seq = [], state.seq
    for batch, now_ms in _fenced_history():
        state.apply(batch, now_ms)
        entries.append(journal.encode(batch, now_ms, seq + 1, state.seq))
        seq = state.seq
    assert _fence_state(state)[0] != [[0], [0]]
    restored = snapshot.load(snapshot.dump(state), PartitionConfig())
    assert _fence_state(restored) == _fence_state(state)
    replayed = snapshot.load(start, PartitionConfig())
    journal.replay(replayed, entries)
    assert _fence_state(replayed) == _fence_state(state)
    assert figure(replayed, "web", "dc-2") == figure(state, "web", "dc-2")


def test_rules_put_in_force_again_keep_the_fences_of_channels_still_fenced():
    """A restart's SetChannelRules keeps the marketplace's fences; unfenced, they are gone."""
    state = stocked()
    apply_one(state, shown(("dc-1", 6)))
    state.put_channel_rules(ChannelRules.from_json(RULES.to_json()))
    assert fences(state) == (6, 6)
    plain = ChannelRules((Channel(DEFAULT), Channel("web", locations=("dc-*",))))
    state.put_channel_rules(plain)
    assert figure(state, "web") == 10


# ---- the router ----------------------------------------------------------------------------


def routed() -> tuple[Router, list[PartitionHost]]:
    hosts = [PartitionHost(p, PartitionConfig(channels=RULES), clock_ms=lambda: NOW)
             for p in range(2)]
    return Router(LocalPartitions(hosts), GatewayConfig(channels=RULES),
                  clock_ms=lambda: NOW), hosts


async def test_router_fences_each_partitions_rows_and_settles_everywhere():
    """A FenceShown is split by SKU; a settle reaches every partition."""
    router, _ = routed()
    skus = [f"s-{n}" for n in range(6)]
    await router.apply_movements([move(f"in-{s}", MT.RECEIPT, 5, s, "dc-1") for s in skus])
    answer = await router.fence_channel(FenceShown(
        "market", tuple(FenceItem(s, "dc-1", 3) for s in skus), 1))
    assert answer.rows == 6
    web = await router.get_availability(GetAvailability(
        tuple(ItemRef(s, "dc-1") for s in skus), "web"))
    assert [item.available_to_sell for item in web.items] == [2] * 6
    await router.fence_channel(FenceShown("market", (FenceItem("s-0", "dc-1", 1),), 2))
    settled = await router.fence_channel(SettleFences("market", 2))
    assert settled.rows == 1 and not settled.skipped


async def test_router_refuses_an_unknown_item_before_any_partition_fences():
    """One unknown SKU-location refuses the whole call; no partition's fence moved."""
    router, hosts = routed()
    await router.apply_movements([move("in", MT.RECEIPT, 5, "s-1", "dc-1")])
    with pytest.raises(ValidationError, match=r"items\[1\]"):
        await router.fence_channel(FenceShown("market", (
            FenceItem("s-1", "dc-1", 3), FenceItem("s-2", "dc-1", 1)), 1))
    with pytest.raises(ValidationError, match="not ring-fenced"):
        await router.fence_channel(SettleFences("web", 1))
    assert all(not host.state.channel_book.fence.any() for host in hosts)


# ---- the publisher ---------------------------------------------------------------------------


class RecordingFences:
    """The engine's side as the publisher sees it, with a switch to fail."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []
        self.down = False

    async def shown(self, channel, items, publish_seq):
        if self.down:
            raise ConnectionError("gateway away")
        self.calls.append(("shown", channel, sorted(items), publish_seq))

    async def settle(self, channel, publish_seq):
        self.calls.append(("settle", channel, publish_seq))


def fenced_publisher(time: FakeTime, webhook: FakeWebhook,
                     fences: RecordingFences) -> ChannelPublisher:
    market = Channel("market", locations=("dc-*",), priority=("dc-2", "dc-*"),
                     publish=Publish(WEBHOOK, URL, 5.0, 1_000.0), ring_fence=True,
                     fence_hold_s=30.0)
    return ChannelPublisher(market, webhook, FakeStore(), clock_s=time.clock_s,
                            wall_ms=time.wall_ms, sleep=time.sleep, jitter=lambda: 0.5,
                            run_id="run", fences=fences)


async def test_publisher_fences_rows_before_posting_and_settles_after_the_hold():
    """Each row is fenced at the larger of its own figure and its part of the network figure
    (in priority order) before the POST; the settle follows fence_hold_s later."""
    time, webhook, fences = FakeTime(), FakeWebhook(FakeTime()), RecordingFences()
    publisher = fenced_publisher(time, webhook, fences)
    for sequence, (location, units) in enumerate((("dc-1", 4), ("dc-2", 3), ("", 7)), 1):
        publisher.offer(change(time, "A", units, sequence, location))
    await publisher.flush()
    ((kind, channel, items, publish_seq),) = fences.calls
    assert (kind, channel, items) == ("shown", "market", [("A", "dc-1", 4), ("A", "dc-2", 3)])
    assert len(webhook.posts) == 1
    assert await publisher.settle_due() == 0
    time.now_s += 30.0
    assert await publisher.settle_due() == 1
    assert fences.calls[-1] == ("settle", "market", publish_seq)


async def test_publisher_posts_nothing_it_could_not_fence():
    """The engine away: no POST, the figures wait, and the next flush fences and posts them."""
    time, webhook, fences = FakeTime(), FakeWebhook(FakeTime()), RecordingFences()
    publisher = fenced_publisher(time, webhook, fences)
    publisher.offer(change(time, "A", 5, 1, "dc-1"))
    fences.down = True
    assert await publisher.flush() == 0 and webhook.posts == []
    assert publisher.fence_failures == 1
    fences.down = False
    assert await publisher.flush() == 1 and len(webhook.posts) == 1


def test_a_ring_fenced_channels_publisher_needs_fences():
    """Without a way to fence, a ring-fenced channel's publisher refuses to start."""
    with pytest.raises(ValueError, match="ring-fenced"):
        ChannelPublisher(MARKET, FakeWebhook(FakeTime()), FakeStore(), clock_s=lambda: 0.0,
                         wall_ms=lambda: 0, sleep=None, jitter=lambda: 0.5, run_id="r")


# ---- review findings -----------------------------------------------------------------------


def test_marketplace_fence_does_not_let_it_reserve_outside_its_locations():
    """Its fences at the DCs do not make a store it does not sell from its to sell."""
    state = stocked()
    apply_one(state, move("store", MT.RECEIPT, 5, SKU, "store-1"))
    apply_one(state, shown(("dc-1", 6)))
    refused = apply_one(state, reserve("m", (SKU, "store-1", 3), channel="market"))
    assert refused.status is ReservationStatus.REJECTED
    assert state.quantities_of(SKU, "store-1")["reserved"] == 0 and fences(state) == (6, 6)


def test_a_fence_does_not_hide_exposure_from_a_plain_channel():
    """A row sold past zero reads negative for `default` whether or not a fence stands there."""
    state = stocked(dc_1=5)
    apply_one(state, shown(("dc-1", 2)))
    apply_one(state, move("pos-sale", MT.SALE, 8, SKU, "dc-1"))
    assert figure(state, "") == -3 and figure(state, "web") == 0


def _fenced_default(vectorized: bool) -> PartitionState:
    rules = ChannelRules((Channel(DEFAULT, publish=Publish(WEBHOOK, URL, 60.0, 100.0),
                                  ring_fence=True), Channel("pos")))
    state = PartitionState(PartitionConfig(channels=rules,
                                           vectorized_run_min=1 if vectorized else 10**9))
    apply_one(state, SetChannelRules(rules.to_json()))
    apply_one(state, move("seed", MT.RECEIPT, 10, SKU, "dc-1"))
    return state


@pytest.mark.parametrize("vectorized", [True, False], ids=["numpy-run", "one-by-one"])
def test_a_ring_fenced_default_channel_keeps_plain_channels_off_its_fence(vectorized):
    """`default` fenced (by its empty name or its own): a plain channel sees and takes only
    the rest, on either Reserve path."""
    state = _fenced_default(vectorized)
    result = apply_one(state, FenceShown("", (FenceItem(SKU, "dc-1", 8),), 1))
    assert result.outcome is Outcome.OK
    assert figure(state, "pos") == 2
    assert apply_one(state, reserve("p", (SKU, "dc-1", 3), channel="pos")).status \
        is ReservationStatus.REJECTED
    assert apply_one(state, SettleFences("", 1)).outcome is Outcome.OK


def test_a_backorder_filled_by_a_receipt_does_not_take_another_channels_fence():
    """web's backorder waits for stock beyond the marketplace's fence, so the marketplace
    can still sell all it was shown."""
    web = Channel("web", locations=("dc-*",), backorder_skus=("sku-*",), backorder_limit=10)
    rules = ChannelRules((Channel(DEFAULT), web, MARKET))
    state = PartitionState(PartitionConfig(channels=rules))
    apply_one(state, SetChannelRules(rules.to_json()))
    apply_one(state, move("seed", MT.RECEIPT, 5, SKU, "dc-1"))
    apply_one(state, move("po", MT.INBOUND_EXPECTED, 10, SKU, "dc-1"))
    apply_one(state, shown(("dc-1", 5)))
    backordered = apply_one(state, reserve("w", (SKU, "dc-1", 3), channel="web"))
    assert backordered.lines[0].backordered == 3
    apply_one(state, move("in-1", MT.RECEIPT, 2, SKU, "dc-1"))
    assert state.quantities_of(SKU, "dc-1")["reserved"] == 0
    assert apply_one(state, reserve("m", (SKU, "dc-1", 5), channel="market")).status \
        is ReservationStatus.HELD
    apply_one(state, move("in-2", MT.RECEIPT, 3, SKU, "dc-1"))
    assert state.quantities_of(SKU, "dc-1")["reserved"] == 8


def test_a_sale_that_takes_another_rows_fence_tells_that_rows_watchers():
    """The marketplace's network order at dc-1 frees its fence at dc-2: web's dc-2 figure
    rose, so a watcher of web hears of dc-2 too."""
    state = stocked(dc_1=2, dc_2=1)
    apply_one(state, shown(("dc-1", 1), ("dc-2", 1)))
    cursor = apply_one(state, WatchChanges(("web",)))
    assert figure(state, "web", "dc-2") == 0
    apply_one(state, reserve("m", (SKU, "dc-1", 2), channel="market"))
    answer = apply_one(state, WatchChanges(("web",), cursor.ring, cursor.total))
    assert ("dc-2", (1,)) in [(f.location, f.figures) for f in answer.figures]
