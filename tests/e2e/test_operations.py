"""Operations on a real `availability serve --metrics-port 0`: Prometheus metrics that move under
traffic, the ops dashboard rendered in headless Chromium, and `availability status`."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.request

import grpc
import pytest
from inventory.v1 import availability_pb2 as pb
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import AVAILABILITY, _read_until_listening
from tests.integration.conftest import REDIS_URL
from tests.integration.serving import (
    LOC,
    RPC_TIMEOUT_S,
    availability,
    receive,
    refusal_of,
    reserve,
    sku_on,
    unique,
    wait_until,
)

SERVE_PARTITIONS = 2
SERVE_ARGS = ("--metrics-port", "0")
METRICS_LINE = re.compile(r"metrics and dashboard on (?P<url>http://\S+?)/?$")
# The poller reads the partitions every 2 s; a loaded machine may take a few rounds.
POLLED_WITHIN_S = 30.0
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_TIMEOUT_S = 60.0
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def metrics_url(serve) -> str:
    """The serve's metrics address, from the line it printed before serving."""
    for line in serve.printed:
        match = METRICS_LINE.search(line.strip())
        if match:
            return match["url"]
    raise AssertionError(f"serve printed no metrics line: {serve.printed!r}")


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as answer:
        return answer.read()


def scrape(metrics_url: str) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics, keyed by (name, sorted labels)."""
    samples = {}
    for family in text_string_to_metric_families(fetch(f"{metrics_url}/metrics").decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def dashboard(metrics_url: str) -> dict:
    return json.loads(fetch(f"{metrics_url}/api/dashboard"))


async def traffic(stub, sku: str, holds: int = 3) -> None:
    """A receipt, `holds` Reserves of `sku`, a GetAvailability and one invalid Reserve."""
    await receive(stub, sku, 100)
    for _ in range(holds):
        answer = await reserve(stub, unique("hold"), (sku, 1))
        assert answer.status == pb.RESERVATION_STATUS_HELD
    await availability(stub, sku)
    invalid = pb.ReserveRequest(idempotency_key=unique("bad"), lines=[
        pb.ReserveLine(sku=sku, location=LOC, quantity=0)])
    error = await refusal_of(stub.Reserve(invalid, timeout=RPC_TIMEOUT_S))
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_metrics_move_under_traffic_with_their_labels(stub, metrics_url):
    """Reserve, GetAvailability, ApplyMovements and a refused Reserve move the RPC histograms,
    refusals, result codes and the partition's batch sizes; the poll brings holds and journal
    write latency from the actor under its partition label."""
    sku = sku_on(1, SERVE_PARTITIONS, "ops-metrics")
    before = scrape(metrics_url)
    await traffic(stub, sku)
    after = scrape(metrics_url)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    count = "availability_rpc_duration_seconds_count"
    assert moved(count, method="Reserve", code="OK") >= 3
    assert moved(count, method="Reserve", code="INVALID_ARGUMENT") == 1
    assert moved(count, method="GetAvailability", code="OK") >= 1
    assert moved(count, method="ApplyMovements", code="OK") >= 1
    assert moved("availability_rpc_refusals_total", method="Reserve",
                 code="INVALID_ARGUMENT") == 1
    assert moved("availability_reservations_total", status="HELD") >= 3
    assert moved("availability_reserve_lines_total", code="OK") >= 3
    assert moved("availability_movement_results_total", code="APPLIED") >= 1
    assert moved("availability_partition_batch_commands_count", partition="1") >= 5
    assert ("availability_lane_queued_commands", (("partition", "1"),)) in after
    assert all(name.startswith("availability_") for name, _ in after)

    def polled():
        samples = scrape(metrics_url)
        return (value(samples, "availability_partition_holds_live", partition="1") >= 3
                and value(samples, "availability_partition_journal_write_seconds_count",
                          partition="1") >= 1 and samples)

    samples = await wait_until(polled, POLLED_WITHIN_S, "the poll brought partition 1's holds")
    assert value(samples, "availability_partition_up", partition="0") == 1
    assert value(samples, "availability_partition_journal_up", partition="1") == 1
    assert ("availability_partition_snapshot_age_seconds", (("partition", "1"),)) in samples
    assert ("availability_ingest_dlq_entries", ()) in samples


async def test_dashboard_renders_live_figures_in_chromium(stub, metrics_url, tmp_path):
    """The page at / shows the hot SKU just reserved and a non-zero request count once its
    script has run in a real headless Chromium, and the test's screenshot is a real PNG."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    sku = sku_on(0, SERVE_PARTITIONS, "HOT-DASH")
    await traffic(stub, sku, holds=25)
    await wait_until(lambda: any(hot["sku"] == sku for hot in dashboard(metrics_url)["hot_skus"]),
                     POLLED_WITHIN_S, "the dashboard JSON lists the hot SKU")
    page = f"{metrics_url}/"
    dom = chromium(tmp_path, "--dump-dom", page).stdout
    assert sku in dom, "the hot SKU is not in the rendered page"
    assert 'id="tile-rps"' in dom and "since start" in dom
    requests_seen = re.search(r'id="tile-rps".*?class="sub">([\d,]+) since start', dom)
    assert requests_seen and int(requests_seen[1].replace(",", "")) > 0
    assert "Reserve" in dom and "live" in dom

    screenshot = tmp_path / "dashboard.png"
    chromium(tmp_path, f"--screenshot={screenshot}", page)
    picture = screenshot.read_bytes()
    assert picture.startswith(PNG_MAGIC) and len(picture) > 20_000


def chromium(tmp_path, action: str, url: str) -> subprocess.CompletedProcess:
    """Headless Chromium with a fresh profile, letting the page's script run for 5 s of
    virtual time before `action` (--dump-dom or --screenshot=FILE)."""
    profile = tmp_path / f"profile-{unique('chromium')}"
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", f"--user-data-dir={profile}",
         "--disable-gpu", "--window-size=1280,900", "--virtual-time-budget=5000", action, url],
        capture_output=True, text=True, timeout=CHROMIUM_TIMEOUT_S, check=True)


def test_status_shows_every_partition_ready(serve, metrics_url):
    """`availability status` prints one row per ready partition and exits 0; --json is the
    dashboard document."""
    shown = subprocess.run([*AVAILABILITY, "status", "--metrics-url", metrics_url],
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr + shown.stdout
    rows = [line.split() for line in shown.stdout.splitlines()]
    assert [row[:2] for row in rows if row[:1] in (["0"], ["1"])] == [["0", "yes"],
                                                                        ["1", "yes"]]
    assert "ingest" in shown.stdout and "erp sync" in shown.stdout
    as_json = subprocess.run([*AVAILABILITY, "status", "--metrics-url", metrics_url, "--json"],
                             capture_output=True, text=True, timeout=60)
    assert json.loads(as_json.stdout)["role"] == "serve"


def test_ingest_serves_its_own_metrics(serve, ray_address, tmp_path):
    """`availability ingest --metrics-port 0` prints its address and exports its workers'
    counters and every partition's figures, polled through its own handles."""
    stderr_path = tmp_path / "ingest.stderr"
    with open(stderr_path, "w") as stderr:
        process = subprocess.Popen(
            [*AVAILABILITY, "ingest", "--ray-address", ray_address, "--ray-namespace",
             serve.namespace, "--partitions", str(SERVE_PARTITIONS), "--redis-url", REDIS_URL,
             "--metrics-port", "0"],
            stdout=subprocess.PIPE, stderr=stderr, text=True, start_new_session=True)
    try:
        url = _read_until_listening(process, "availability ingest", stderr_path,
                                    pattern=METRICS_LINE)["url"]

        def polled():
            samples = scrape(url)
            return all(value(samples, "availability_partition_up", partition=str(p)) == 1
                       for p in range(SERVE_PARTITIONS)) and samples

        samples = wait_until_sync(polled)
        assert ("availability_ingest_entries_total", (("outcome", "applied"),)) in samples
        assert ("availability_lane_queued_commands", (("partition", "0"),)) in samples
        assert dashboard(url)["role"] == "ingest"
    finally:
        process.terminate()
        process.wait(30)


def wait_until_sync(predicate, timeout_s: float = POLLED_WITHIN_S):
    """Poll a plain predicate until it answers something truthy (a deadline, not a sleep)."""
    deadline = time.monotonic() + timeout_s
    while not (answer := predicate()):
        assert time.monotonic() < deadline, f"not true within {timeout_s}s"
        time.sleep(0.1)
    return answer
