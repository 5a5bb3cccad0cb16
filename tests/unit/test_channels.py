"""Channel rules: location groups, buffers, quotas with and without borrowing, thresholds."""

import pytest

from engine.channels import (
    DEFAULT,
    Buffer,
    Channel,
    ChannelError,
    ChannelRules,
    channel_available,
)

RULES = """
[[channels]]
name = "storefront"
locations = ["dc-*", "store-012"]
priority = ["store-012", "dc-east"]
buffer = 2
buffers = { "store-*" = "25%" }

[[channels]]
name = "marketplace-a"
locations = ["dc-*"]
share = "20%"
publish_min = 3

[[channels]]
name = "marketplace-b"
locations = ["dc-*"]
share = "30%"
borrow = true
"""


@pytest.fixture
def rules(tmp_path) -> ChannelRules:
    path = tmp_path / "channels.toml"
    path.write_text(RULES)
    return ChannelRules.load(path)


def test_rules_location_group_matches_names_and_patterns(rules):
    """A channel sells from the locations its patterns name, and nowhere else."""
    storefront = rules.get("storefront")
    assert storefront.sells_at("dc-east") and storefront.sells_at("store-012")
    assert not storefront.sells_at("store-013")


def test_rules_priority_orders_reserve_anywhere_then_by_name(rules):
    """Reserve-anywhere tries the priority list first, then the rest of the group."""
    order = rules.get("storefront").in_priority(["dc-west", "store-013", "dc-east",
                                                 "store-012", "dc-north"])
    assert order == ["store-012", "dc-east", "dc-north", "dc-west"]


def test_rules_buffers_absolute_and_percent_per_location(rules):
    """A location pattern's buffer overrides the default; a percentage rounds up."""
    storefront = rules.get("storefront")
    assert storefront.buffer_at("dc-east").of(40) == 2
    assert storefront.buffer_at("store-012").of(10) == 3  # 25% of 10, rounded up


def test_rules_empty_name_is_default_and_unknown_is_refused(tmp_path, rules):
    """Without a file, `default` sells everywhere; an unknown channel is refused by name."""
    assert ChannelRules().get("") == Channel(DEFAULT)
    with pytest.raises(KeyError, match="'web'"):
        rules.get("web")


def test_rules_cap_with_and_without_borrowing(rules):
    """A quota caps at its share; borrowing adds the share no channel there claims."""
    assert rules.cap_percent(rules.get("marketplace-a"), "dc-east") == 20
    assert rules.cap_percent(rules.get("marketplace-b"), "dc-east") == 30 + 50
    assert rules.cap_percent(rules.get("storefront"), "dc-east") is None


@pytest.mark.parametrize("settings, error", [
    ('name = "x"\nshare = "120%"', "share"),
    ('name = "x"\nbuffer = -1', "buffer"),
    ('name = "x"\nbuffer = "ten%"', "buffer"),
    ('name = "x"\nlocations = "dc-1"', "locations"),
    ('name = "x"\nborrow = "yes"', "borrow"),
    ('name = "x"\ncolour = "red"', "colour"),
    ('name = ""', "name"),
])
def test_rules_bad_file_is_refused_naming_the_key(tmp_path, settings, error):
    """Each broken setting is refused with the channel and the key named."""
    path = tmp_path / "channels.toml"
    path.write_text(f"[[channels]]\n{settings}\n")
    with pytest.raises(ChannelError, match=error):
        ChannelRules.load(path)


def test_rules_duplicate_channel_is_refused(tmp_path):
    """Two tables with one name are refused."""
    path = tmp_path / "channels.toml"
    path.write_text('[[channels]]\nname = "x"\n[[channels]]\nname = "x"\n')
    with pytest.raises(ChannelError, match="twice"):
        ChannelRules.load(path)


@pytest.mark.parametrize("available, buffer, cap, held, publish_min, expected", [
    (10, 0, None, 0, 0, 10),   # no rules: the location's figure
    (10, 2, None, 0, 0, 8),    # a buffer is held back
    (1, 2, None, 0, 0, 0),     # never below zero
    (100, 0, 20.0, 0, 0, 20),  # a 20% quota of an untouched location
    (90, 0, 20.0, 10, 0, 10),  # its own holds count against it: 20% of 100, 10 used
    (80, 0, 20.0, 20, 0, 0),   # quota used up
    (100, 5, 20.0, 0, 0, 20),  # the smaller of buffer and quota wins
    (4, 0, None, 0, 5, 0),     # below the publish threshold: 0
    (5, 0, None, 0, 5, 5),     # at the threshold: shown
])
def test_channel_available_arithmetic(available, buffer, cap, held, publish_min, expected):
    """Buffer, quota (counting the channel's own holds) and threshold, in that order."""
    assert channel_available(available, buffer, cap, held, publish_min) == expected


def test_buffer_percent_of_nothing_is_nothing():
    """A percentage buffer of zero or negative stock holds nothing back."""
    assert Buffer(percent=10).of(0) == 0 and Buffer(percent=10).of(-5) == 0
