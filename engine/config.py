"""Every tunable limit and window of the engine, in one place."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from engine.channels import ChannelRules

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
    # Figures one FenceShown may carry; a publisher sends a bigger feed's in several.
    fence_items_per_request_max: int = 1_000


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
    # The rules a (re)started partition puts in force; the rules of its history are in
    # its journal (SetChannelRules), so they are not among the tunables below.
    channels: ChannelRules = field(default_factory=ChannelRules)

    def tunables(self) -> dict:
        """The fields that tune how the state machine keeps its tables, as plain values."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "channels"}


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
class TransportLimits:
    """What one connection, message and token may cost a gateway before any handler runs."""

    # gRPC refuses a bigger request (RESOURCE_EXHAUSTED) from its length prefix, before
    # reading it. 1,000 movements of nine 128-byte identifiers fit in about 1.3 MB.
    receive_message_bytes_max: int = 4 * 1024 * 1024
    # HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS: calls in flight on one connection. A client
    # that opens more before it has read the server's settings gets the excess refused
    # (UNAVAILABLE, never applied), so the default leaves room for a busy checkout service.
    concurrent_streams_per_connection_max: int = 10_000
    # All metadata of one call (the bearer token, correlation id, gRPC's own headers).
    metadata_bytes_max: int = 16 * 1024
    # A connection that has not finished its TLS handshake by then is closed.
    handshake_timeout_ms: int = 10_000
    # Each token's token bucket: calls per second, and how many it may spend at once
    # (0 calls per second: no limit). A token may set its own in the tokens file.
    token_calls_per_s: float = 10_000.0
    token_burst_calls: int = 20_000


@dataclass(frozen=True)
class GatewayConfig:
    """How a gateway routes, coalesces and bounds what it is sent."""

    lanes: LaneLimits = field(default_factory=LaneLimits)
    requests: RequestLimits = field(default_factory=RequestLimits)
    transport: TransportLimits = field(default_factory=TransportLimits)
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
    # Channels a request may name (`--channels FILE`); the partitions enforce the same rules.
    channels: ChannelRules = field(default_factory=ChannelRules)
    # How often the watch hub asks each partition what changed, while anyone watches.
    watch_poll_interval_s: float = 0.05
    # Updates kept per channel so a watcher that reconnects can resume without a snapshot.
    watch_history_updates: int = 100_000


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


@dataclass(frozen=True)
class PublisherConfig:
    """How `availability publish` pushes webhook channels their figures (engine/publisher.py)."""

    # Items per POST.
    batch_items_max: int = 500
    # SKU-locations tracked per channel (figures, acknowledged quantities, sell rates).
    keys_max: int = 2_000_000
    # Changes waiting to be posted per channel; past it the watch is not read (the
    # gateway then coalesces for us), so memory stays bounded.
    pending_keys_max: int = 200_000
    request_timeout_s: float = 10.0
    # Attempts per batch; after the last, its items wait for the next flush.
    attempts_max: int = 6
    # Retry delays: base * 2**attempt capped, times a jitter in [0.5, 1).
    backoff_base_s: float = 0.2
    backoff_cap_s: float = 10.0
    # The status key is rewritten this often, and lapses after status_ttl_s.
    status_interval_s: float = 1.0
    status_ttl_s: float = 10.0
    # Reconnect delays of a watch that ended: base * 2**attempt capped.
    reconnect_base_s: float = 0.1
    reconnect_cap_s: float = 5.0
    key_prefix: str = "availability"
