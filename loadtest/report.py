"""Self-contained HTML reports: tables and matplotlib PNGs embedded as base64 data URIs."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence

FLASH_TARGETS = ("engine", "redis_lua", "postgres")
COLOURS = {"engine": "tab:blue", "redis_lua": "tab:red", "postgres": "tab:green",
           "bare": "tab:gray"}
FIGURE_INCHES = (8.0, 3.6)
SUMMARY_FIELDS = ("status", "ops_per_s", "peak_ops_per_s", "p50_ms", "p99_ms", "held",
                  "rejected", "committed", "released", "failed_ops", "attempt_errors",
                  "oversold", "oversold_harness", "oversold_readback", "run_s")
_STYLE = ("body{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}"
          "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
          "padding:.25em .6em;text-align:right}th:first-child,td:first-child{text-align:left}"
          "img{max-width:100%;display:block;margin:1em 0}pre{background:#f4f4f4;padding:1em}")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display: render to memory only
    import matplotlib.pyplot as plt

    return plt


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=90)
    _pyplot().close(figure)
    return buffer.getvalue()


def _ran(document: Mapping, name: str) -> bool:
    return (document.get(name) or {}).get("status") == "ok"


def flash_figures(document: Mapping) -> list[tuple[str, bytes]]:
    """Throughput and latency over time, latency percentiles, oversells and divergence, one
    series per target that ran."""
    plt = _pyplot()
    names = [name for name in FLASH_TARGETS if _ran(document, name)]
    figures = []
    figure, axes = plt.subplots(figsize=FIGURE_INCHES)
    for name in names:
        axes.plot(document[name]["throughput_per_s"], label=name, color=COLOURS[name])
    for fault in (document.get("engine") or {}).get("faults", []):
        axes.axvline(fault["at_s"], color="black", linestyle=":", linewidth=1)
        axes.annotate(fault["name"], (fault["at_s"], 0), rotation=90, fontsize=7,
                      va="bottom", ha="right")
    axes.set(xlabel="seconds into the run", ylabel="operations answered per second",
             title="Throughput over time")
    axes.legend()
    figures.append(("Throughput over time (answers per second)", _png(figure)))

    figure, axes = plt.subplots(figsize=FIGURE_INCHES)
    for name in names:
        curve = [(p, ms) for p, ms in document[name]["latency_curve_ms"]["all"] if p < 100]
        axes.plot([1 / (1 - p / 100) for p, _ in curve], [ms for _, ms in curve], marker="o",
                  label=name, color=COLOURS[name])
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xticks([1, 2, 10, 100, 1000, 10000],
                    ["0%", "50%", "90%", "99%", "99.9%", "99.99%"])
    axes.set(xlabel="percentile", ylabel="latency (ms)",
             title="Latency percentiles, all operations (HDR histogram)")
    axes.legend()
    figures.append(("Latency percentiles from the HDR histogram", _png(figure)))

    figure, axes = plt.subplots(figsize=FIGURE_INCHES)
    for name in names:
        seconds = document[name]["latency_per_s"]
        for field, style in (("p50_ms", "--"), ("p99_ms", "-")):
            axes.plot([second[field] for second in seconds], style, color=COLOURS[name],
                      label=f"{name} {field[:3]}")
    axes.set_yscale("log")
    axes.set(xlabel="seconds into the run (by answer)", ylabel="latency (ms)",
             title="Latency over time: p50 and p99 of each second's answers")
    axes.legend(fontsize=7)
    figures.append(("Latency over time (HDR histogram per second)", _png(figure)))

    figure, axes = plt.subplots(figsize=FIGURE_INCHES)
    width = 0.38
    for offset, field in ((-width / 2, "oversold_harness"), (width / 2, "oversold_readback")):
        axes.bar([n + offset for n in range(len(names))],
                 [document[name][field] for name in names], width,
                 label=field.replace("oversold_", "measured by "))
    axes.set_xticks(range(len(names)), names)
    axes.set(ylabel="units oversold", title="Oversold units (independent checks)")
    axes.legend()
    figures.append(("Oversells: harness-recorded grants and read-back, against the stock",
                    _png(figure)))

    figure, axes = plt.subplots(figsize=FIGURE_INCHES)
    for name in names:
        points = document[name]["divergence"]
        axes.plot([p["t_s"] for p in points], [p["divergence_units"] for p in points],
                  label=name, color=COLOURS[name])
    axes.set(xlabel="seconds into the run", ylabel="target - harness (units)",
             title="Divergence: the target's reserved + committed vs acknowledged holds")
    axes.legend()
    figures.append(("Divergence over time", _png(figure)))
    return figures


def capacity_figures(capacity: Mapping) -> list[tuple[str, bytes]]:
    """Requests/s and mean latency against concurrency, engine and bare, per request body."""
    plt = _pyplot()
    figures = []
    for body, measured in capacity.get("bodies", {}).items():
        figure, (rate, latency) = plt.subplots(1, 2, figsize=(FIGURE_INCHES[0], 3.4))
        for server in ("engine", "bare"):
            steps = measured[server]
            rate.plot([s["concurrency"] for s in steps], [s["requests_per_s"] for s in steps],
                      marker="o", label=server, color=COLOURS.get(server))
            latency.plot([s["concurrency"] for s in steps], [s["mean_ms"] for s in steps],
                         marker="o", label=server, color=COLOURS.get(server))
        for axes in (rate, latency):
            axes.set_xscale("log", base=2)
            axes.set_xlabel("streams in flight")
            axes.legend()
        rate.set(ylabel="requests/s", title=f"{body}: throughput")
        latency.set(ylabel="mean ms", title=f"{body}: latency")
        figures.append((f"{body}: h2load against the engine and the bare grpc.aio server",
                        _png(figure)))
    return figures


def table(rows: Sequence[Sequence], header: Sequence[str]) -> str:
    """An HTML table of already formatted cells."""
    head = "".join(f"<th>{html.escape(str(cell))}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(cell))}</td>" for cell in row)
                   + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "–" if value is None else str(value)


def page(title: str, sections: Sequence[tuple[str, str]],
         figures: Sequence[tuple[str, bytes]]) -> str:
    """The whole HTML page: sections of trusted HTML, then each figure inline."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}"
             f"</title><style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"]
    parts += [f"<h2>{html.escape(heading)}</h2>{fragment}" for heading, fragment in sections]
    for caption, png in figures:
        data = base64.b64encode(png).decode("ascii")
        parts.append(f"<h3>{html.escape(caption)}</h3>"
                     f"<img alt='{html.escape(caption)}' src='data:image/png;base64,{data}'>")
    return "".join(parts) + "</body></html>"


def flash_page(document: Mapping) -> str:
    """The flash-sale report: summary per target, ratios, chaos costs, then the figures."""
    rows = [[field, *((document.get(name) or {}).get(field) for name in FLASH_TARGETS)]
            for field in SUMMARY_FIELDS]
    sections = [("Summary", table(rows, ["", *FLASH_TARGETS])),
                ("Targets (ratios of this run)",
                 table(list(document.get("ratios", {}).items()), ["target", "value"])),
                ("Workload", f"<pre>{html.escape(_lines(document.get('workload', {})))}</pre>")]
    skipped = [(name, document[name].get("reason", "")) for name in FLASH_TARGETS
               if (document.get(name) or {}).get("status") == "skipped"]
    if skipped:
        sections.append(("Skipped", table(skipped, ["target", "why"])))
    if document.get("chaos"):
        chaos = document["chaos"]
        rows = [[name, c["what"], c["at_s"], c["ops"], c["attempt_errors"], c["failed_ops"],
                 c["p50_ms"], c["p99_ms"], c["max_ms"], c["steady_p99_ms"]]
                for name, c in chaos["costs"].items()]
        sections.append(("Chaos: what each fault cost (operations scheduled in its window)",
                         table(rows, ["fault", "what", "at s", "ops", "attempt errors",
                                      "failed ops", "p50 ms", "p99 ms", "max ms",
                                      "steady p99 ms"])
                         + f"<p>acknowledged lost or doubled: "
                           f"{html.escape(str(chaos['lost_or_doubled']))}</p>"))
    sections.append(("Machine", f"<pre>{html.escape(document.get('machine', ''))}</pre>"))
    return page("Flash sale", sections, flash_figures(document))


def capacity_page(document: Mapping) -> str:
    """The capacity report: per body, the steps and the saturation point, then the figures."""
    capacity = document["capacity"]
    sections = []
    for body, measured in capacity["bodies"].items():
        rows = [[e["concurrency"], e["requests_per_s"], e["mean_ms"], b["requests_per_s"],
                 b["mean_ms"]] for e, b in zip(measured["engine"], measured["bare"])]
        sections.append((body, f"<p>{html.escape(measured['what'])}</p>" + table(
            rows, ["streams", "engine req/s", "engine mean ms", "bare req/s", "bare mean ms"])
            + f"<p>engine peak {measured['engine_peak_per_s']:,.0f} req/s at "
              f"{measured['engine_saturation_concurrency']} streams; bare peak "
              f"{measured['bare_peak_per_s']:,.0f}; ratio {measured['ratio']:.2f}</p>"))
    sections.append(("Machine", f"<pre>{html.escape(document.get('machine', ''))}</pre>"))
    return page("Capacity", sections, capacity_figures(capacity))


RETAIL_SIDES = (("engine", "tab:blue", "-"), ("baseline", "tab:red", "--"))
RETAIL_TALLY = ("units", "oversold_units", "cancelled_units", "oversold_cancelled_units",
                "undersold_units", "refused_orders")


def retail_figures(document: Mapping) -> list[tuple[str, bytes]]:
    """Oversold units per channel, divergence per channel over the day, and the
    system's and ERP's on-hand against the shelves, engine against baseline."""
    plt = _pyplot()
    channels = list(document["engine"]["channels"])
    figures = []
    figure, axes = plt.subplots(figsize=FIGURE_INCHES)
    width = 0.38
    for offset, (side, colour, _) in zip((-width / 2, width / 2), RETAIL_SIDES):
        axes.bar([n + offset for n in range(len(channels))],
                 [document[side]["channels"][c]["oversold_units"] for c in channels], width,
                 label=side, color=colour)
    axes.set_xticks(range(len(channels)), channels)
    axes.set(ylabel="units oversold", title="Oversold units per channel (judged by the shelves)")
    axes.legend()
    figures.append(("Oversells per channel", _png(figure)))
    figure, axes = plt.subplots(figsize=FIGURE_INCHES)
    for side, _, style in RETAIL_SIDES:
        samples = document[side]["divergence"]
        for channel in channels:
            axes.plot([s["t_h"] for s in samples], [s[channel] for s in samples],
                      linestyle=style, label=f"{side} {channel}")
    axes.set(xlabel="simulated hours", ylabel="Σ|shown − free units|",
             title="Divergence: what each channel shows against the free units")
    axes.legend(fontsize=7)
    figures.append(("Channel divergence over the day", _png(figure)))
    figure, axes = plt.subplots(figsize=FIGURE_INCHES)
    for side, colour, style in RETAIL_SIDES:
        samples = document[side]["divergence"]
        for field, marker in (("system_vs_shelves", ""), ("erp_vs_shelves", ".")):
            axes.plot([s["t_h"] for s in samples], [s[field] for s in samples], color=colour,
                      linestyle=style, marker=marker, label=f"{side} {field}")
    axes.set(xlabel="simulated hours", ylabel="Σ|on hand − shelves| (units)",
             title="Stock records against the shelves (stores and DCs)")
    axes.legend(fontsize=7)
    figures.append(("Stock records against the shelves over the day", _png(figure)))
    return figures


def retail_page(document: Mapping) -> str:
    """The retail-day report: per channel engine against baseline, ERP calls and sync lag,
    what is simulated, then the figures."""
    engine, baseline = document["engine"], document["baseline"]
    rows = [[channel, field, engine["channels"][channel][field],
             baseline["channels"][channel][field]]
            for channel in engine["channels"] for field in RETAIL_TALLY]
    erp = [[purpose, engine["erp_calls"].get(purpose), baseline["erp_calls"].get(purpose)]
           for purpose in sorted({*engine["erp_calls"], *baseline["erp_calls"]})]
    erp.append(["total", engine["erp_calls_total"], baseline["erp_calls_total"]])
    erp += [[f"sync lag {key}", engine["sync_lag"][key], baseline["sync_lag"][key]]
            for key in engine["sync_lag"]]
    world = [[key, engine["world"].get(key), baseline["world"].get(key)]
             for key in sorted({*engine["world"], *baseline["world"]})]
    sections = [
        ("Per channel (units unless named)",
         table(rows, ["channel", "figure", "engine", "baseline"])),
        ("Target", table(list(document["targets"].items()), ["", "value"])),
        ("ERP calls and sync lag (seconds, from the change happening to the ERP holding it)",
         table(erp, ["", "engine", "baseline"])),
        ("The world", table(world, ["", "engine run", "baseline run"])),
        ("What is simulated", f"<p>{html.escape(document.get('simulated', ''))}</p>"),
        ("Workload", f"<pre>{html.escape(_lines(document.get('workload', {})))}</pre>"),
        ("Machine", f"<pre>{html.escape(document.get('machine', ''))}</pre>")]
    return page("Retail day", sections, retail_figures(document))


def _lines(mapping: Mapping) -> str:
    return "\n".join(f"{key}: {value}" for key, value in mapping.items())


def write(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as out:
        out.write(text)
