"""The capacity command's pure parts: the saturation point and the answer check."""

from __future__ import annotations

import pytest

from loadtest.bench_serve import H2loadRun
from loadtest.capacity import check_answers, saturation_point


def step(concurrency: int, rate: float) -> dict:
    return {"concurrency": concurrency, "requests_per_s": rate}


def test_saturation_point_is_the_fewest_streams_near_the_peak():
    """Past 16 streams throughput grows less than 10%: 16 is where it saturates."""
    steps = [step(1, 100), step(4, 380), step(16, 950), step(64, 1000), step(256, 990)]
    assert saturation_point(steps) == 16


def test_check_answers_refuses_answers_without_messages():
    """DATA bytes short of one message per answer mean some calls were refused."""
    ok = H2loadRun(100.0, 12, 10, 0, 10, 10 * 50, 1.0, 2.0)
    check_answers(ok, 50, "ok")
    with pytest.raises(RuntimeError, match="refused"):
        check_answers(H2loadRun(100.0, 12, 10, 0, 10, 9 * 50, 1.0, 2.0), 50, "short")
    with pytest.raises(RuntimeError, match="failed"):
        check_answers(H2loadRun(100.0, 12, 10, 2, 10, 10 * 50, 1.0, 2.0), 50, "failed")
