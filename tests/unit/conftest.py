"""Unit tests run without Ray, Redis or a network: starting Ray here is a test bug."""

import pytest


@pytest.fixture(autouse=True)
def _no_ray(monkeypatch):
    try:
        import ray
    except ImportError:
        return
    def refuse(*args, **kwargs):
        raise RuntimeError("unit tests must not start Ray; use tests/integration")
    monkeypatch.setattr(ray, "init", refuse)
