"""`availability demo`: a real `availability serve` on the embedded Redis (Ray, partition
actors, gateway, ingest, the ops dashboard, the ERP sync job, the channel publisher) while
the retail-day simulators run against it at a human pace: storefront, two marketplaces,
stores, WMS, returns and the ERP simulator. Ctrl-C (or --duration) stops it all."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import os
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from engine.security_options import TOKEN_VARIABLE
from gateway.tokens import new_token, toml_table
from loadtest.retail_world import MARKETS, WEB, RetailConfig

DEFAULT_SPEED = 60.0  # simulated seconds per wall second: a simulated hour a minute
DEMO_DAYS = 7  # without --duration the week runs until Ctrl-C
ERP_RATE_LIMIT_RPS = 20.0
REPORT_EVERY_S = 900.0  # a line every 15 simulated minutes


@dataclass(frozen=True)
class DemoOptions:
    skus: int = 60
    stores: int = 180
    partitions: int = 4
    speed: float = DEFAULT_SPEED
    duration_s: float | None = None  # None: until Ctrl-C
    seed: int = 1
    ray_address: str | None = None
    redis_url: str | None = None


def demo_tokens() -> dict[str, tuple[str, str, dict[str, str]]]:
    """Fresh tokens of each role, by name: (token, role, its channel or source)."""
    return {"admin": (new_token(), "admin", {}),
            "checkout": (new_token(), "checkout", {}),
            "channel-web": (new_token(), "channel", {"channel": WEB}),
            "source-pos": (new_token(), "source", {"source": "pos"})}


def channels_toml(config: RetailConfig, urls: dict[str, str], speed: float) -> str:
    """The storefront's channel and the two marketplaces', published to their webhooks on
    their cadences (scaled to wall time), with velocity buffers over feed lag + cadence,
    ring-fenced, each allocated its share of the online orders (as in retail-day)."""
    from loadtest.retail_engine import market_shares

    shares = market_shares(config)
    tables = [f'[[channels]]\nname = "{WEB}"\nlocations = ["dc-*"]\n']
    for market, cadence_min, lag_min in zip(MARKETS, config.market_cadence_min,
                                            config.market_feed_lag_min):
        tables.append(
            f'[[channels]]\nname = "{market}"\nlocations = ["dc-*"]\npublish = "webhook"\n'
            f'webhook_url = "{urls[market]}"\ncadence_s = {cadence_min * 60 / speed:g}\n'
            f'rate_limit_per_s = 10\nvelocity = {{ half_life_s = {1_800 / speed:g}, '
            f'lag_s = {(cadence_min + lag_min) * 60 / speed:g}, max_units = 50, '
            f'max_percent = "100%" }}\nshare = "{shares[market]:g}%"\nring_fence = true\n')
    return "\n".join(tables)


def run(options: DemoOptions, out=None) -> int:
    return asyncio.run(_demo(options, out or functools.partial(print, flush=True)))


async def _demo(options: DemoOptions, out) -> int:
    from loadtest.erp_config import SimulatorConfig
    from loadtest.erp_sim import SIMULATOR, start_simulator
    from loadtest.marketplace_sim import Marketplace, start_receiver

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    config = dataclasses.replace(RetailConfig(), seed=options.seed, stores=options.stores,
                                 skus=options.skus, partitions=options.partitions,
                                 hours_simulated=24.0 * DEMO_DAYS)
    folder = Path(tempfile.mkdtemp(prefix="avl-demo-", dir="/tmp"))
    markets = {market: Marketplace(lag_min * 60 / options.speed)
               for market, lag_min in zip(MARKETS, config.market_feed_lag_min)}
    runners, stack = [], contextlib.ExitStack()
    try:
        erp_runner, erp_port = await start_simulator(
            SimulatorConfig(port=0, rate_limit_rps=ERP_RATE_LIMIT_RPS))
        runners.append(erp_runner)
        urls = {}
        for market, marketplace in markets.items():
            runner, port = await start_receiver(marketplace)
            runners.append(runner)
            urls[market] = f"http://127.0.0.1:{port}/feed"
        tokens = demo_tokens()
        (folder / "channels.toml").write_text(channels_toml(config, urls, options.speed))
        (folder / "tokens.toml").write_text("\n\n".join(
            toml_table(name, role, token, **scope)
            for name, (token, role, scope) in tokens.items()) + "\n")
        out("Starting the engine (Ray, partitions, gateway, embedded Redis, ERP sync job, "
            "channel publisher)...")
        engine = await _start_engine(stack, options, folder, f"http://127.0.0.1:{erp_port}",
                                     tokens["admin"][0], stop)
        if engine is None:
            return 0
        _print_welcome(out, engine, tokens, options)
        return await _play(options, config, engine, erp_runner.app[SIMULATOR], markets,
                           tokens["admin"][0], stop, out)
    finally:
        out("Stopping: draining the gateway, the sync job and the publisher...")
        await asyncio.to_thread(stack.close)
        for runner in runners:
            await runner.cleanup()
        shutil.rmtree(folder, ignore_errors=True)
        out("Stopped.")


async def _start_engine(stack: contextlib.ExitStack, options: DemoOptions, folder: Path,
                        erp_url: str, admin_token: str, stop: asyncio.Event):
    """`availability serve` as a child in its own session (Ctrl-C reaches only this
    process, which then drains it); None if Ctrl-C came while it started."""
    from loadtest.engine_process import running_engine

    namespace = f"availability-demo-{os.getpid()}-{time.time_ns()}"
    # The publisher child of serve watches the channels with this token.
    env = {**os.environ, TOKEN_VARIABLE: admin_token}
    env.pop("AVAILABILITY_METRICS_PORT", None)
    starting = running_engine(
        options.partitions, 1, namespace, options.ray_address, options.redis_url,
        extra_args=["--metrics-port", "0", "--channels", str(folder / "channels.toml"),
                    "--erp-url", erp_url, "--auth-tokens", str(folder / "tokens.toml")],
        env=env, ingest_workers=1)
    engine = await asyncio.to_thread(stack.enter_context, starting)
    return None if stop.is_set() else engine


def _print_welcome(out, engine, tokens, options: DemoOptions) -> None:
    admin = tokens["admin"][0]
    out(f"\nThe engine serves inventory.v1.AvailabilityService on {engine.address}.")
    out(f"Open the ops dashboard:  {engine.dashboard_url}")
    out(f"A simulated retail day runs against it at {options.speed:g}x (a simulated hour every "
        f"{3_600 / options.speed:g} s): a storefront reserving carts, two marketplaces fed "
        f"by webhook, {options.stores} stores posting till sales every 5 simulated minutes "
        "(some offline, posting late), a WMS shipping, returns through quality control, and "
        "an ERP simulator sending receipts and counts, kept in step by the sync job.")
    out("\nTokens for this run only (calls without one are refused UNAUTHENTICATED):")
    for name, (token, _, _) in tokens.items():
        out(f"  {name:<12} {token}")
    out("\nThings to try in another terminal:")
    out(f"  export {TOKEN_VARIABLE}={admin}")
    out(f"  availability status --metrics-url {engine.dashboard_url.rstrip('/')}")
    out(f"  availability explain SKU-00001 dc-east --address {engine.address}")
    out("  python - <<'EOF'\n  import asyncio, os\n  from gateway.client import "
        "AvailabilityClient\n  async def main():\n      async with AvailabilityClient("
        f"\"{engine.address}\", token=os.environ[\"{TOKEN_VARIABLE}\"]) as client:\n"
        "          answer = await client.reserve([(\"SKU-00001\", \"\", 1)], "
        "idempotency_key=\"try-1\", channel=\"web\")\n          print(answer)\n"
        "  asyncio.run(main())\n  EOF")
    out("\nCtrl-C stops everything.\n")


async def _play(options: DemoOptions, config: RetailConfig, engine, erp, markets,
                admin_token: str, stop: asyncio.Event, out) -> int:
    from gateway.client import AvailabilityClient
    from loadtest.retail_day import RetailDay
    from loadtest.retail_live import LiveEngine

    async with AvailabilityClient(engine.address, token=admin_token) as client:
        system = LiveEngine(config, client, erp, markets, options.speed)
        day = RetailDay(config, system)
        playing = asyncio.create_task(day.run(options.speed, _hourly(out, system)))
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait({playing, stopping}, timeout=options.duration_s,
                           return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if playing.done():
            playing.result()  # a failure of the day is the demo's failure
        else:
            playing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await playing
        _print_summary(out, day, system)
    return 0


def _hourly(out, system):
    def show(now_s: float, day) -> None:
        if now_s % REPORT_EVERY_S >= day.config.tick_s:
            return
        tallies = day.truth.tallies
        orders = "  ".join(f"{channel} {tallies[channel].orders:,}"
                           for channel in (WEB, *MARKETS))
        minutes = round((6 * 3_600 + now_s) / 60) % (24 * 60)
        out(f"{minutes // 60:02d}:{minutes % 60:02d} simulated  orders: {orders}  till "
            f"sales: {day.state.stores['units_sold']:,} units  oversold: "
            f"{sum(t.oversold_units for t in tallies.values())}  ERP calls: "
            f"{system.erp.requests_total:,}")
    return show


def _print_summary(out, day, system) -> None:
    out("\nSummary, judged against the simulated shelves (not the engine's own word):")
    for channel in (WEB, *MARKETS):
        tally = day.truth.tallies[channel]
        out(f"  {channel:<14} {tally.orders:>6,} orders {tally.units:>6,} units  oversold "
            f"{tally.oversold_units}  cancelled by the engine {tally.cancelled_units}  "
            f"turned away {tally.undersold_units}")
    out(f"  stores: {day.state.stores['units_sold']:,} units sold at tills; WMS shipments "
        f"{day.state.stores['wms_shipments']:,}; returns received "
        f"{day.state.stores['returns_received']:,}")
    out(f"  ERP: {system.erp.requests_total:,} calls from the sync job; "
        f"{sum(system.erp.statuses.values()):,} answered")
    errors = {name: count for name, count in system.errors.items() if count}
    if errors:
        out(f"  errors: {errors}")
