"""`availability loadtest flash-sale|capacity|retail-day`: the command line of the load tests."""

from __future__ import annotations

import argparse
import sys

from loadtest.workload import ARRIVALS, WorkloadError, WorkloadSpec

TARGET_NAMES = ("engine", "redis_lua", "postgres")


def add_parser(commands, env) -> None:
    parser = commands.add_parser("loadtest", help="flash-sale workloads against the engine and "
                                                  "its peers; capacity under h2load")
    kinds = parser.add_subparsers(dest="workload", required=True)
    _add_flash_sale(kinds.add_parser(
        "flash-sale", help="the same flash-sale workload against the engine, a Redis+Lua hold "
                           "script and PostgreSQL SELECT ... FOR UPDATE, oversells checked"),
        env)
    _add_capacity(kinds.add_parser(
        "capacity", help="the engine's saturation point under h2load, against a bare grpc.aio "
                         "server of the same proto"), env)
    _add_retail_day(kinds.add_parser(
        "retail-day", help="a whole retail day compressed in time (storefront, marketplaces, "
                           "stores, WMS, returns, ERP) against the engine and a point-to-point "
                           "baseline; oversells judged by the physical truth"))


def _add_engine_options(parser: argparse.ArgumentParser, env) -> None:
    parser.add_argument("--target", default=None, metavar="ADDRESS",
                        help="an engine already serving (default: start a private "
                             "`availability serve` on a free port)")
    parser.add_argument("--partitions", type=int, default=4,
                        help="partitions of the engine started (default 4)")
    parser.add_argument("--gateways", type=int, default=1,
                        help="gateway processes of the engine started (default 1; 2 with "
                             "--chaos)")
    parser.add_argument("--ray-address", default=env("RAY_ADDRESS", None),
                        help="the Ray the started engine joins (default: a Ray of its own)")
    parser.add_argument("--redis-url", default=None,
                        help="Redis for the started engine's journal and the Redis+Lua "
                             "baseline (default: a private embedded redis-server each)")
    _add_output_options(parser)


def _add_output_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", default=None, metavar="PATH", help="write the figures here")
    parser.add_argument("--report", default=None, metavar="PATH",
                        help="write a self-contained HTML report with plots here")


def _add_flash_sale(parser: argparse.ArgumentParser, env) -> None:
    defaults = WorkloadSpec()
    parser.add_argument("--duration", type=float, default=defaults.duration_s, metavar="S",
                        help=f"seconds over which buyers arrive (default {defaults.duration_s:g})")
    parser.add_argument("--buyers", type=int, default=defaults.buyers,
                        help=f"buyers arriving over the run (default {defaults.buyers})")
    parser.add_argument("--skus", type=int, default=defaults.skus,
                        help=f"SKUs on sale; 1 is a single hot SKU (default {defaults.skus})")
    parser.add_argument("--stock", type=int, default=defaults.stock,
                        help=f"units on hand per SKU (default {defaults.stock})")
    parser.add_argument("--arrival", default=defaults.arrival, choices=ARRIVALS,
                        help="arrival curve: flat, ramp (rising linearly) or spike (60%% of "
                             "buyers within 10%% of the run, from 20%% in) or closed (every "
                             "buyer waiting from the start, a new one begun as each Reserve "
                             "is answered: each target at its capacity; the run ends when "
                             "the buyers or --duration run out) (default spike)")
    parser.add_argument("--cart-mix", default="1:70,2:20,3:10", metavar="SIZE:WEIGHT,...",
                        help="cart sizes in units with their weights (default 1:70,2:20,3:10)")
    parser.add_argument("--commit-ratio", type=float, default=defaults.commit_ratio,
                        help="share of held carts that are committed (default "
                             f"{defaults.commit_ratio:g})")
    parser.add_argument("--abandon-rate", type=float, default=defaults.abandon_rate,
                        help="share of held carts abandoned (default "
                             f"{defaults.abandon_rate:g}); the rest keep their hold")
    parser.add_argument("--abandon-release-share", type=float,
                        default=defaults.abandon_release_share,
                        help="share of abandoned carts released; the others let the hold "
                             f"expire (default {defaults.abandon_release_share:g})")
    parser.add_argument("--think-s", type=float, default=defaults.think_s,
                        help=f"mean seconds between hold and commit or release (default "
                             f"{defaults.think_s:g})")
    parser.add_argument("--hold-ttl-s", type=int, default=defaults.hold_ttl_s,
                        help=f"hold TTL in seconds (default {defaults.hold_ttl_s})")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--concurrency", type=int, default=512,
                        help="requests in flight per target at most (default 512)")
    parser.add_argument("--targets", default=",".join(TARGET_NAMES),
                        help="which to measure, comma-separated (default all three)")
    parser.add_argument("--postgres-dsn", default=env("POSTGRES_DSN", None),
                        help="PostgreSQL of the baseline (default "
                             "postgresql://postgres@127.0.0.1:5432/test); skipped when "
                             "unreachable")
    parser.add_argument("--postgres-pool", type=int, default=20,
                        help="PostgreSQL connections (default 20)")
    parser.add_argument("--chaos", action="store_true",
                        help="kill a partition actor, then a gateway, then pause Redis, at "
                             "25%%, 50%% and 75%% of the run (engine only)")
    parser.add_argument("--chaos-pause-s", type=float, default=2.0,
                        help="how long Redis is paused (default 2)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    _add_engine_options(parser, env)
    parser.set_defaults(loadtest_parser=parser)


def _add_capacity(parser: argparse.ArgumentParser, env) -> None:
    parser.add_argument("--duration", type=float, default=5.0, metavar="S",
                        help="seconds of each h2load step (default 5)")
    parser.add_argument("--steps", default="1,4,16,64,256",
                        help="streams in flight per step, comma-separated "
                             "(default 1,4,16,64,256)")
    parser.add_argument("--bodies", default="reserve_replay,get_availability",
                        help="request bodies to measure (default "
                             "reserve_replay,get_availability)")
    _add_engine_options(parser, env)
    parser.set_defaults(loadtest_parser=parser)


def _add_retail_day(parser: argparse.ArgumentParser) -> None:
    from loadtest.retail_world import RetailConfig

    defaults = RetailConfig()
    parser.add_argument("--hours-simulated", type=float, default=defaults.hours_simulated,
                        help=f"simulated hours, from 06:00 (default {defaults.hours_simulated:g})")
    parser.add_argument("--speed", type=float, default=None,
                        help="simulated seconds per wall second (default: as fast as it runs)")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--stores", type=int, default=defaults.stores,
                        help=f"stores posting till sales (default {defaults.stores})")
    parser.add_argument("--skus", type=int, default=defaults.skus,
                        help=f"SKUs in the catalogue (default {defaults.skus})")
    parser.add_argument("--web-carts-per-day", type=float, default=defaults.web_carts_per_day,
                        help=f"storefront carts a day (default {defaults.web_carts_per_day:g})")
    parser.add_argument("--partitions", type=int, default=defaults.partitions,
                        help=f"in-process partitions (default {defaults.partitions})")
    parser.add_argument("--no-progress", action="store_true", help="no progress lines")
    _add_output_options(parser)
    parser.set_defaults(loadtest_parser=parser)


def _retail_day(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    import dataclasses

    from loadtest import retail_run
    from loadtest.retail_world import RetailConfig

    if args.speed is not None and args.speed <= 0:
        parser.error("--speed must be above 0")
    config = dataclasses.replace(
        RetailConfig(), hours_simulated=args.hours_simulated, seed=args.seed,
        stores=args.stores, skus=args.skus, web_carts_per_day=args.web_carts_per_day,
        partitions=args.partitions)
    try:
        config.check()
    except ValueError as error:
        parser.error(str(error))
    document = retail_run.run(retail_run.RetailOptions(
        config, args.speed, args.json, args.report, progress=not args.no_progress))
    print("\n".join(retail_run.summary_lines(document)))
    return 0


def run(args: argparse.Namespace) -> int:
    parser = args.loadtest_parser
    if args.workload == "retail-day":
        return _retail_day(parser, args)
    if args.partitions < 1 or args.gateways < 1:
        parser.error("--partitions and --gateways must be at least 1")
    if args.duration <= 0:
        parser.error("--duration must be above 0")
    if args.workload == "capacity":
        return _capacity(parser, args)
    return _flash_sale(parser, args)


def _flash_sale(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from loadtest import flash_sale
    from loadtest.flash_run import RunSettings
    from loadtest.workload import parse_cart_mix

    targets = _chosen(parser, "--targets", args.targets, TARGET_NAMES)
    if args.chaos and args.target:
        parser.error("--chaos needs the engine this command starts: drop --target")
    if args.chaos and "engine" not in targets:
        parser.error("--chaos faults the engine: keep engine in --targets")
    if args.concurrency < 1 or args.postgres_pool < 1:
        parser.error("--concurrency and --postgres-pool must be at least 1")
    if args.chaos_pause_s <= 0:
        parser.error("--chaos-pause-s must be above 0")
    try:
        spec = WorkloadSpec(
            duration_s=args.duration, buyers=args.buyers, skus=args.skus, stock=args.stock,
            arrival=args.arrival, cart_mix=parse_cart_mix(args.cart_mix),
            commit_ratio=args.commit_ratio, abandon_rate=args.abandon_rate,
            abandon_release_share=args.abandon_release_share, think_s=args.think_s,
            hold_ttl_s=args.hold_ttl_s, seed=args.seed)
        spec.check()
    except WorkloadError as error:
        parser.error(str(error))
    options = flash_sale.FlashOptions(
        spec=spec, settings=RunSettings(requests_in_flight_max=args.concurrency,
                                        progress=not args.no_progress),
        targets=targets, address=args.target, partitions=args.partitions,
        gateways=args.gateways, ray_address=args.ray_address, redis_url=args.redis_url,
        postgres_dsn=args.postgres_dsn or flash_sale.POSTGRES_DSN,
        postgres_pool_size=args.postgres_pool, chaos=args.chaos,
        chaos_pause_s=args.chaos_pause_s, json_path=args.json, report_path=args.report)
    try:
        document = flash_sale.run(options)
    except RuntimeError as error:
        print(f"availability loadtest flash-sale: {error}", file=sys.stderr)
        return 1
    print("\n".join(flash_sale.summary_lines(document)))
    return 0


def _chosen(parser: argparse.ArgumentParser, flag: str, text: str,
            known: tuple[str, ...]) -> tuple[str, ...]:
    """The names of a comma-separated flag, or a usage error naming the unknown ones."""
    names = tuple(filter(None, (name.strip() for name in text.split(","))))
    unknown = sorted(set(names) - set(known))
    if unknown or not names:
        parser.error(f"{flag}: unknown {', '.join(unknown) or '(none given)'}; choose from "
                     f"{', '.join(known)}")
    return names


def _capacity(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from loadtest import capacity

    try:
        steps = [int(step) for step in args.steps.split(",") if step.strip()]
    except ValueError:
        parser.error(f"--steps: {args.steps!r} is not a comma-separated list of numbers")
    if not steps or min(steps) < 1:
        parser.error("--steps needs at least one number, each at least 1")
    bodies = _chosen(parser, "--bodies", args.bodies, tuple(capacity.BODIES))
    missing = capacity.missing_tool()
    if missing:
        print(f"availability loadtest capacity: {missing}", file=sys.stderr)
        return 1
    try:
        document = capacity.run(capacity.CapacityOptions(
            steps=tuple(steps), duration_s=args.duration, bodies=bodies, address=args.target,
            partitions=args.partitions, gateways=args.gateways, ray_address=args.ray_address,
            redis_url=args.redis_url, json_path=args.json, report_path=args.report))
    except RuntimeError as error:
        print(f"availability loadtest capacity: {error}", file=sys.stderr)
        return 1
    print("\n".join(capacity.summary_lines(document)))
    return 0
