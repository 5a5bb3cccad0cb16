"""The `availability` command line; every option also reads an AVAILABILITY_* variable."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from engine import demo, erp_commands, explain_command, status_command, trace
from engine.config import DurabilityConfig, GatewayConfig, LaneLimits
from engine.embedded_redis import DATA_DIR, DEMO_DATA_DIR, SOCKET_NAME
from engine.mappings import MappingError, Mappings


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
    _add_metrics_options(parser)


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
    demo_parser = commands.add_parser(
        "demo", help="load a sample catalogue, play a short retail story, print availability")
    demo_parser.add_argument("--skus", type=int, default=2_000,
                             help="SKUs in the sample catalogue (default 2000)")
    demo_parser.add_argument("--partitions", type=int, default=4,
                             help="partitions the SKUs are spread over (default 4)")
    demo_parser.add_argument("--ray-address", default=_env("RAY_ADDRESS", None),
                             help="join this Ray cluster instead of starting one")
    _add_durability_options(demo_parser, DEMO_DATA_DIR)
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
    trace.add_parser(commands, _env, DATA_DIR)
    status_command.add_parser(commands, _env)
    args = parser.parse_args(argv)
    if args.command == "demo":
        if args.skus < 2 or args.partitions < 1:
            parser.error("--skus must be at least 2 and --partitions at least 1")
        demo.run(args.skus, args.partitions, args.ray_address,
                 _durability(parser, args, key_prefix=""), args.data_dir)
        return 0
    if args.command == "dlq":
        return _dlq(parser, args)
    if args.command == "sim":
        return _sim(parser, args)
    if args.command == "explain":
        return explain_command.run(args)
    if args.command == "status":
        return status_command.run(args)
    if args.command == "trace":
        return trace.run(args, _events_redis_url(args))
    if args.command in ("erp-sync", "reconcile"):
        _log_to_stderr()
        return erp_commands.run(parser, args, _events_redis_url(args))
    return _serve(parser, args)


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
        serve_ingest(ServeOptions(partitions=args.partitions, ray_address=args.ray_address,
                                  ray_namespace=args.ray_namespace, mappings_dir=args.mappings,
                                  ingest_workers=args.workers, **metrics), url)
        return 0
    if min(args.partitions, getattr(args, "gateways", 1), args.queue_commands_max,
           args.cart_tentative_ttl_s) < 1 or getattr(args, "ingest_workers", 0) < 0:
        parser.error("--partitions, --gateways, --queue-commands-max and "
                     "--cart-tentative-ttl-s must be at least 1, --ingest-workers at least 0")
    if not 0 <= args.port <= 65535:
        parser.error("--port must be between 0 and 65535")
    _log_to_stderr()
    config = GatewayConfig(
        lanes=LaneLimits(queue_commands_max=args.queue_commands_max),
        cart_tentative_ttl_s=args.cart_tentative_ttl_s,
        # A fault point for tests: a pause between a cart's two phases.
        cart_confirm_delay_s=float(os.environ.get("AVAILABILITY_FAULT_CART_CONFIRM_DELAY_S", 0)))
    options = ServeOptions(host=args.host, port=args.port, partitions=args.partitions,
                           gateways=getattr(args, "gateways", 1), ray_address=args.ray_address,
                           ray_namespace=args.ray_namespace, config=config,
                           mappings_dir=args.mappings, **metrics,
                           **({"durability": _durability(parser, args, args.ray_namespace),
                               "data_dir": args.data_dir, "ingest_workers": args.ingest_workers,
                               "erp_url": args.erp_url}
                              if args.command == "serve" else {}))
    (serve if args.command == "serve" else serve_gateway)(options)
    return 0


def _add_sim_parser(commands) -> None:
    from loadtest import erp_config  # not erp_sim: aiohttp loads only when a simulator runs

    sim_parser = commands.add_parser("sim", help="simulators of the outside world")
    simulators = sim_parser.add_subparsers(dest="simulator", required=True)
    erp_config.build_parser(simulators.add_parser(
        "erp", help="the generic REST ERP (DESIGN section 5): SQLite ledger, idempotency "
                    "keys, rate limit, latency, errors, outages, asynchronous acceptance"))


def _sim(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    from loadtest import erp_sim

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


def _log_to_stderr() -> None:
    from engine import logs

    logs.configure()


if __name__ == "__main__":
    sys.exit(main())
