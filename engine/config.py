"""Every tunable limit and window of the engine, in one place."""

from __future__ import annotations

from dataclasses import dataclass, field

HOUR_MS = 3_600_000


@dataclass(frozen=True)
class RequestLimits:
    """What one request may carry (DESIGN section 5's defaults)."""

    lines_per_request_max: int = 500
    movements_per_request_max: int = 1_000
    items_per_query_max: int = 1_000
    # An explained item scans the partition's ring of latest changes: fewer per query.
    explained_items_max: int = 50
    quantity_max: int = 1_000_000_000
    ttl_seconds_max: int = 86_400
    identifier_bytes_max: int = 128


@dataclass(frozen=True)
class PartitionConfig:
    """How one partition keeps its tables; every table has a bound."""

    hold_ttl_seconds_default: int = 900
    idempotency_window_ms: int = 24 * HOUR_MS
    # Beyond this many remembered keys the oldest are forgotten early.
    idempotency_keys_max: int = 4_000_000
    # Released, expired and shipped reservations stay answerable this long.
    finished_reservations_window_ms: int = 24 * HOUR_MS
    finished_reservations_max: int = 2_000_000
    # SKU-locations one partition may hold; movements naming new ones past it are refused.
    items_max: int = 20_000_000
    # Ring of on-hand movements kept so a late CYCLE_COUNT can re-apply what came after it.
    movement_history_entries: int = 1 << 18
    # How far a source's clock may run ahead of ours; bounds the history a count must see.
    clock_skew_ms_max: int = 5 * 60_000
    # Latest changes kept over all SKU-locations, for explaining a figure.
    item_ledger_entries: int = 1 << 16
    # Runs of at least this many single-line Reserves are applied with numpy; shorter ones
    # one at a time, where numpy's fixed cost per call would outweigh its gain.
    vectorized_run_min: int = 16


@dataclass(frozen=True)
class DurabilityConfig:
    """Where partitions journal and snapshot, and how often they snapshot."""

    # None: the embedded Redis (serve and demo start it).
    redis_url: str | None = None
    # False only in benchmarks, to measure what the journal costs: nothing is durable.
    journal: bool = True
    # Keys are `<key_prefix>:partition:<n>:...`; engines sharing a Redis differ here.
    key_prefix: str = "availability"
    # A snapshot is taken after this many commands or this long, whichever comes first
    # (and only if something changed); recovery replays at most about that much journal.
    snapshot_every_commands: int = 100_000
    snapshot_interval_s: float = 300.0
    # A batch whose journal write takes longer is answered UNAVAILABLE.
    write_timeout_s: float = 5.0


@dataclass(frozen=True)
class LaneLimits:
    """Bounds of the gateway's coalescing lane in front of one partition."""

    # Most commands in one call; the rest of the queue waits for the next round.
    batch_commands_max: int = 1_000
    # Most commands waiting behind the calls in flight; beyond it callers are refused.
    queue_commands_max: int = 10_000
    # Calls in flight at once: with two, the partition applies one batch while the
    # other's journal write is in flight.
    batches_in_flight_max: int = 2


@dataclass(frozen=True)
class GatewayConfig:
    """How a gateway routes, coalesces and bounds what it is sent."""

    lanes: LaneLimits = field(default_factory=LaneLimits)
    requests: RequestLimits = field(default_factory=RequestLimits)
    # Most commands one Batch RPC may carry.
    batch_commands_max: int = 1_000
    # Most RPCs a gateway process runs at once; gRPC refuses more with RESOURCE_EXHAUSTED.
    concurrent_rpcs_max: int = 20_000
    # The hold lifetime a Reserve with ttl_seconds 0 gets (the partitions' default).
    hold_ttl_seconds_default: int = PartitionConfig.hold_ttl_seconds_default
    # Parts of a cart that spans partitions are held this long until the gateway confirms
    # them all; a gateway that dies between the two phases leaves holds that lapse after
    # this plus one sweep of the partitions.
    cart_tentative_ttl_s: int = 5
    # Fault injection for tests: a pause between a cart's two phases.
    cart_confirm_delay_s: float = 0.0


@dataclass(frozen=True)
class ErpSyncConfig:
    """How the sync job drains the journals into the ERP, and how gently it treats the ERP."""

    # Sources whose movements the ERP made itself: never sent back to it.
    erp_sources: tuple[str, ...] = ("erp",)
    # Changes are summed per SKU-location over this long before they are posted.
    window_s: float = 1.0
    # Lines per POST; the generic contract's simulator accepts up to 1,000.
    batch_lines_max: int = 500
    # SKU-locations one window may hold; past it the window closes early (bounded memory).
    plan_lines_max: int = 50_000
    # Journal entries read per Redis call.
    read_entries_max: int = 500
    # POSTs in flight at once.
    in_flight_max: int = 4
    request_timeout_s: float = 10.0
    # Retry delays: full jitter over base * 2**attempt, capped.
    backoff_base_s: float = 0.2
    backoff_cap_s: float = 30.0
    # The breaker opens after this many failures in a row, and probes after recovery_s.
    breaker_failures_max: int = 5
    breaker_recovery_s: float = 5.0
    # How long an idle job waits before looking at the journals again.
    idle_poll_s: float = 0.2
    key_prefix: str = "availability"
