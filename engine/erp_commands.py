"""`availability erp-sync` and `availability reconcile`: their options and their runs."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys

import redis

from engine.config import ErpSyncConfig
from engine.embedded_redis import DATA_DIR
from engine.erp_client import ErpRejected, ErpRetryLater, RestErp
from engine.journal_store import connect

log = logging.getLogger(__name__)
# A stopped job finishes the batches in flight for this long, then leaves the plan to resume.
STOP_GRACE_S = 10.0


def add_parsers(commands, env) -> None:
    sync_parser = commands.add_parser(
        "erp-sync", help="drain the partitions' journals into the ERP (net changes, batched)")
    reconcile_parser = commands.add_parser(
        "reconcile", help="compare the ERP's on-hand with the engine's; --repair fixes drift")
    for parser in (sync_parser, reconcile_parser):
        parser.add_argument("--erp-url", required=env("ERP_URL", None) is None,
                            default=env("ERP_URL", None),
                            help="base URL of the ERP's generic REST API")
        parser.add_argument("--redis-url", default=env("REDIS_URL", None),
                            help="the engine's Redis (default: serve's embedded one in "
                                 "--data-dir)")
        parser.add_argument("--data-dir", default=env("DATA_DIR", DATA_DIR))
        parser.add_argument("--ray-namespace", default=env("RAY_NAMESPACE", "availability"),
                            help="the engine's namespace (serve's --ray-namespace), which "
                                 "prefixes its Redis keys")
        parser.add_argument("--erp-source", action="append", dest="erp_sources",
                            help="source name of movements the ERP itself posts (repeatable; "
                                 "default erp): never sent back to it")
    defaults = ErpSyncConfig()
    sync_parser.add_argument("--metrics-port", type=int, default=env("METRICS_PORT", None),
                             help="serve Prometheus /metrics on this port (0: any free one)")
    sync_parser.add_argument("--metrics-host", default=env("METRICS_HOST", "127.0.0.1"))
    for name, help_text in (
            ("window_s", "sum changes per SKU-location over this long before posting"),
            ("batch_lines_max", "lines per POST"),
            ("in_flight_max", "POSTs in flight at once"),
            ("request_timeout_s", "a POST unanswered this long is retried"),
            ("breaker_failures_max", "failures in a row that open the circuit breaker"),
            ("breaker_recovery_s", "seconds the breaker stays open before it probes")):
        default = getattr(defaults, name)
        sync_parser.add_argument(f"--{name.replace('_', '-')}", type=type(default),
                                 default=env(name.upper(), default),
                                 help=f"{help_text} (default {default})")
    reconcile_parser.add_argument("--json", action="store_true",
                                  help="print one JSON document: drift list and totals")
    reconcile_parser.add_argument("--repair", action="store_true",
                                  help="post the ERP's figure as an ADJUSTMENT (reason "
                                       "reconciliation) and record each exception")
    reconcile_parser.add_argument("--owner", default="inventory-control",
                                  help="who owns the recorded exceptions")
    reconcile_parser.add_argument("--wait-s", type=float, default=30.0,
                                  help="longest wait for the sync job's plan in flight")


def run(parser: argparse.ArgumentParser, args: argparse.Namespace, redis_url: str) -> int:
    config = _config(parser, args)
    client = connect(redis_url)
    try:
        partitions = int(client.get(f"{config.key_prefix}:partitions") or 0)
    except redis.RedisError as error:
        print(f"availability {args.command}: Redis at {redis_url}: {error}", file=sys.stderr)
        return 1
    if not partitions:
        print(f"availability {args.command}: no engine has journaled under "
              f"{config.key_prefix!r} in this Redis (start `availability serve` first)",
              file=sys.stderr)
        return 1
    if args.command == "erp-sync":
        return asyncio.run(_sync(args, client, partitions, config))
    return asyncio.run(_reconcile(args, client, partitions, config))


def _config(parser: argparse.ArgumentParser, args: argparse.Namespace) -> ErpSyncConfig:
    fields = {"key_prefix": args.ray_namespace,
              "erp_sources": tuple(args.erp_sources or ErpSyncConfig.erp_sources)}
    if args.command == "erp-sync":
        for name in ("window_s", "batch_lines_max", "in_flight_max", "request_timeout_s",
                     "breaker_failures_max", "breaker_recovery_s"):
            value = getattr(args, name)
            if value <= 0:
                parser.error(f"--{name.replace('_', '-')} must be above 0, not {value}")
            fields[name] = value
    return ErpSyncConfig(**fields)


async def _sync(args, client, partitions: int, config: ErpSyncConfig) -> int:
    from engine.erp_metrics import serve_metrics
    from engine.erp_sync import ErpSync

    erp = RestErp(args.erp_url, config.request_timeout_s)
    sync = ErpSync(client, erp, partitions, config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    # Registered before it says it drains: from here on its backlog is measured.
    await asyncio.to_thread(sync.register)
    metrics = ""
    if args.metrics_port is not None:
        port = serve_metrics(sync, args.metrics_port, args.metrics_host)
        metrics = f", metrics on {args.metrics_host}:{port}"
    print(f"availability erp-sync: draining {partitions} partitions into {args.erp_url}"
          f"{metrics}", flush=True)
    running = asyncio.create_task(sync.run(stop))
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
        # A plan in flight may finish; if the ERP is away it is left for the next job.
        await asyncio.wait({running}, timeout=STOP_GRACE_S)
    finally:
        stopping.cancel()
        running.cancel()
        outcome = (await asyncio.gather(running, return_exceptions=True))[0]
        await erp.close()
    if isinstance(outcome, BaseException) and not isinstance(outcome, asyncio.CancelledError):
        log.error("the sync job stopped: %s", outcome)
        return 1
    return 0


async def _reconcile(args, client, partitions: int, config: ErpSyncConfig) -> int:
    from engine.reconcile import reconcile, repair

    erp = RestErp(args.erp_url)
    try:
        comparison = await reconcile(client, erp, partitions, config, wait_s=args.wait_s)
    except (ErpRetryLater, ErpRejected) as error:
        print(f"availability reconcile: cannot read the ERP's on-hand: {error}",
              file=sys.stderr)
        return 2
    finally:
        await erp.close()
    repaired: list[str] = []
    if args.repair and comparison.drift:
        try:
            repaired = repair(client, comparison, config.erp_sources[0], args.owner,
                              f"{config.key_prefix}:exceptions")
        except ValueError as error:
            print(f"availability reconcile: {error}", file=sys.stderr)
            return 2
    print(_json_report(comparison, repaired) if args.json
          else _table_report(comparison, repaired))
    return 1 if comparison.drift and not repaired else 0


def _totals(comparison) -> dict:
    return {"items_compared": comparison.items_compared,
            "items_with_drift": len(comparison.drift),
            "erp_on_hand": sum(d.erp_on_hand for d in comparison.drift),
            "engine_on_hand": sum(d.engine_on_hand for d in comparison.drift),
            "difference": sum(d.difference for d in comparison.drift)}


def _json_report(comparison, repaired: list[str]) -> str:
    return json.dumps({"drift": [d._asdict() for d in comparison.drift],
                       "totals": _totals(comparison), "consistent": comparison.consistent,
                       "repaired": len(repaired), "repair_event_ids": repaired})


def _table_report(comparison, repaired: list[str]) -> str:
    totals = _totals(comparison)
    lines = [f"{'SKU':<24} {'LOCATION':<16} {'ERP':>10} {'ENGINE':>10} {'DIFF':>8}"]
    lines += [f"{d.sku:<24} {d.location:<16} {d.erp_on_hand:>10} {d.engine_on_hand:>10} "
              f"{d.difference:>+8}" for d in comparison.drift]
    lines.append(f"{totals['items_compared']} SKU-locations compared, "
                 f"{totals['items_with_drift']} with drift, net difference "
                 f"{totals['difference']:+d} (ERP minus engine)")
    if not comparison.consistent:
        lines.append("warning: the sync job delivered changes while comparing; "
                     "some drift may be in flight")
    if repaired:
        lines.append(f"{len(repaired)} ADJUSTMENT(s) posted onto availability:events "
                     "(reason reconciliation)")
    return "\n".join(lines)
