"""Follow one correlation id through the journals and into the ERP: `availability trace ID`.

The id is on the holds and movements that carried it (journaled with their commands); a
hold's commit, release and shipment are found through its reservation id, and the ERP
plan that carried a change through the sync job's history of finished plans.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import NamedTuple

import redis

from engine import journal
from engine.erp_outbox import SyncState
from engine.journal_store import JournalStore
from engine.model import Commit, ConfirmHold, Movement, MovementType, Release, Reserve


class Step(NamedTuple):
    partition: int
    seq: int
    at_unix_ms: int
    what: str
    detail: str
    correlation_id: str
    erp: str  # the ERP batches that carried its change, "" if none was due or none yet


def trace(client: redis.Redis, prefix: str, correlation_id: str,
          entries_max: int = 200_000) -> list[Step]:
    """Every journaled step of `correlation_id`'s path, oldest first, per partition."""
    partitions = int(client.get(f"{prefix}:partitions") or 0)
    plans = _finished_plans(client, prefix)
    steps = []
    for partition in range(partitions):
        store = JournalStore(client, partition, prefix)
        reservations: set[str] = set()
        for seq, now_ms, command in _commands(store, entries_max):
            step = _step_of(command, correlation_id, reservations)
            if step is None:
                continue
            what, detail, ledger = step
            erp = _carrier(plans, partition, seq) if ledger else ""
            steps.append(Step(partition, seq, now_ms, what, detail,
                              getattr(command, "correlation_id", ""), erp))
    return steps


def _commands(store: JournalStore, entries_max: int) -> Iterator[tuple[int, int, object]]:
    """(seq, applied_at_ms, command) of the journal still in Redis, oldest first."""
    for count, raw in enumerate(store.entries_after(0)):
        if count >= entries_max:
            return
        batch = journal.decode(raw)
        for offset, command in enumerate(batch.commands):
            yield batch.first_seq + offset, batch.now_ms, command


def _step_of(command, correlation_id: str, reservations: set[str]):
    """(what, detail, changes the ERP's ledger) if the command is on the path, else None."""
    kind = type(command)
    if kind is Reserve and command.correlation_id == correlation_id:
        reservations.add(command.reservation_id)
        lines = ", ".join(f"{line.quantity} x {line.sku} at {line.location}"
                          for line in command.lines)
        return "RESERVE", f"{command.reservation_id}: {lines}", False
    if kind in (Commit, Release, ConfirmHold) and command.reservation_id in reservations:
        return kind.__name__.upper(), command.reservation_id, kind is not ConfirmHold
    if kind is Movement and (command.correlation_id == correlation_id
                             or command.reservation_id in reservations):
        return (MovementType(command.type).name,
                f"{command.event_id} from {command.source}: {command.quantity} x "
                f"{command.sku} at {command.location}", True)
    return None


def _finished_plans(client: redis.Redis, prefix: str) -> list[tuple[dict, list, int]]:
    """(reached per partition, batch keys, finished at) of each finished plan, oldest first."""
    plans = []
    for _, fields in client.xrange(SyncState(client, prefix).history_key):
        reached = {int(p): seq for p, seq in json.loads(fields[b"reached"]).items()}
        plans.append((reached, json.loads(fields[b"keys"]),
                      int(fields[b"finished_at_unix_ms"])))
    return plans


def _carrier(plans: list, partition: int, seq: int) -> str:
    """The first finished plan that read past `seq` in this partition carried its change."""
    for reached, keys, _ in plans:
        if reached.get(partition, 0) >= seq:
            return ", ".join(keys) if keys else "(netted to nothing)"
    return ""


def add_parser(commands, env, data_dir: str) -> None:
    parser = commands.add_parser(
        "trace", help="follow a correlation id through the journals and into the ERP")
    parser.add_argument("correlation_id")
    parser.add_argument("--redis-url", default=env("REDIS_URL", None),
                        help="the engine's Redis (default: serve's embedded one in --data-dir)")
    parser.add_argument("--data-dir", default=env("DATA_DIR", data_dir))
    parser.add_argument("--ray-namespace", default=env("RAY_NAMESPACE", "availability"),
                        help="the engine's namespace (serve's --ray-namespace)")
    parser.add_argument("--entries-max", type=int, default=200_000,
                        help="journal entries read per partition at most (default 200000)")
    parser.add_argument("--json", action="store_true", help="one JSON list of steps")


def run(args, redis_url: str) -> int:
    import datetime
    import sys

    from engine.journal_store import connect

    try:
        steps = trace(connect(redis_url), args.ray_namespace, args.correlation_id,
                      args.entries_max)
    except redis.RedisError as error:
        print(f"availability trace: Redis at {redis_url}: {error}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps([step._asdict() for step in steps]))
        return 0 if steps else 1
    if not steps:
        print(f"no journaled command carries correlation id {args.correlation_id!r} "
              "(or it was trimmed behind a snapshot)")
        return 1
    for step in steps:
        when = datetime.datetime.fromtimestamp(step.at_unix_ms / 1000, datetime.UTC)
        erp = f"  -> ERP {step.erp}" if step.erp else ""
        print(f"{when:%Y-%m-%d %H:%M:%S.%f}"[:-3] + f"Z  partition {step.partition} "
              f"seq {step.seq:<8} {step.what:<10} {step.detail}{erp}")
    return 0
