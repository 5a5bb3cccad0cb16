"""`availability status`: one terminal screen of a running engine, read from its dashboard JSON."""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import urllib.error
import urllib.request

FETCH_TIMEOUT_S = 5.0
ERP_READER = "erp-sync"
# (heading, width, how a partition's figure reads); a row fits a 100-column terminal.
_COLUMNS = (
    ("PART", 4, lambda p: str(p["partition"])),
    ("READY", 5, lambda p: _yes(p.get("ready"))),
    ("QUEUED", 7, lambda p: _number(p.get("queued"))),
    ("FLYING", 6, lambda p: _number(p.get("in_flight"))),
    ("SEQ", 10, lambda p: _number(p.get("seq"))),
    ("JRNL LAG", 9, lambda p: _number(p.get("journal_lag_commands"))),
    ("SNAP AGE", 8, lambda p: _seconds(p.get("snapshot_age_s"))),
    ("HOLDS", 8, lambda p: _number(p.get("holds_live"))),
    ("EXP 60s", 7, lambda p: _number(p.get("holds_expiring"))),
    ("WRITE p99", 9, lambda p: _ms(p.get("journal_write_ms_p99"))),
    ("ERP BKLG", 8, lambda p: _number(
        p.get("readers", {}).get(ERP_READER, {}).get("backlog_commands"))),
)


def add_parser(commands, env) -> None:
    parser = commands.add_parser(
        "status", help="one screen: partitions, queues, journal lag, ingest and ERP backlogs")
    parser.add_argument("--metrics-url", default=env("METRICS_URL", None),
                        required=env("METRICS_URL", None) is None,
                        help="the metrics port of a serve (serve --metrics-port), as "
                             "http://HOST:PORT")
    parser.add_argument("--json", action="store_true", help="print the dashboard JSON as is")


def run(args: argparse.Namespace) -> int:
    """0 when every partition is ready, 1 when one is not, 2 when the engine cannot be read."""
    url = args.metrics_url.rstrip("/") + "/api/dashboard"
    try:
        with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_S) as answer:
            document = json.load(answer)
    except (urllib.error.URLError, OSError, ValueError) as error:
        print(f"availability status: cannot read {url}: {error}", file=sys.stderr)
        return 2
    print(json.dumps(document, indent=2) if args.json else render(document, args.metrics_url))
    partitions = document.get("partitions") or []
    return 0 if partitions and all(p.get("ready") for p in partitions) else 1


def render(document: dict, source: str = "") -> str:
    """The dashboard document as a fixed-width screen."""
    at_s = document.get("generated_at_s")
    when = (datetime.datetime.fromtimestamp(at_s, datetime.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
            if at_s else "no sample yet")
    lines = [f"availability status: {document.get('role', '?')} {source} at {when}".rstrip(),
             "", " ".join(f"{heading:>{width}}" for heading, width, _ in _COLUMNS)]
    for partition in document.get("partitions") or []:
        lines.append(" ".join(f"{show(partition):>{width}}" for _, width, show in _COLUMNS))
    if not document.get("partitions"):
        lines.append("  (no partition figures yet)")
    lines += ["", _ingest_line(document.get("ingest") or {}),
              _erp_line(document.get("erp") or {}), *_rpc_lines(document.get("rpc") or {}),
              *_channel_lines(document.get("channels"))]
    refusals = document.get("refusals") or []
    if refusals:
        lines.append("refused    " + ", ".join(
            f"{r['method']} {r['code']} x{r['count']}" for r in refusals[:6]))
    hot = document.get("hot_skus") or []
    if hot:
        lines.append("hot SKUs   " + ", ".join(
            f"{h['sku']} ({h['reserve_lines']})" for h in hot[:5]))
    lines += [f"warning    {error}" for error in document.get("errors") or []]
    if document.get("not_measured"):
        lines.append("not measured yet: " + ", ".join(document["not_measured"]))
    return "\n".join(lines)


def _ingest_line(ingest: dict) -> str:
    return (f"ingest     lag {_number(ingest.get('lag_entries'))} entries, pending "
            f"{_number(ingest.get('pending_entries'))}, dead letters "
            f"{_number(ingest.get('dlq_entries'))}, sequence gaps "
            f"{_number(ingest.get('sequence_gaps'))} (regressions "
            f"{_number(ingest.get('sequence_regressions'))})")


def _erp_line(erp: dict) -> str:
    if not erp.get("reader_registered"):
        return "erp sync   no erp-sync reader registered on the journals"
    return (f"erp sync   backlog {_number(erp.get('backlog_commands'))} commands, lag "
            f"{_seconds(erp.get('lag_s'))}; breaker state: erp-sync's own /metrics")


def _channel_lines(channels: dict | None) -> list[str]:
    """Each webhook channel's divergence, as `availability publish` last wrote it."""
    if channels is None:
        return []
    if not channels:
        return ["channels   no publisher running (a webhook channel in serve --channels "
                "starts one)"]
    lines = ["channels   network/locations: |published - actual|, items shown too much, "
             "units at risk"]
    for name, status in sorted(channels.items()):
        ready = "" if status.get("ready") else " (snapshot pending)"
        lines.append(f"  {name:<16} diverged {_levels(status, 'diverged_units')}  exposed "
                     f"{_levels(status, 'exposed_items')}  at risk "
                     f"{_levels(status, 'units_at_risk')}  lag "
                     f"{_seconds(status.get('publish_lag_s'))}  velocity -"
                     f"{_number(status.get('velocity_buffer_units'))}{ready}")
    return lines


def _levels(status: dict, key: str) -> str:
    """network/locations of one divergence figure."""
    return (f"{_number((status.get('network') or {}).get(key))}/"
            f"{_number((status.get('location') or {}).get(key))}")


def _rpc_lines(rpc: dict) -> list[str]:
    rows = [f"{m['method']} {_rate(m.get('requests_per_s'))} p50 {_ms(m.get('p50_ms'))} "
            f"p99 {_ms(m.get('p99_ms'))}" for m in rpc.get("methods") or []]
    head = (f"rpc        {_rate(rpc.get('requests_per_s'))} now, {_number(rpc.get('requests'))} "
            f"requests since start; latency over the last {_number(rpc.get('window_s'))} s:")
    return [head, *(f"           {row}" for row in rows)]


def _number(value) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if isinstance(value, int | float) else str(value)


def _yes(value) -> str:
    return "-" if value is None else ("yes" if value else "NO")


def _seconds(value) -> str:
    return "-" if value is None else f"{value:.1f}s" if value < 100 else f"{value:,.0f}s"


def _ms(value) -> str:
    return "-" if value is None else f"{value:.2f}ms" if value < 100 else f"{value:,.0f}ms"


def _rate(value) -> str:
    return "-/s" if value is None else f"{value:,.1f}/s"
