"""The ERP simulator's settings and their options, in one place; errors name the option."""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass, fields, replace

from loadtest.erp_faults import OutageWindow, parse_outage

# The command's port when none is given (the config's own default, 0, is any free port).
PORT_DEFAULT = 8080
# Latencies and delays beyond these are typos, not simulations.
LATENCY_MS_MAX = 60_000.0
ASYNC_APPLY_DELAY_MS_MAX = 86_400_000.0
# Settings `POST /_sim/config` may change while the simulator runs.
RUNTIME_FIELDS = ("rate_limit_rps", "rate_limit_burst", "latency_ms", "latency_jitter_ms",
                  "error_rate", "async_accept_ratio", "async_apply_delay_ms")
# Fields whose option is not their name with dashes.
_OPTIONS = {"db_path": "--db", "outages": "--outage"}


class SimulatorConfigError(ValueError):
    """A setting out of range; `field` is its name, the message names its option."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{option_of(field)} {problem}")
        self.field = field


def option_of(field: str) -> str:
    """The command-line option of a config field (`rate_limit_rps` -> `--rate-limit-rps`)."""
    return _OPTIONS.get(field) or "--" + field.replace("_", "-")


@dataclass(frozen=True)
class SimulatorConfig:
    host: str = "127.0.0.1"
    port: int = 0
    # ":memory:" keeps the ledger for this process only; a file keeps it across restarts.
    db_path: str = ":memory:"
    rate_limit_rps: float = 0.0  # 0: no limit
    # Requests allowed at once after a quiet spell; None: the rate rounded up, at least 1.
    rate_limit_burst: int | None = None
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    error_rate: float = 0.0
    seed: int = 0
    outages: tuple[OutageWindow, ...] = ()
    async_accept_ratio: float = 0.0
    async_apply_delay_ms: float = 1_000.0

    def __post_init__(self) -> None:
        _check(self)

    @property
    def burst(self) -> int:
        if self.rate_limit_burst is not None:
            return self.rate_limit_burst
        return max(1, math.ceil(self.rate_limit_rps))

    def with_runtime_changes(self, changes: dict) -> SimulatorConfig:
        """A copy with the settings `POST /_sim/config` names; JSON types checked too."""
        for name, value in changes.items():
            if name not in RUNTIME_FIELDS:
                raise SimulatorConfigError(name, "cannot be changed at runtime (only "
                                                 f"{', '.join(RUNTIME_FIELDS)})")
            if value is not None and (isinstance(value, bool)
                                      or not isinstance(value, int | float)):
                raise SimulatorConfigError(name, "must be a number")
        return replace(self, **changes)

    def runtime_settings(self) -> dict:
        return {field.name: getattr(self, field.name) for field in fields(self)
                if field.name in RUNTIME_FIELDS}


def _check(config: SimulatorConfig) -> None:
    if not config.host:
        raise SimulatorConfigError("host", "must not be empty")
    if not config.db_path:
        raise SimulatorConfigError("db_path", "must not be empty")
    _check_range("port", config.port, 0, 65_535, integer=True)
    _check_range("rate_limit_rps", config.rate_limit_rps, 0.0, math.inf)
    if config.rate_limit_burst is not None:
        _check_range("rate_limit_burst", config.rate_limit_burst, 1, 1_000_000, integer=True)
    _check_range("latency_ms", config.latency_ms, 0.0, LATENCY_MS_MAX)
    _check_range("latency_jitter_ms", config.latency_jitter_ms, 0.0, LATENCY_MS_MAX)
    _check_range("error_rate", config.error_rate, 0.0, 1.0)
    _check_range("async_accept_ratio", config.async_accept_ratio, 0.0, 1.0)
    _check_range("async_apply_delay_ms", config.async_apply_delay_ms, 0.0,
                 ASYNC_APPLY_DELAY_MS_MAX)
    if not isinstance(config.seed, int) or isinstance(config.seed, bool):
        raise SimulatorConfigError("seed", "must be an integer")
    for window in config.outages:
        if window.start_s < 0 or window.duration_s <= 0:
            raise SimulatorConfigError("outages", "START_S must be at least 0 and DURATION_S "
                                                 "above 0")


def _check_range(field: str, value, low: float, high: float, integer: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int if integer else int | float):
        raise SimulatorConfigError(field, f"must be {'an integer' if integer else 'a number'}")
    if not (math.isfinite(value) and low <= value <= high):
        bound = (f"between {_plain(low)} and {_plain(high)}" if math.isfinite(high)
                 else f"at least {_plain(low)}")
        raise SimulatorConfigError(field, f"must be {bound}, not {value}")


def _plain(number: float) -> str:
    """1000000 rather than 1e+06 in messages."""
    return str(int(number)) if float(number).is_integer() else str(number)


def build_parser(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the simulator's options to `parser` (the `availability sim erp` subcommand's)."""
    defaults = SimulatorConfig()
    parser.add_argument("--host", default=defaults.host,
                        help=f"address to listen on (default {defaults.host})")
    parser.add_argument("--port", type=int, default=PORT_DEFAULT,
                        help=f"port to listen on; 0 picks a free one (default {PORT_DEFAULT})")
    parser.add_argument("--db", dest="db_path", default=defaults.db_path, metavar="PATH",
                        help="SQLite file of the ledger and idempotency keys, kept across "
                             "restarts (default :memory:, this run only)")
    parser.add_argument("--rate-limit-rps", type=float, default=defaults.rate_limit_rps,
                        help="requests a second before 429 with Retry-After (default 0: none)")
    parser.add_argument("--rate-limit-burst", type=int, default=None,
                        help="requests allowed at once (default: the rate rounded up)")
    parser.add_argument("--latency-ms", type=float, default=defaults.latency_ms,
                        help="mean delay added to each request (default 0)")
    parser.add_argument("--latency-jitter-ms", type=float, default=defaults.latency_jitter_ms,
                        help="the delay is uniform within mean +- this (default 0)")
    parser.add_argument("--error-rate", type=float, default=defaults.error_rate,
                        help="fraction of requests answered 503 without effect (default 0)")
    parser.add_argument("--seed", type=int, default=defaults.seed,
                        help="seed of the latency, error and acceptance draws (default 0)")
    parser.add_argument("--outage", dest="outages", action="append", type=_outage_option,
                        default=[], metavar="START_S:DURATION_S",
                        help="answer every request 503 for DURATION_S seconds from START_S "
                             "seconds after start; repeatable")
    parser.add_argument("--async-accept-ratio", type=float,
                        default=defaults.async_accept_ratio,
                        help="fraction of adjustments answered 202 and applied later "
                             "(default 0)")
    parser.add_argument("--async-apply-delay-ms", type=float,
                        default=defaults.async_apply_delay_ms,
                        help="how much later an accepted batch is applied (default "
                             f"{defaults.async_apply_delay_ms:g})")
    return parser


def _outage_option(text: str):
    try:
        return parse_outage(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error).removeprefix("--outage: ")) from None


def config_from_args(args: argparse.Namespace) -> SimulatorConfig:
    """The parsed options as a config; SimulatorConfigError names a bad option."""
    return SimulatorConfig(
        host=args.host, port=args.port, db_path=args.db_path,
        rate_limit_rps=args.rate_limit_rps, rate_limit_burst=args.rate_limit_burst,
        latency_ms=args.latency_ms, latency_jitter_ms=args.latency_jitter_ms,
        error_rate=args.error_rate, seed=args.seed, outages=tuple(args.outages),
        async_accept_ratio=args.async_accept_ratio,
        async_apply_delay_ms=args.async_apply_delay_ms)
