"""How a channel hears its figures: the watch stream, or a webhook the publisher pushes to.

    [[channels]]
    name = "marketplace-a"
    publish = "webhook"            # default "stream": consumers watch WatchAvailability
    webhook_url = "https://marketplace.example/feeds/quantity"
    cadence_s = 60                 # coalescing window: at most one flush per window
    rate_limit_per_s = 2           # POSTs per second, retries included
    velocity = { half_life_s = 60, lag_s = 300, max_units = 50, max_percent = "30%" }

`velocity` (off unless set, webhook channels only) holds back an extra buffer of a
fast-selling figure: its sell rate times the channel's publish lag (`lag_s`, else the
measured lag), at most `max_units` and `max_percent` of the figure. None of this changes
what the partition grants, so it never makes a channel non-plain.
"""

from __future__ import annotations

import math
import urllib.parse
from dataclasses import dataclass

STREAM, WEBHOOK = "stream", "webhook"
WEBHOOK_KEYS = frozenset({"webhook_url", "cadence_s", "rate_limit_per_s"})
PUBLISHING_KEYS = frozenset({"publish", "velocity"}) | WEBHOOK_KEYS
_VELOCITY_KEYS = frozenset({"half_life_s", "lag_s", "max_units", "max_percent"})
URL_CHARS_MAX = 2_048
SECONDS_MAX = 86_400.0
RATE_PER_S_MAX = 10_000.0
UNITS_MAX = 1_000_000_000


class PublishingError(ValueError):
    """A publishing setting that breaks a rule; the message starts with the key."""


@dataclass(frozen=True)
class Publish:
    """Stream only, or a webhook with its coalescing window and request rate."""

    mode: str = STREAM
    webhook_url: str = ""
    cadence_s: float = 1.0
    rate_limit_per_s: float = 10.0

    @property
    def webhook(self) -> bool:
        return self.mode == WEBHOOK


@dataclass(frozen=True)
class Velocity:
    """The extra buffer of a fast-selling figure: rate × lag, bounded."""

    half_life_s: float = 60.0
    lag_s: float | None = None  # None: the channel's measured publish lag
    max_units: int = 50
    max_percent: float = 30.0


def parse_publishing(table: dict) -> tuple[Publish, Velocity | None]:
    """The publishing settings of one [[channels]] table; PublishingError naming the key."""
    mode = table.get("publish", STREAM)
    if mode not in (STREAM, WEBHOOK):
        raise PublishingError(f'publish: must be "{STREAM}" or "{WEBHOOK}"')
    if mode == STREAM:
        stray = sorted(set(table) & (WEBHOOK_KEYS | {"velocity"}))
        if stray:
            # The publisher applies velocity; a stream consumer sees the partition's figure.
            raise PublishingError(f'{stray[0]}: only with publish = "{WEBHOOK}"')
        return Publish(), None
    if "webhook_url" not in table:
        raise PublishingError(f'webhook_url: required with publish = "{WEBHOOK}"')
    publish = Publish(
        mode=WEBHOOK, webhook_url=_url("webhook_url", table["webhook_url"]),
        cadence_s=_seconds("cadence_s", table.get("cadence_s", Publish.cadence_s), zero=True),
        rate_limit_per_s=_number("rate_limit_per_s",
                                 table.get("rate_limit_per_s", Publish.rate_limit_per_s),
                                 RATE_PER_S_MAX, zero=False))
    velocity = table.get("velocity")
    return publish, None if velocity is None else _velocity(velocity)


def publishing_from_json(fields: dict) -> dict:
    """Channel keyword arguments from `dataclasses.asdict` output, as journaled."""
    velocity = fields.get("velocity")
    return {"publish": Publish(**fields.get("publish") or {}),
            "velocity": None if velocity is None else Velocity(**velocity)}


def _velocity(value) -> Velocity:
    if not isinstance(value, dict):
        raise PublishingError("velocity: must be a table such as "
                              '{ half_life_s = 60, max_units = 50, max_percent = "30%" }')
    unknown = sorted(set(value) - _VELOCITY_KEYS)
    if unknown:
        raise PublishingError(f"velocity.{unknown[0]}: not a velocity setting "
                              f"({', '.join(sorted(_VELOCITY_KEYS))})")
    lag = value.get("lag_s")
    return Velocity(
        half_life_s=_seconds("velocity.half_life_s",
                             value.get("half_life_s", Velocity.half_life_s), zero=False),
        lag_s=None if lag is None else _seconds("velocity.lag_s", lag, zero=True),
        max_units=_units("velocity.max_units", value.get("max_units", Velocity.max_units)),
        max_percent=_percent("velocity.max_percent",
                             value.get("max_percent", f"{Velocity.max_percent:g}%")))


def _url(key: str, value) -> str:
    parts = urllib.parse.urlsplit(value) if isinstance(value, str) else None
    if (parts is None or parts.scheme not in ("http", "https") or not parts.hostname
            or len(value) > URL_CHARS_MAX):
        raise PublishingError(f"{key}: must be an http:// or https:// URL with a host")
    return value


def _number(key: str, value, most: float, zero: bool) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) \
        and math.isfinite(value) and (value >= 0 if zero else value > 0) and value <= most
    if not ok:
        low = "0" if zero else "above 0"
        raise PublishingError(f"{key}: must be a number, {low} up to {most:g}")
    return float(value)


def _seconds(key: str, value, zero: bool) -> float:
    return _number(key, value, SECONDS_MAX, zero)


def _units(key: str, value) -> int:
    if not is_units(value):
        raise PublishingError(f"{key}: must be a whole number of units, 0..{UNITS_MAX}")
    return value


def _percent(key: str, value) -> float:
    percent = percent_of(value)
    if percent is None:
        raise PublishingError(f'{key}: must be a percentage such as "30%" (0..100)')
    return percent


def is_units(value) -> bool:
    """Whether a TOML value is a whole number of units, 0..UNITS_MAX (a bool is not)."""
    return type(value) is int and 0 <= value <= UNITS_MAX


def percent_of(value) -> float | None:
    """`"30%"` as 30.0; None unless the value is text of a number 0..100 ending in %."""
    text = value[:-1] if isinstance(value, str) and value.endswith("%") else None
    try:
        percent = float(text) if text is not None else math.nan
    except ValueError:
        percent = math.nan
    return percent if 0 <= percent <= 100 else None
