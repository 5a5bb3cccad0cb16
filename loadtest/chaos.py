"""Faults during a flash-sale on the engine: a partition actor, a gateway, then Redis paused."""

from __future__ import annotations

import asyncio
import bisect
import os
import signal
from collections.abc import Callable, Mapping, Sequence

from loadtest.engine_process import EngineProcess
from loadtest.flash_run import Fault

# When each fault strikes, as a share of --duration.
FAULT_AT_SHARES = {"partition_kill": 0.25, "gateway_kill": 0.5, "redis_pause": 0.75}
STEADY = "steady"


def phase_of(duration_s: float) -> Callable[[float], str]:
    """Name the phase an instant belongs to: steady, or the last fault struck before it."""
    starts = sorted((share * duration_s, name) for name, share in FAULT_AT_SHARES.items())
    times = [at_s for at_s, _ in starts]

    def phase(at_s: float) -> str:
        index = bisect.bisect_right(times, at_s)
        return STEADY if index == 0 else starts[index - 1][1]
    return phase


def faults(engine: EngineProcess, duration_s: float, partitions: int, pause_s: float,
           redis_url: str | None) -> list[Fault]:
    """The three faults against a running engine, at FAULT_AT_SHARES of the run."""
    at = {name: share * duration_s for name, share in FAULT_AT_SHARES.items()}
    return [
        (at["partition_kill"], "partition_kill",
         lambda: asyncio.to_thread(kill_partition, engine.namespace, partitions - 1)),
        (at["gateway_kill"], "gateway_kill", lambda: kill_gateway(engine)),
        (at["redis_pause"], "redis_pause", lambda: pause_redis(engine, pause_s, redis_url)),
    ]


def kill_partition(namespace: str, partition: int) -> str:
    """Kill one partition actor's process through Ray; Ray restarts it and it recovers."""
    import ray

    from engine.partition_actor import actor_name

    handle = ray.get_actor(actor_name(partition), namespace=namespace)
    ray.kill(handle, no_restart=False)
    return f"ray.kill of {actor_name(partition)} (Ray restarts it from its journal)"


async def kill_gateway(engine: EngineProcess) -> str:
    """SIGKILL one extra gateway process; the port stays served by the others."""
    pids = engine.gateway_pids()
    if not pids:
        raise RuntimeError("no extra gateway process to kill (serve needs --gateways 2)")
    os.kill(pids[0], signal.SIGKILL)
    return f"SIGKILL of gateway process {pids[0]}"


async def pause_redis(engine: EngineProcess, pause_s: float, redis_url: str | None) -> str:
    """SIGSTOP the embedded redis-server for `pause_s`, or CLIENT PAUSE an external one."""
    pid = engine.redis_pid()
    if pid is not None:
        os.kill(pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(pause_s)
        finally:
            os.kill(pid, signal.SIGCONT)
        return f"SIGSTOP of redis-server {pid} for {pause_s:g} s, then SIGCONT"
    if redis_url is None:
        raise RuntimeError("no Redis to pause")
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    try:
        await client.execute_command("CLIENT", "PAUSE", int(pause_s * 1000), "ALL")
    finally:
        await client.aclose()
    await asyncio.sleep(pause_s)
    return f"CLIENT PAUSE {int(pause_s * 1000)} ALL on {redis_url}"


def costs(phases: Mapping[str, dict], fault_log: Sequence[dict]) -> dict:
    """Per fault: what it cost against the steady phase (errors, failed ops, latency)."""
    steady = phases.get(STEADY, {})
    done = {entry["name"]: entry for entry in fault_log}
    report = {}
    for name in FAULT_AT_SHARES:
        phase = phases.get(name, {})
        report[name] = {
            "what": done.get(name, {}).get("what", "not reached"),
            "at_s": done.get(name, {}).get("at_s"),
            "ops": phase.get("ops", 0),
            "attempt_errors": phase.get("attempt_errors", 0),
            "failed_ops": phase.get("failed_ops", 0),
            "p50_ms": phase.get("p50_ms", 0.0), "p99_ms": phase.get("p99_ms", 0.0),
            "max_ms": phase.get("max_ms", 0.0),
            "steady_p99_ms": steady.get("p99_ms", 0.0),
        }
    return report
