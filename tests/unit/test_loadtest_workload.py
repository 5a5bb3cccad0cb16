"""The flash-sale workload: seeded, in arrival order, shaped by its curve, carts and outcomes."""

from __future__ import annotations

import pytest

from loadtest.workload import (
    SPIKE_AT,
    SPIKE_WIDTH,
    WorkloadError,
    WorkloadSpec,
    build_buyers,
    parse_cart_mix,
)


def test_build_buyers_is_the_same_for_the_same_seed_and_differs_for_another():
    """A run is reproducible: the same spec gives the same buyers, another seed others."""
    spec = WorkloadSpec(buyers=500, skus=5, duration_s=10)
    assert build_buyers(spec) == build_buyers(spec)
    assert build_buyers(spec) != build_buyers(WorkloadSpec(buyers=500, skus=5, duration_s=10,
                                                           seed=2))


def test_build_buyers_arrive_in_order_within_the_duration():
    """Every curve keeps arrivals sorted and inside [0, duration)."""
    for arrival in ("flat", "ramp", "spike"):
        buyers = build_buyers(WorkloadSpec(buyers=2_000, duration_s=20, arrival=arrival))
        times = [buyer.arrive_s for buyer in buyers]
        assert times == sorted(times)
        assert times[0] >= 0 and times[-1] < 20


def test_spike_puts_most_buyers_in_the_spike_window():
    """The spike brings at least half of the buyers within 10% of the run."""
    buyers = build_buyers(WorkloadSpec(buyers=10_000, duration_s=100, arrival="spike"))
    start_s, end_s = SPIKE_AT * 100, (SPIKE_AT + SPIKE_WIDTH) * 100
    inside = sum(start_s <= buyer.arrive_s < end_s for buyer in buyers)
    assert inside / len(buyers) > 0.6


def test_ramp_brings_more_buyers_in_the_second_half():
    """A linearly rising rate: three quarters of the buyers arrive in the second half."""
    buyers = build_buyers(WorkloadSpec(buyers=10_000, duration_s=10, arrival="ramp"))
    late = sum(buyer.arrive_s >= 5 for buyer in buyers) / len(buyers)
    assert late == pytest.approx(0.75, abs=0.03)


def test_cart_sizes_follow_the_mix_and_use_distinct_skus():
    """Units per cart follow the weights; a cart names each SKU once."""
    buyers = build_buyers(WorkloadSpec(buyers=10_000, skus=10, cart_mix=((1, 3), (4, 1))))
    fours = sum(buyer.units == 4 for buyer in buyers) / len(buyers)
    assert {buyer.units for buyer in buyers} == {1, 4}
    assert fours == pytest.approx(0.25, abs=0.03)
    assert all(len({sku for sku, _ in b.lines}) == len(b.lines) for b in buyers)


def test_a_single_hot_sku_takes_whole_carts_as_one_line():
    """With --skus 1 a cart of three units is one line of quantity three."""
    buyers = build_buyers(WorkloadSpec(buyers=100, skus=1, cart_mix=((3, 1),)))
    assert {buyer.lines for buyer in buyers} == {((0, 3),)}


def test_outcomes_follow_commit_ratio_and_abandonment():
    """Commit, release, expire and keep come in the shares the options set."""
    buyers = build_buyers(WorkloadSpec(buyers=20_000, commit_ratio=0.5, abandon_rate=0.4,
                                       abandon_release_share=0.25))
    share = {outcome: sum(b.outcome == outcome for b in buyers) / len(buyers)
             for outcome in ("commit", "release", "expire", "keep")}
    assert share["commit"] == pytest.approx(0.5, abs=0.02)
    assert share["release"] == pytest.approx(0.1, abs=0.02)
    assert share["expire"] == pytest.approx(0.3, abs=0.02)
    assert share["keep"] == pytest.approx(0.1, abs=0.02)


def test_parse_cart_mix_reads_sizes_and_weights():
    """'1:70,2:20' is sizes with weights; a bare size weighs 1."""
    assert parse_cart_mix("1:70, 2:20,5") == ((1, 70), (2, 20), (5, 1))


@pytest.mark.parametrize("text", ["", "x", "0:5", "2:0", "1:a"])
def test_parse_cart_mix_refuses_bad_input_naming_the_option(text):
    """A malformed mix is refused with an error that names --cart-mix."""
    with pytest.raises(WorkloadError, match="--cart-mix"):
        parse_cart_mix(text)


@pytest.mark.parametrize(("spec", "option"), [
    (WorkloadSpec(buyers=0), "--buyers"), (WorkloadSpec(skus=0), "--skus"),
    (WorkloadSpec(commit_ratio=0.8, abandon_rate=0.3), "--abandon-rate"),
    (WorkloadSpec(arrival="wave"), "--arrival"), (WorkloadSpec(hold_ttl_s=0), "--hold-ttl-s"),
])
def test_workload_check_names_the_option_out_of_range(spec, option):
    """Each setting out of range is refused naming its option."""
    with pytest.raises(WorkloadError, match=option):
        spec.check()
