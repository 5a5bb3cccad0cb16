"""The `availability` command line; every option also reads an AVAILABILITY_* variable."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from engine import (
    demo,
    erp_commands,
    explain_command,
    publish_command,
    security_options,
    status_command,
    token_command,
    trace,
)
from engine.channels import ChannelError, ChannelRules
from engine.config import DurabilityConfig, GatewayConfig, LaneLimits
from engine.embedded_redis import DATA_DIR, SOCKET_NAME
from engine.mappings import MappingError, Mappings
from engine.partition_map import DEFAULT_VIRTUAL_PARTITIONS
from gateway import rebalance_command
from loadtest import loadtest_command


def _env(name: str, default):
    """A default from AVAILABILITY_<NAME>, converted like the built-in default."""
    value = os.environ.get(f"AVAILABILITY_{name}")
    if value is None or default is None:
        return value if value is not None else default
    return type(default)(value)


def _add_serving_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default=_env("HOST", "127.0.0.1"),
                        help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=_env("PORT", 50051),
                        help="port to listen on; 0 picks a free one (default 50051)")
    parser.add_argument("--partitions", type=int, default=_env("PARTITIONS", 4),
                        help="partition actors the SKUs are spread over (default 4)")
    _add_virtual_partitions_option(parser)
    parser.add_argument("--ray-namespace", default=_env("RAY_NAMESPACE", "availability"),
                        help="Ray namespace the partition actors are named in")
    parser.add_argument("--queue-commands-max", type=int,
                        default=_env("QUEUE_COMMANDS_MAX", LaneLimits.queue_commands_max),
                        help="commands queued per partition before RESOURCE_EXHAUSTED "
                             f"(default {LaneLimits.queue_commands_max})")
    parser.add_argument("--cart-tentative-ttl-s", type=int,
                        default=_env("CART_TENTATIVE_TTL_S", GatewayConfig.cart_tentative_ttl_s),
                        help="how long a cart spanning partitions is held before it is "
                             f"confirmed (default {GatewayConfig.cart_tentative_ttl_s})")
    _add_mappings_option(parser)
    parser.add_argument("--channels", default=_env("CHANNELS", None),
                        help="channel rules file (TOML): location groups, buffers, quotas, "
                             "publish thresholds; without it one channel, `default`")
    _add_metrics_options(parser)
    security_options.add_server_options(parser, _env)


def _add_virtual_partitions_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--virtual-partitions", type=int,
                        default=_env("VIRTUAL_PARTITIONS", DEFAULT_VIRTUAL_PARTITIONS),
                        help="virtual partitions (units of state and journal) the SKUs hash "
                             "onto, hosted by the --partitions actors; fixed for a journal "
                             f"(default {DEFAULT_VIRTUAL_PARTITIONS})")


def _add_metrics_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--metrics-port", type=int, default=_env("METRICS_PORT", None),
                        help="serve Prometheus /metrics and the ops dashboard (/) on this "
                             "port; 0 picks a free one (default: off)")
    parser.add_argument("--metrics-host", default=_env("METRICS_HOST", "127.0.0.1"),
                        help="address of the metrics port (default 127.0.0.1)")


def _add_mappings_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mappings", default=_env("MAPPINGS", None),
                        help="folder of source mapping files (<source>.toml): SKU aliases, "
                             "location codes, units, status codes")


def _add_durability_options(parser: argparse.ArgumentParser, data_dir: str = DATA_DIR) -> None:
    parser.add_argument("--redis-url", default=_env("REDIS_URL", None),
                        help="the Redis partitions journal to (redis://, rediss://, unix://); "
                             "without it an embedded Redis runs in --data-dir")
    parser.add_argument("--data-dir", default=_env("DATA_DIR", data_dir),
                        help=f"the embedded Redis's folder (default {data_dir})")
    parser.add_argument("--snapshot-every-commands", type=int,
                        default=_env("SNAPSHOT_EVERY_COMMANDS",
                                     DurabilityConfig.snapshot_every_commands),
                        help="a partition snapshots after this many commands (default "
                             f"{DurabilityConfig.snapshot_every_commands})")
    parser.add_argument("--snapshot-interval-s", type=float,
                        default=_env("SNAPSHOT_INTERVAL_S", DurabilityConfig.snapshot_interval_s),
                        help="... or after this many seconds, whichever comes first (default "
                             f"{DurabilityConfig.snapshot_interval_s:g})")
    # Benchmarks only (what the journal costs): acknowledged changes are not durable.
    parser.add_argument("--benchmark-without-journal", action="store_true",
                        help=argparse.SUPPRESS)


def _durability(parser: argparse.ArgumentParser, args: argparse.Namespace,
                key_prefix: str) -> DurabilityConfig:
    if args.snapshot_every_commands < 1 or args.snapshot_interval_s <= 0:
        parser.error("--snapshot-every-commands must be at least 1 and "
                     "--snapshot-interval-s above 0")
    return DurabilityConfig(redis_url=args.redis_url, key_prefix=key_prefix,
                            journal=not args.benchmark_without_journal,
                            snapshot_every_commands=args.snapshot_every_commands,
                            snapshot_interval_s=args.snapshot_interval_s)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="availability", description=(
        "Authoritative available-to-sell for every SKU-location."))
    commands = parser.add_subparsers(dest="command", required=True)
    _add_demo_parser(commands)
    serve_parser = commands.add_parser(
        "serve", help="start Ray, the partition actors and the gRPC gateway")
    _add_serving_options(serve_parser)
    serve_parser.add_argument("--gateways", type=int, default=_env("GATEWAYS", 1),
                              help="gateway processes sharing the port (default 1)")
    serve_parser.add_argument("--ray-address", default=_env("RAY_ADDRESS", None),
                              help="join this Ray cluster instead of starting one")
    _add_durability_options(serve_parser)
    gateway_parser = commands.add_parser(
        "gateway", help="one more gateway in front of partitions a `serve` started")
    _add_serving_options(gateway_parser)
    gateway_parser.add_argument("--ray-address", required=True,
                                help="the Ray cluster the partitions run in")
    gateway_parser.add_argument("--redis-url", default=_env("REDIS_URL", None),
                                help="the Redis the partitions journal to, whose partition "
                                     "map the gateway follows (without it: the default map)")
    serve_parser.add_argument("--erp-url", default=_env("ERP_URL", None),
                              help="also run `availability erp-sync` into this ERP")
    serve_parser.add_argument("--ingest-workers", type=int, default=_env("INGEST_WORKERS", 1),
                              help="workers on the availability:events stream (default 1; "
                                   "0 for none)")
    ingest_parser = commands.add_parser(
        "ingest", help="ingest workers on availability:events, for partitions a `serve` started")
    ingest_parser.add_argument("--ray-address", required=True,
                               help="the Ray cluster the partitions run in")
    ingest_parser.add_argument("--ray-namespace", default=_env("RAY_NAMESPACE", "availability"))
    ingest_parser.add_argument("--partitions", type=int, default=_env("PARTITIONS", 4))
    _add_virtual_partitions_option(ingest_parser)
    ingest_parser.add_argument("--redis-url", default=_env("REDIS_URL", None),
                               help="the Redis of the events stream (default: serve's embedded "
                                    "one in --data-dir)")
    ingest_parser.add_argument("--data-dir", default=_env("DATA_DIR", DATA_DIR))
    ingest_parser.add_argument("--workers", type=int, default=_env("INGEST_WORKERS", 1))
    _add_mappings_option(ingest_parser)
    _add_metrics_options(ingest_parser)
    _add_dlq_parser(commands)
    _add_sim_parser(commands)
    erp_commands.add_parsers(commands, _env)
    explain_command.add_parser(commands, _env)
    publish_command.add_parser(commands, _env)
    trace.add_parser(commands, _env, DATA_DIR)
    status_command.add_parser(commands, _env)
    rebalance_command.add_parser(commands, _env)
    token_command.add_parser(commands, _env)
    loadtest_command.add_parser(commands, _env)
    args = parser.parse_args(argv)
    if args.command == "demo":
        if args.skus < 2 or args.partitions < 1 or args.stores < 1 or args.speed <= 0 or (
                args.duration is not None and args.duration <= 0):
            parser.error("--skus must be at least 2, --partitions and --stores at least 1, "
                         "--speed and --duration above 0")
        return demo.run(demo.DemoOptions(
            skus=args.skus, stores=args.stores, partitions=args.partitions, speed=args.speed,
            duration_s=args.duration, seed=args.seed, ray_address=args.ray_address,
            redis_url=args.redis_url))
    if args.command == "dlq":
        return _dlq(parser, args)
    if args.command == "sim":
        return _sim(parser, args)
    if args.command == "explain":
        return explain_command.run(args, security_options.client_connection(parser, args))
    if args.command == "publish":
        _log_to_stderr()
        return publish_command.run(parser, args, _events_redis_url(args),
                                   security_options.client_connection(parser, args))
    if args.command == "status":
        return status_command.run(args)
    if args.command == "rebalance":
        _log_to_stderr()
        return rebalance_command.run(parser, args, _events_redis_url(args))
    if args.command == "loadtest":
        return loadtest_command.run(args)
    if args.command == "token":
        return token_command.run(parser, args)
    if args.command == "trace":
        return trace.run(args, _events_redis_url(args))
    if args.command in ("erp-sync", "reconcile"):
        _log_to_stderr()
        return erp_commands.run(parser, args, _events_redis_url(args))
    return _serve(parser, args)


def _add_demo_parser(commands) -> None:
    parser = commands.add_parser(
        "demo", help="serve on the embedded Redis with the ops dashboard, and run a simulated "
                     "retail day against it (storefront, marketplaces, stores, WMS, ERP) "
                     "until Ctrl-C")
    defaults = demo.DemoOptions()
    parser.add_argument("--duration", type=float, default=None, metavar="S",
                        help="stop after S seconds with a summary (default: run until Ctrl-C)")
    parser.add_argument("--speed", type=float, default=defaults.speed,
                        help=f"simulated seconds per second (default {defaults.speed:g}: an "
                             "hour a minute)")
    parser.add_argument("--skus", type=int, default=defaults.skus,
                        help=f"SKUs in the catalogue (default {defaults.skus})")
    parser.add_argument("--stores", type=int, default=defaults.stores,
                        help=f"stores posting till sales (default {defaults.stores})")
    parser.add_argument("--partitions", type=int, default=defaults.partitions,
                        help=f"partition actors (default {defaults.partitions})")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--ray-address", default=_env("RAY_ADDRESS", None),
                        help="join this Ray cluster instead of starting one")
    parser.add_argument("--redis-url", default=_env("REDIS_URL", None),
                        help="journal to this Redis (default: an embedded one in a temporary "
                             "folder, removed on exit)")


def _serve(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from gateway.serve import ServeOptions, serve, serve_gateway, serve_ingest

    _check_mappings(parser, args.mappings)
    if args.metrics_port is not None and not 0 <= args.metrics_port <= 65535:
        parser.error("--metrics-port must be between 0 and 65535")
    metrics = {"metrics_port": args.metrics_port, "metrics_host": args.metrics_host}
    if args.command == "ingest":
        if args.partitions < 1 or args.workers < 1:
            parser.error("--partitions and --workers must be at least 1")
        _log_to_stderr()
        url = _events_redis_url(args)
        serve_ingest(ServeOptions(partitions=args.partitions,
                                  virtual_partitions=args.virtual_partitions,
                                  ray_address=args.ray_address,
                                  ray_namespace=args.ray_namespace, mappings_dir=args.mappings,
                                  ingest_workers=args.workers, **metrics), url)
        return 0
    if min(args.partitions, args.virtual_partitions, getattr(args, "gateways", 1),
           args.queue_commands_max, args.cart_tentative_ttl_s) < 1 \
            or getattr(args, "ingest_workers", 0) < 0:
        parser.error("--partitions, --virtual-partitions, --gateways, --queue-commands-max "
                     "and --cart-tentative-ttl-s must be at least 1, --ingest-workers at "
                     "least 0")
    if not 0 <= args.port <= 65535:
        parser.error("--port must be between 0 and 65535")
    _log_to_stderr()
    config = GatewayConfig(
        lanes=LaneLimits(queue_commands_max=args.queue_commands_max),
        cart_tentative_ttl_s=args.cart_tentative_ttl_s,
        transport=security_options.transport_limits(parser, args),
        channels=_channel_rules(parser, args.channels),
        # A fault point for tests: a pause between a cart's two phases.
        cart_confirm_delay_s=float(os.environ.get("AVAILABILITY_FAULT_CART_CONFIRM_DELAY_S", 0)))
    options = ServeOptions(host=args.host, port=args.port, partitions=args.partitions,
                           virtual_partitions=args.virtual_partitions,
                           gateways=getattr(args, "gateways", 1), ray_address=args.ray_address,
                           ray_namespace=args.ray_namespace, config=config,
                           mappings_dir=args.mappings, channels_file=args.channels, **metrics,
                           security=security_options.server_security(parser, args),
                           **({"durability": _durability(parser, args, args.ray_namespace),
                               "data_dir": args.data_dir, "ingest_workers": args.ingest_workers,
                               "erp_url": args.erp_url}
                              if args.command == "serve" else
                              {"durability": DurabilityConfig(redis_url=args.redis_url,
                                                              key_prefix=args.ray_namespace)}))
    (serve if args.command == "serve" else serve_gateway)(options)
    return 0


def _add_sim_parser(commands) -> None:
    from loadtest import erp_config  # not erp_sim: aiohttp loads only when a simulator runs

    sim_parser = commands.add_parser("sim", help="simulators of the outside world")
    simulators = sim_parser.add_subparsers(dest="simulator", required=True)
    erp_config.build_parser(simulators.add_parser(
        "erp", help="the generic REST ERP (DESIGN section 5): SQLite ledger, idempotency "
                    "keys, rate limit, latency, errors, outages, asynchronous acceptance"))
    from loadtest import marketplace_sim  # stdlib at import; aiohttp loads when it runs

    marketplace_sim.build_parser(simulators.add_parser(
        "marketplace", help="a marketplace fed by webhook after a lag, whose buyers' orders "
                            "go to the engine; counts channel oversells"))


def _sim(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from loadtest import erp_sim

    if args.simulator == "marketplace":
        from loadtest import marketplace_sim

        return marketplace_sim.main(args)
    try:
        return erp_sim.main(args)
    except erp_sim.SimulatorConfigError as error:
        parser.error(f"sim erp: {error}")


def _add_dlq_parser(commands) -> None:
    dlq_parser = commands.add_parser(
        "dlq", help="inspect, replay or drop the dead letters of availability:events")
    actions = dlq_parser.add_subparsers(dest="action", required=True)
    list_parser = actions.add_parser("list", help="one line per letter, oldest first: id, "
                                                  "source, attempts, reason")
    list_parser.add_argument("--count", type=int, default=100,
                             help="letters to list (default 100)")
    show_parser = actions.add_parser("show", help="one letter, its movement decoded")
    show_parser.add_argument("id")
    replay_parser = actions.add_parser(
        "replay", help="post letters back onto the events stream (after a mapping is fixed)")
    replay_parser.add_argument("ids", nargs="*", metavar="ID")
    replay_parser.add_argument("--all", action="store_true",
                               help="every letter in the DLQ when the replay starts")
    drop_parser = actions.add_parser("drop", help="delete letters for good")
    drop_parser.add_argument("ids", nargs="+", metavar="ID")
    for action in (list_parser, show_parser, replay_parser, drop_parser):
        action.add_argument("--redis-url", default=_env("REDIS_URL", None),
                            help="the Redis of the events stream (default: serve's embedded "
                                 "one in --data-dir)")
        action.add_argument("--data-dir", default=_env("DATA_DIR", DATA_DIR))
        action.add_argument("--stream", default="availability:events",
                            help="the events stream (default availability:events)")
        action.add_argument("--dead-letters", default="availability:events:dlq",
                            help="its dead letters (default availability:events:dlq)")
        if action in (list_parser, show_parser):
            action.add_argument("--json", action="store_true", help="print JSON")


def _dlq(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    import redis

    from gateway import dead_letters
    from gateway.ingest import IngestConfig

    if args.action == "replay" and bool(args.ids) == args.all:
        parser.error("dlq replay: name letter ids or give --all, not both")
    config = IngestConfig(stream=args.stream, dead_letters=args.dead_letters)
    url = _events_redis_url(args)
    try:
        client = redis.Redis.from_url(url)
    except ValueError as error:
        parser.error(f"--redis-url: {error}")
    try:
        if args.action == "list":
            letters = dead_letters.list_letters(client, config, args.count)
            print(json.dumps(list(map(dead_letters.headline, letters))) if args.json
                  else "\n".join(map(dead_letters.summary, letters)) or "no dead letters")
        elif args.action == "show":
            described = dead_letters.describe(dead_letters.show(client, config, args.id))
            print(json.dumps(described, indent=2) if args.json
                  else "\n".join(f"{key:<14} {_plain(value)}" for key, value in described.items()))
        elif args.action == "replay":
            replayed = dead_letters.replay(client, config,
                                           dead_letters.ALL if args.all else args.ids)
            for letter_id, event_id in replayed:
                print(f"replayed {letter_id} as {event_id} on {config.stream}")
            print(f"{len(replayed)} letter(s) replayed")
        else:
            print(f"{dead_letters.drop(client, config, args.ids)} letter(s) dropped")
    except ValueError as error:
        parser.error(f"dlq {args.action}: {error}")
    except (dead_letters.UnknownLetter, dead_letters.BusyDeadLetters) as error:
        print(f"availability dlq {args.action}: {error}", file=sys.stderr)
        return 1
    except redis.RedisError as error:
        print(f"availability dlq {args.action}: Redis at {url}: {error}", file=sys.stderr)
        return 1
    finally:
        client.close()
    return 0


def _plain(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _events_redis_url(args: argparse.Namespace) -> str:
    """--redis-url, else the embedded Redis a `serve` runs in --data-dir."""
    return args.redis_url or f"unix://{Path(args.data_dir).resolve() / SOCKET_NAME}"


def _check_mappings(parser: argparse.ArgumentParser, folder: str | None) -> None:
    """Refuse broken mapping files now, naming the file, table and key."""
    if folder:
        try:
            Mappings.load(folder)
        except MappingError as error:
            parser.error(f"--mappings: {error}")


def _channel_rules(parser: argparse.ArgumentParser, path: str | None) -> ChannelRules:
    """The rules of --channels, or exit naming the file, channel and key that is wrong."""
    try:
        return ChannelRules.load(path) if path else ChannelRules()
    except ChannelError as error:
        parser.error(f"--channels: {error}")


def _log_to_stderr() -> None:
    from engine import logs

    logs.configure()


if __name__ == "__main__":
    sys.exit(main())
