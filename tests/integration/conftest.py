"""Partition actors in the session's Ray, and in-process gateways over them on port 0."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from pathlib import Path

import grpc
import pytest
import redis

from engine.config import DurabilityConfig, GatewayConfig
from engine.journal_store import connect, forget_keys
from engine.partition_actor import start_partitions
from gateway.partitions import RayPartitions
from gateway.server import Gateway
from tests.integration.serving import use_session_loop

READY_TIMEOUT_S = 60.0
# The Redis integration and e2e tests journal to (keys under a fresh prefix per test).
REDIS_URL = os.environ.get("AVAILABILITY_TEST_REDIS_URL", "redis://127.0.0.1:6379")


def pytest_collection_modifyitems(items):
    use_session_loop(items, Path(__file__).parent)


@pytest.fixture
def client():
    """A journal-style (bytes) client of the test Redis."""
    client = connect(REDIS_URL)
    yield client
    client.close()


@pytest.fixture
def prefix(client):
    """A key prefix of this test's own; its keys are deleted at teardown."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    yield prefix
    keys = list(client.scan_iter(match=f"{prefix}:*"))
    if keys:
        client.delete(*keys)


@pytest.fixture
def actors(ray_address):
    """Start `actors(count)` partition actors in a fresh namespace: (namespace, handles).
    With `journal=True` (or a `redis_url`) they journal to Redis under the namespace's keys.
    They are killed for good, and their keys deleted, at teardown."""
    import ray

    started, journaled = [], []

    def start(count: int, journal: bool = False, redis_url: str = REDIS_URL,
              **durability) -> tuple[str, list]:
        namespace = f"integration-{uuid.uuid4().hex[:12]}"
        config = DurabilityConfig(redis_url=redis_url, journal=journal, key_prefix=namespace,
                                  **durability)
        handles = start_partitions(count, namespace, durability=config)
        started.extend(handles)
        if journal:
            journaled.append((redis_url, namespace))
        return namespace, handles

    yield start
    for handle in started:
        ray.kill(handle, no_restart=True)
    for redis_url, namespace in journaled:
        with contextlib.suppress(redis.RedisError):  # a test may have stopped that Redis
            forget_keys(redis_url, namespace)


@pytest.fixture
async def gateway():
    """Serve `await gateway(handles, **config)` in this process on port 0; returns its target.
    Waits until health says SERVING; stopped at teardown."""
    started: list[Gateway] = []

    async def start(handles, **config) -> str:
        served = Gateway(RayPartitions(handles), GatewayConfig(**config))
        started.append(served)
        port = await served.start("127.0.0.1", 0)
        await asyncio.wait_for(served.serving.wait(), READY_TIMEOUT_S)
        return f"127.0.0.1:{port}"

    yield start
    for served in reversed(started):
        await served.stop(grace_s=1.0)


@pytest.fixture
async def channel_to():
    """Open `channel_to(target)` channels; all are closed at teardown."""
    opened: list[grpc.aio.Channel] = []

    def open_channel(target: str) -> grpc.aio.Channel:
        opened.append(grpc.aio.insecure_channel(target))
        return opened[-1]

    yield open_channel
    for channel in opened:
        await channel.close()
