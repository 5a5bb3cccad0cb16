"""Channel rules (`--channels FILE`): where each channel sells from, and how much it may show.

    [[channels]]
    name = "marketplace-a"
    locations = ["dc-*"]          # the location group, as patterns; "*" is every location
    priority = ["dc-east", "dc-*"] # reserve-anywhere order (default: the group's order)
    buffer = 2                    # per location: units, or "10%" of its available-to-sell
    buffers = { "dc-west" = "25%" }
    share = "20%"                 # at most this share of a location's stock (a quota)
    borrow = false                # with borrow, also the share no channel has claimed
    publish_min = 3               # below this, the channel is shown (and sells) 0
    backorder_skus = ["pre-*"]    # may hold these beyond available-to-sell, as backorders,
    backorder_limit = 100         #   up to this many units per location (and its incoming)
    ring_fence = true             # webhook channels: what it was shown is not sold elsewhere
    fence_hold_s = 600            #   until this long after each feed (default: velocity
                                  #   lag_s, else cadence_s)

Without a file there is one channel, `default`: every location, no buffer, no quota.
The arithmetic is pure, so a partition applies it where the numbers are.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from engine.channel_publishing import (
    PUBLISHING_KEYS,
    SECONDS_MAX,
    UNITS_MAX,
    Publish,
    PublishingError,
    Velocity,
    is_units,
    parse_publishing,
    percent_of,
    publishing_from_json,
)

DEFAULT = "default"
CHANNELS_MAX = 64
PATTERNS_MAX = 1_000
_KEYS = {"name", "locations", "priority", "buffer", "buffers", "share", "borrow",
         "publish_min", "backorder_skus", "backorder_limit", "ring_fence", "fence_hold_s"}


class ChannelError(ValueError):
    """A channels file that breaks a rule; the message names the file, channel and key."""


@dataclass(frozen=True)
class Buffer:
    """Units held back at a location: a count, or a percentage of its available-to-sell."""

    units: int = 0
    percent: float = 0.0

    def of(self, available: int) -> int:
        if self.percent:
            return math.ceil(max(available, 0) * self.percent / 100)
        return self.units


@dataclass(frozen=True)
class Channel:
    name: str
    locations: tuple[str, ...] = ("*",)
    priority: tuple[str, ...] = ()
    buffer: Buffer = Buffer()
    buffers: tuple[tuple[str, Buffer], ...] = ()
    share_percent: float | None = None
    borrow: bool = False
    publish_min: int = 0
    # SKUs (patterns) this channel may backorder, at most this many units per location,
    # and never more than the location's incoming stock.
    backorder_skus: tuple[str, ...] = ()
    backorder_limit: int = 0
    # How the channel hears its figures (engine/channel_publishing.py): the publisher's
    # business, not the partition's, so neither counts against `plain`.
    publish: Publish = Publish()
    velocity: Velocity | None = None
    # Units published to the channel stay fenced from every other channel until it has had
    # `fence_hold_s` to apply the feed (engine/channel_book.py keeps the fences).
    ring_fence: bool = False
    fence_hold_s: float | None = None

    @property
    def fence_hold_seconds(self) -> float:
        """How long a feed's fence stands: the rule, else the velocity lag, else the cadence."""
        if self.fence_hold_s is not None:
            return self.fence_hold_s
        if self.velocity is not None and self.velocity.lag_s is not None:
            return self.velocity.lag_s
        return self.publish.cadence_s

    def backorders(self, sku: str) -> bool:
        return bool(self.backorder_limit) and any(
            fnmatch.fnmatchcase(sku, pattern) for pattern in self.backorder_skus)

    @property
    def plain(self) -> bool:
        """Sells every location's whole available-to-sell: no group, buffer, quota, floor or
        fence of its own (a fenced channel's sales consume its fence)."""
        return (self.locations == ("*",) and self.buffer == Buffer() and not self.buffers
                and self.share_percent is None and not self.publish_min
                and not self.backorder_limit and not self.ring_fence)

    def sells_at(self, location: str) -> bool:
        return any(fnmatch.fnmatchcase(location, pattern) for pattern in self.locations)

    def buffer_at(self, location: str) -> Buffer:
        for pattern, buffer in self.buffers:
            if fnmatch.fnmatchcase(location, pattern):
                return buffer
        return self.buffer

    def in_priority(self, locations: list[str]) -> list[str]:
        """The group's locations among `locations`, in reserve-anywhere order."""
        order = self.priority or self.locations
        mine = [location for location in locations if self.sells_at(location)]
        return sorted(mine, key=lambda location: (_first_match(order, location), location))


def _first_match(patterns: tuple[str, ...], location: str) -> int:
    return next((rank for rank, pattern in enumerate(patterns)
                 if fnmatch.fnmatchcase(location, pattern)), len(patterns))


@dataclass(frozen=True)
class ChannelRules:
    """Every channel by name; an empty name means `default`.

    A tuple, not a mapping proxy, so the rules pickle and travel to partition actors.
    """

    channels: tuple[Channel, ...] = (Channel(DEFAULT),)
    _by_name: dict[str, Channel] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", {channel.name: channel for channel in self.channels})

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._by_name)

    def get(self, name: str) -> Channel:
        """The channel called `name` ("" is `default`); KeyError naming it if unknown."""
        channel = self._by_name.get(name or DEFAULT)
        if channel is None:
            raise KeyError(f"channel: {name!r} is not a configured channel "
                           f"({', '.join(sorted(self._by_name))})")
        return channel

    def to_json(self) -> str:
        """The rules as JSON, as a partition journals them."""
        return json.dumps([dataclasses.asdict(channel) for channel in self.channels])

    @classmethod
    def from_json(cls, text: str) -> ChannelRules:
        return cls(tuple(
            Channel(**{**fields, "locations": tuple(fields["locations"]),
                       "priority": tuple(fields["priority"]),
                       "backorder_skus": tuple(fields.get("backorder_skus", ())),
                       "buffer": Buffer(**fields["buffer"]),
                       "buffers": tuple((pattern, Buffer(**buffer))
                                        for pattern, buffer in fields["buffers"]),
                       **publishing_from_json(fields)})
            for fields in json.loads(text)))

    def knows(self, name: str) -> bool:
        return (name or DEFAULT) in self._by_name

    def cap_percent(self, channel: Channel, location: str) -> float | None:
        """The most of a location's stock the channel may hold, as a percentage; None: no cap.

        With borrowing, a channel may also take the share no channel selling there claims.
        """
        if channel.share_percent is None:
            return None
        if not channel.borrow:
            return channel.share_percent
        claimed = sum(other.share_percent for other in self.channels
                      if other.share_percent is not None and other.sells_at(location))
        return min(100.0, channel.share_percent + max(0.0, 100.0 - claimed))

    @classmethod
    def load(cls, path: str | Path) -> ChannelRules:
        """The rules of a channels file; `default` (every location, no buffer) is added
        when the file does not declare it, so callers that name no channel still sell."""
        path = Path(path)
        try:
            document = tomllib.loads(path.read_text())
        except (OSError, tomllib.TOMLDecodeError) as error:
            raise ChannelError(f"{path}: {error}") from error
        tables = document.get("channels")
        if not isinstance(tables, list) or not tables:
            raise ChannelError(f"{path}: needs at least one [[channels]] table")
        if len(tables) > CHANNELS_MAX:
            raise ChannelError(f"{path}: at most {CHANNELS_MAX} channels")
        channels: dict[str, Channel] = {}
        for number, table in enumerate(tables):
            channel = _channel(path, number, table)
            if channel.name in channels:
                raise ChannelError(f"{path}: channel {channel.name!r} is declared twice")
            channels[channel.name] = channel
        channels.setdefault(DEFAULT, Channel(DEFAULT))
        return cls(tuple(channels.values()))


def _channel(path: Path, number: int, table: dict) -> Channel:
    name = table.get("name")
    where = f"{path}: [[channels]] {name or f'#{number + 1}'}"
    if not isinstance(name, str) or not name or len(name.encode()) > 128:
        raise ChannelError(f"{where}: name: must be 1..128 bytes of text")
    unknown = set(table) - _KEYS - PUBLISHING_KEYS
    if unknown:
        raise ChannelError(f"{where}: {sorted(unknown)[0]}: not a channel setting")
    share = table.get("share")
    try:
        publish, velocity = parse_publishing(table)
    except PublishingError as error:
        raise ChannelError(f"{where}: {error}") from None
    ring_fence, fence_hold_s = _fence(where, table, publish)
    return Channel(
        name=name,
        locations=_patterns(where, "locations", table.get("locations", ["*"])),
        priority=_patterns(where, "priority", table.get("priority", [])),
        buffer=_buffer(where, "buffer", table.get("buffer", 0)),
        buffers=tuple((pattern, _buffer(where, f"buffers.{pattern}", value))
                      for pattern, value in _table(where, "buffers",
                                                   table.get("buffers", {})).items()),
        share_percent=None if share is None else _percent(where, "share", share),
        borrow=_bool(where, "borrow", table.get("borrow", False)),
        publish_min=_count(where, "publish_min", table.get("publish_min", 0)),
        backorder_skus=_patterns(where, "backorder_skus", table.get("backorder_skus", [])),
        backorder_limit=_count(where, "backorder_limit", table.get("backorder_limit", 0)),
        publish=publish, velocity=velocity, ring_fence=ring_fence, fence_hold_s=fence_hold_s)


def _fence(where: str, table: dict, publish: Publish) -> tuple[bool, float | None]:
    """ring_fence and fence_hold_s: a fence is raised as a feed goes out, so only a channel
    the publisher pushes to can have one."""
    ring_fence = _bool(where, "ring_fence", table.get("ring_fence", False))
    if ring_fence and not publish.webhook:
        raise ChannelError(f'{where}: ring_fence: only with publish = "webhook" (a fence is '
                           "raised as the publisher sends a feed)")
    if "fence_hold_s" not in table:
        return ring_fence, None
    if not ring_fence:
        raise ChannelError(f"{where}: fence_hold_s: only with ring_fence = true")
    value = table["fence_hold_s"]
    if not (isinstance(value, int | float) and not isinstance(value, bool)
            and math.isfinite(value) and 0 <= value <= SECONDS_MAX):
        raise ChannelError(f"{where}: fence_hold_s: must be a number of seconds, "
                           f"0 up to {SECONDS_MAX:g}")
    return ring_fence, float(value)


def _patterns(where: str, key: str, value) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(p, str) and p for p in value) \
            or len(value) > PATTERNS_MAX:
        raise ChannelError(f"{where}: {key}: must be a list of location names or patterns")
    return tuple(value)


def _table(where: str, key: str, value) -> dict:
    if not isinstance(value, dict) or len(value) > PATTERNS_MAX:
        raise ChannelError(f"{where}: {key}: must be a table of location = buffer")
    return value


def _buffer(where: str, key: str, value) -> Buffer:
    if isinstance(value, str):
        return Buffer(percent=_percent(where, key, value))
    return Buffer(units=_count(where, key, value))


def _percent(where: str, key: str, value) -> float:
    percent = percent_of(value)
    if percent is None:
        raise ChannelError(f"{where}: {key}: must be a percentage such as \"20%\" (0..100)")
    return percent


def _count(where: str, key: str, value) -> int:
    if not is_units(value):
        raise ChannelError(f"{where}: {key}: must be a whole number of units, 0..{UNITS_MAX}")
    return value


def _bool(where: str, key: str, value) -> bool:
    if type(value) is not bool:
        raise ChannelError(f"{where}: {key}: must be true or false")
    return value


def channel_available(available: int, buffer_units: int, cap_percent: float | None,
                      held_by_channel: int, publish_min: int) -> int:
    """What a channel may sell (and is shown) at one location.

    `available` is the location's available-to-sell; the channel's own holds and orders
    there (`held_by_channel`) count against its cap, which is a share of what is sellable
    plus what it already holds. Below `publish_min` it is 0.
    """
    figure = available - buffer_units
    if cap_percent is not None:
        allowance = math.floor((available + held_by_channel) * cap_percent / 100)
        figure = min(figure, allowance - held_by_channel)
    figure = max(figure, 0)
    return figure if figure >= publish_min else 0
