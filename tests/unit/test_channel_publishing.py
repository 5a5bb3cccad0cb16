"""Publishing settings of a channels file: webhook, cadence, rate limit, velocity; validation."""

import pickle

import pytest

from engine.channel_publishing import WEBHOOK, Publish, Velocity
from engine.channels import ChannelError, ChannelRules

WEBHOOK_RULES = """
[[channels]]
name = "marketplace-a"
locations = ["dc-*"]
buffer = 2
publish = "webhook"
webhook_url = "http://127.0.0.1:9/feed"
cadence_s = 5
rate_limit_per_s = 2.5
velocity = { half_life_s = 30, lag_s = 120, max_units = 40, max_percent = "25%" }

[[channels]]
name = "web-feed"
publish = "webhook"
webhook_url = "https://example.com/q"

[[channels]]
name = "storefront"
"""


def load(tmp_path, text: str) -> ChannelRules:
    path = tmp_path / "channels.toml"
    path.write_text(text)
    return ChannelRules.load(path)


def test_publishing_settings_are_read_with_defaults(tmp_path):
    """A webhook channel gets its URL, cadence, rate and velocity; unset ones their defaults."""
    rules = load(tmp_path, WEBHOOK_RULES)
    market = rules.get("marketplace-a")
    assert market.publish == Publish(WEBHOOK, "http://127.0.0.1:9/feed", 5.0, 2.5)
    assert market.velocity == Velocity(half_life_s=30.0, lag_s=120.0, max_units=40,
                                       max_percent=25.0)
    feed = rules.get("web-feed")
    assert feed.publish.webhook and feed.publish.cadence_s == Publish.cadence_s
    assert feed.velocity is None
    assert not rules.get("storefront").publish.webhook


def test_publishing_settings_do_not_make_a_channel_non_plain(tmp_path):
    """Publishing and velocity change nothing the partition grants, so `plain` ignores them."""
    rules = load(tmp_path, WEBHOOK_RULES)
    assert rules.get("web-feed").plain
    assert not rules.get("marketplace-a").plain  # its buffer and group, not its webhook


def test_publishing_settings_survive_the_journal_and_pickling(tmp_path):
    """to_json/from_json and pickle give back equal rules, webhook and velocity included."""
    rules = load(tmp_path, WEBHOOK_RULES)
    again = ChannelRules.from_json(rules.to_json())
    assert again == rules
    assert again.get("marketplace-a").velocity == rules.get("marketplace-a").velocity
    assert again.get("marketplace-a").publish == rules.get("marketplace-a").publish
    assert pickle.loads(pickle.dumps(rules)) == rules


def test_rules_journaled_before_publishing_existed_still_load():
    """JSON without the publish and velocity keys (an older journal) reads as stream-only."""
    old = ('[{"name": "default", "locations": ["*"], "priority": [], '
           '"buffer": {"units": 0, "percent": 0.0}, "buffers": [], "share_percent": null, '
           '"borrow": false, "publish_min": 0}]')
    channel = ChannelRules.from_json(old).get("default")
    assert channel.publish == Publish() and channel.velocity is None


@pytest.mark.parametrize("settings, error", [
    ('publish = "email"', "publish: must be"),
    ('publish = "webhook"', "webhook_url: required"),
    ('publish = "webhook"\nwebhook_url = "ftp://x/y"', "webhook_url: must be an http"),
    ('publish = "webhook"\nwebhook_url = "http:///nohost"', "webhook_url: must be an http"),
    ('publish = "webhook"\nwebhook_url = 7', "webhook_url: must be an http"),
    ('webhook_url = "http://a/b"', 'webhook_url: only with publish = "webhook"'),
    ('cadence_s = 5', 'cadence_s: only with publish = "webhook"'),
    ('velocity = { max_units = 5 }', 'velocity: only with publish = "webhook"'),
    ('publish = "webhook"\nwebhook_url = "http://a/b"\ncadence_s = -1', "cadence_s: must be"),
    ('publish = "webhook"\nwebhook_url = "http://a/b"\ncadence_s = true', "cadence_s: must be"),
    ('publish = "webhook"\nwebhook_url = "http://a/b"\nrate_limit_per_s = 0',
     "rate_limit_per_s: must be a number, above 0"),
    ('publish = "webhook"\nwebhook_url = "http://a/b"\nrate_limit_per_s = inf',
     "rate_limit_per_s: must be"),
    ('publish = "webhook"\nwebhook_url = "http://a/b"\nvelocity = 3', "velocity: must be a table"),
    ('publish = "webhook"\nwebhook_url = "http://a/b"\nvelocity = { speed = 1 }',
     "velocity.speed: not a velocity setting"),
    ('publish = "webhook"\nwebhook_url = "http://a/b"\nvelocity = { half_life_s = 0 }',
     "velocity.half_life_s: must be a number, above 0"),
    ('publish = "webhook"\nwebhook_url = "http://a/b"\nvelocity = { lag_s = -2 }',
     "velocity.lag_s: must be"),
    ('publish = "webhook"\nwebhook_url = "http://a/b"\nvelocity = { max_units = 1.5 }',
     "velocity.max_units: must be a whole number"),
    ('publish = "webhook"\nwebhook_url = "http://a/b"\nvelocity = { max_percent = 30 }',
     "velocity.max_percent: must be a percentage"),
    ('publish = "webhook"\nwebhook_url = "http://a/b"\nvelocity = { max_percent = "130%" }',
     "velocity.max_percent: must be a percentage"),
])
def test_publishing_bad_settings_are_refused_naming_file_channel_and_key(tmp_path, settings,
                                                                         error):
    """Every broken publishing setting is refused with the file, channel and key in the message."""
    path = tmp_path / "channels.toml"
    path.write_text(f'[[channels]]\nname = "market"\n{settings}\n')
    with pytest.raises(ChannelError) as refused:
        ChannelRules.load(path)
    message = str(refused.value)
    assert str(path) in message and "[[channels]] market" in message and error in message
