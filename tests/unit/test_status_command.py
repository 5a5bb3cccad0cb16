"""`availability status` renders the dashboard document as one fixed-width terminal screen."""

from __future__ import annotations

from engine.status_command import render

DOCUMENT = {
    "role": "serve", "generated_at_s": 1_800_000_000.0,
    "rpc": {"window_s": 60.0, "requests": 1234, "requests_per_s": 20.5, "methods": [
        {"method": "Reserve", "requests": 1200, "requests_per_s": 20.0, "p50_ms": 1.2,
         "p99_ms": 6.5}]},
    "refusals": [{"method": "Reserve", "code": "INVALID_ARGUMENT", "count": 3}],
    "partitions": [
        {"partition": 0, "ready": True, "queued": 12, "in_flight": 2, "seq": 123456,
         "journal_lag_commands": 3456, "snapshot_age_s": 42.0, "holds_live": 900,
         "holds_expiring": 15, "journal_write_ms_p99": 1.75,
         "readers": {"erp-sync": {"backlog_commands": 77, "lag_s": 1.5}}},
        {"partition": 1, "ready": False, "queued": None, "readers": {}}],
    "ingest": {"lag_entries": 5, "pending_entries": 2, "dlq_entries": 1, "sequence_gaps": 4,
               "sequence_regressions": 0},
    "erp": {"reader_registered": True, "backlog_commands": 77, "lag_s": 1.5, "breaker": None},
    "hot_skus": [{"sku": "SKU-HOT", "reserve_lines": 40}],
    "errors": ["ingest backlog unknown: Connection refused"],
    "not_measured": ["channel divergence", "oversell exposure"],
}


def test_render_lines_up_one_row_per_partition_under_the_headings():
    """Each partition is one row, its figures right-aligned under fixed-width headings."""
    lines = render(DOCUMENT, "http://127.0.0.1:9100").splitlines()
    heading = next(line for line in lines if line.lstrip().startswith("PART"))
    rows = lines[lines.index(heading) + 1:lines.index(heading) + 3]
    assert all(len(row) == len(heading) for row in rows)
    assert rows[0].split() == ["0", "yes", "12", "2", "123,456", "3,456", "42.0s", "900", "15",
                               "1.75ms", "77"]
    assert rows[1].split()[:3] == ["1", "NO", "-"]
    assert max(map(len, [heading, *rows])) <= 100


def test_render_shows_backlogs_refusals_hot_skus_and_warnings():
    """Ingest and ERP backlogs, refusals, hot SKUs, poll errors and unmeasured figures."""
    screen = render(DOCUMENT)
    assert "lag 5 entries, pending 2, dead letters 1, sequence gaps 4" in screen
    assert "backlog 77 commands, lag 1.5s" in screen
    assert "Reserve INVALID_ARGUMENT x3" in screen
    assert "SKU-HOT (40)" in screen
    assert "warning    ingest backlog unknown" in screen
    assert "Reserve 20.0/s p50 1.20ms p99 6.50ms" in screen
    assert "not measured yet: channel divergence, oversell exposure" in screen


def test_render_of_an_engine_not_yet_polled_says_so():
    """A document with no partition figures and no ERP reader reads as such, not as zeros."""
    screen = render({"role": "serve", "partitions": [], "erp": {}})
    assert "(no partition figures yet)" in screen
    assert "no erp-sync reader registered" in screen
    assert "no sample yet" in screen


def test_render_shows_each_webhook_channels_divergence():
    """Divergence, exposure and units at risk per channel (network/locations), with lag."""
    channel = {"ready": True, "publish_lag_s": 2.5, "velocity_buffer_units": 8,
               "network": {"diverged_units": 14, "exposed_items": 2, "units_at_risk": 3},
               "location": {"diverged_units": 20, "exposed_items": 4, "units_at_risk": 5}}
    screen = render({**DOCUMENT, "channels": {"market": channel}})
    line = next(line for line in screen.splitlines() if "market" in line)
    assert line.split() == ["market", "diverged", "14/20", "exposed", "2/4", "at", "risk",
                            "3/5", "lag", "2.5s", "velocity", "-8"]
    assert len(line) <= 100
    assert "no publisher running" in render({**DOCUMENT, "channels": {}})
    assert "channels" not in render(DOCUMENT).split("rpc")[0]
