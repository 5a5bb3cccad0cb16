"""Test-wide settings: hypothesis profiles (`--hypothesis-profile long` for long runs), the
Redis of the integration and e2e tests, and one Ray instance per session, started only when
an integration or e2e test asks for it."""

import os
import tempfile
import uuid

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile("ci", max_examples=200, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("long", max_examples=5_000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci")


@pytest.fixture(scope="session")
def ray_address() -> str:
    """Start Ray once for the whole session, on first use, and give its cluster address.

    Integration tests start partition actors in it; e2e tests start `availability serve`
    with `--ray-address` so every serve joins this one instead of starting its own.
    Unit tests never ask for it (tests/unit/conftest.py makes ray.init raise there).
    """
    import ray

    ray.init(namespace=f"tests-{uuid.uuid4().hex[:12]}", include_dashboard=False, num_cpus=4,
             configure_logging=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


TEST_REDIS_URL = "AVAILABILITY_TEST_REDIS_URL"
_private_redis = None


def pytest_configure(config):
    """Use the Redis at 127.0.0.1:6379 when one answers (or the one the variable names);
    otherwise start a private embedded one for the session, before any test module reads
    the variable."""
    global _private_redis
    if TEST_REDIS_URL in os.environ:
        return
    import redis

    try:
        redis.Redis(socket_connect_timeout=1).ping()
    except redis.ConnectionError:
        from engine.embedded_redis import start_embedded_redis

        _private_redis = start_embedded_redis(tempfile.mkdtemp(prefix="availability-redis-"))
        os.environ[TEST_REDIS_URL] = _private_redis.url


def pytest_unconfigure(config):
    if _private_redis is not None:
        _private_redis.stop()
