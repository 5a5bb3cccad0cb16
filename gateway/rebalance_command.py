"""`availability rebalance`: show the partition map, or move a virtual partition to an actor."""

from __future__ import annotations

import argparse
import asyncio
import json

from engine.embedded_redis import DATA_DIR


def add_parser(commands, env) -> None:
    parser = commands.add_parser(
        "rebalance", help="show the partition map, or move a virtual partition to an actor")
    parser.add_argument("vp", type=int, nargs="?",
                        help="the virtual partition to move (omit it to show the map)")
    parser.add_argument("--to", type=int, dest="to_actor",
                        help="the actor that takes the partition over (it must be running)")
    parser.add_argument("--show", action="store_true", help="print the map and stop")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--ray-address", default=env("RAY_ADDRESS", "auto"),
                        help="the Ray cluster the actors run in (default auto)")
    parser.add_argument("--ray-namespace", default=env("RAY_NAMESPACE", "availability"),
                        help="the engine's namespace (also its Redis key prefix)")
    parser.add_argument("--redis-url", default=env("REDIS_URL", None),
                        help="the Redis the partitions journal to (default: serve's embedded "
                             "one in --data-dir)")
    parser.add_argument("--data-dir", default=env("DATA_DIR", DATA_DIR))


def run(parser: argparse.ArgumentParser, args: argparse.Namespace, redis_url: str) -> int:
    from engine.journal_store import connect
    from engine.partition_map import PartitionMapStore
    from gateway import rebalance

    maps = PartitionMapStore(connect(redis_url), args.ray_namespace)
    if args.show or args.vp is None:
        found = maps.load()
        if found is None:
            print(f"no partition map under {maps.key!r}")
            return 1
        print(found.to_json() if args.json else "\n".join(rebalance.describe(found)))
        return 0
    if args.to_actor is None:
        parser.error("rebalance VP needs --to ACTOR")
    import ray

    from gateway.partitions import ActorControl

    ray.init(address=args.ray_address, namespace=args.ray_namespace, log_to_driver=False,
             configure_logging=False)
    try:
        done = asyncio.run(rebalance.move(ActorControl(args.ray_namespace), maps, args.vp,
                                          args.to_actor))
    finally:
        ray.shutdown()
    print(json.dumps(done.as_dict()) if args.json else
          f"virtual partition {done.vp}: actor {done.from_actor} -> {done.to_actor} at map "
          f"epoch {done.epoch} (switch {done.switch_ms:.0f} ms, drop {done.drop_ms:.0f} ms, "
          f"adopt {done.adopt_ms:.0f} ms, seq {done.seq})")
    return 0
