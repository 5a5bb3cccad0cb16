"""Smoke runs of `availability loadtest flash-sale` (plain and --chaos) and `capacity`."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.e2e.conftest import AVAILABILITY
from tests.integration.conftest import REDIS_URL

COMMAND_TIMEOUT_S = 240
SMALL_SALE = ("--duration", "3", "--buyers", "600", "--skus", "3", "--stock", "50",
              "--hold-ttl-s", "2", "--think-s", "0.3", "--concurrency", "64",
              "--no-progress")


def loadtest(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*AVAILABILITY, "loadtest", *args], capture_output=True, text=True,
                          timeout=COMMAND_TIMEOUT_S)


def test_flash_sale_measures_three_targets_and_never_oversells_the_engine(serve, tmp_path):
    """A small flash sale against the running engine, Redis+Lua and PostgreSQL (or skipped):
    every target reports the issue's fields, the engine oversells nothing, and the report
    is written."""
    figures_path, report_path = tmp_path / "flash.json", tmp_path / "flash.html"
    done = loadtest("flash-sale", *SMALL_SALE, "--target", serve.target, "--redis-url",
                    REDIS_URL, "--postgres-pool", "4", "--json", str(figures_path),
                    "--report", str(report_path))
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(figures_path.read_text())
    for name in ("engine", "redis_lua", "postgres"):
        assert {"ops_per_s", "p50_ms", "p99_ms", "held", "rejected", "oversold"} <= set(
            figures[name]), name
    engine = figures["engine"]
    assert engine["status"] == "ok" and figures["redis_lua"]["status"] == "ok"
    assert engine["oversold"] == 0 and engine["readback_problems"] == []
    assert engine["held"] > 0 and engine["rejected"] > 0  # 600 buyers for 150 units
    assert figures["postgres"]["status"] in ("ok", "skipped")
    assert report_path.read_text().count("data:image/png;base64,") == 5
    assert "engine_vs_redis_lua" in done.stdout


def test_flash_sale_closed_curve_rates_each_target_at_its_own_pace(serve, tmp_path):
    """The saturating curve against the running engine and Redis+Lua: buyers are begun as
    Reserves are answered, throughput is taken over that window, and nothing oversells."""
    figures_path = tmp_path / "closed.json"
    done = loadtest("flash-sale", *SMALL_SALE, "--arrival", "closed", "--targets",
                    "engine,redis_lua", "--target", serve.target, "--redis-url", REDIS_URL,
                    "--json", str(figures_path))
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(figures_path.read_text())
    for name in ("engine", "redis_lua"):
        assert figures[name]["saturated_s"] > 0 and figures[name]["ops_per_s"] > 0, name
        assert figures[name]["oversold"] == 0, name
    assert figures["engine"]["held"] > 0 and figures["engine"]["rejected"] > 0
    assert "open arrival curve" not in done.stdout


def test_flash_sale_refuses_bad_options_naming_them():
    """Bad input is refused before anything starts, with the option named."""
    done = loadtest("flash-sale", "--targets", "engine,mysql")
    assert done.returncode == 2 and "--targets" in done.stderr
    done = loadtest("flash-sale", "--chaos", "--target", "127.0.0.1:1")
    assert done.returncode == 2 and "--chaos" in done.stderr


def test_flash_sale_chaos_loses_and_doubles_nothing_acknowledged(ray_address, tmp_path):
    """A partition actor killed, a gateway killed and Redis paused during a short sale: every
    fault is injected and reported, and the read-back matches what was acknowledged."""
    figures_path = tmp_path / "chaos.json"
    done = loadtest("flash-sale", *SMALL_SALE, "--duration", "6", "--buyers", "900",
                    "--targets", "engine", "--chaos", "--chaos-pause-s", "1",
                    "--partitions", "2", "--ray-address", ray_address,
                    "--json", str(figures_path))
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(figures_path.read_text())
    costs = figures["chaos"]["costs"]
    assert [costs[name]["what"].split()[0] for name in costs] == ["ray.kill", "SIGKILL",
                                                                  "SIGSTOP"]
    assert figures["chaos"]["lost_or_doubled"] == "none"
    assert figures["engine"]["oversold"] == 0


@pytest.mark.skipif(shutil.which("h2load") is None, reason="h2load (nghttp2-client) missing")
def test_capacity_steps_h2load_against_the_engine_and_the_bare_server(serve, tmp_path):
    """Two short h2load steps per body: req/s for the engine and the bare server, the
    saturation point, the ratio, and exactly one unit reserved by the replays."""
    figures_path = tmp_path / "capacity.json"
    done = loadtest("capacity", "--target", serve.target, "--steps", "1,8", "--duration",
                    "0.5", "--json", str(figures_path), "--report", str(tmp_path / "c.html"))
    assert done.returncode == 0, done.stderr[-3000:]
    bodies = json.loads(figures_path.read_text())["capacity"]["bodies"]
    assert set(bodies) == {"reserve_replay", "get_availability"}
    for measured in bodies.values():
        assert [step["concurrency"] for step in measured["engine"]] == [1, 8]
        assert measured["engine_peak_per_s"] > 0 and measured["ratio"] > 0
    assert bodies["reserve_replay"]["reserved_after"] == 1
