"""Self-contained HTML reports: tables and embedded PNG plots, readable without explanation."""

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from fma.bench import plots
from fma.bench.summary import PATHS
from fma.bench.timeline import gpu_states, hit_rates, waiting_requesters

Event = dict[str, Any]


@dataclass(frozen=True)
class Table:
    header: list[str]
    rows: list[list[Any]]


@dataclass(frozen=True)
class Section:
    heading: str
    text: str = ""
    table: Table | None = None
    images: list[str] = field(default_factory=list)
    status: bool | None = None
    status_text: str = ""


def render(title: str, subtitle: str, sections: Sequence[Section]) -> str:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("fma.bench", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
    )
    return env.get_template("report.html.j2").render(
        title=title, subtitle=subtitle, sections=sections
    )


def summary_table(summary: dict[str, Any]) -> Table:
    lat = summary["actuation_latency_s"]
    rows = [
        [path, summary["actuations"][path], lat[path]["p50"], lat[path]["p95"], lat[path]["max"]]
        for path in PATHS
    ]
    rows.append(
        [
            "all",
            summary["actuations"]["total"],
            lat["all"]["p50"],
            lat["all"]["p95"],
            lat["all"]["max"],
        ]
    )
    return Table(["path", "actuations", "p50 (s)", "p95 (s)", "max (s)"], rows)


def slo_section(summary: dict[str, Any]) -> Section:
    targets = summary["slo"]["targets"]
    rows = [
        [name, t["target"], t["value"], "met" if t["met"] else "missed"]
        for name, t in targets.items()
    ]
    if not rows:
        return Section("SLO", text="The scenario sets no SLO.")
    return Section(
        "SLO",
        table=Table(["target", "wanted", "measured", ""], rows),
        status=summary["slo"]["met"],
        status_text="All SLO targets met." if summary["slo"]["met"] else "Some SLO targets missed.",
    )


def invariant_section(summary: dict[str, Any]) -> Section:
    violations = summary["invariant_violations"]
    if not violations:
        return Section(
            "Invariants", status=True, status_text="Every invariant held over the whole trace."
        )
    rows = [
        [v["t"], v["invariant"], ", ".join(f"{k}={v[k]}" for k in v if k not in ("t", "invariant"))]
        for v in violations[:50]
    ]
    return Section(
        "Invariants",
        table=Table(["t (s)", "invariant", "detail"], rows),
        status=False,
        status_text=f"{len(violations)} invariant violation(s).",
    )


def run_report(summary: dict[str, Any], events: Sequence[Event], gpu_count: int) -> str:
    """The report of one run: summary, latency CDF, hit rates, GPU states, waiting, invariants."""
    end_s = float(summary["sim_time_s"])
    latencies = {
        p: [e["latency_s"] for e in events if e["kind"] == "actuation" and e["path"] == p]
        for p in PATHS
    }
    overview = Table(
        ["measure", "value"],
        [
            ["actuations", summary["actuations"]["total"]],
            ["hot hit rate", summary["hot_hit_rate"]],
            ["warm hit rate", summary["warm_hit_rate"]],
            ["cold-with-launcher rate", summary["cold_launcher_rate"]],
            ["p95 actuation (s)", summary["actuation_latency_s"]["all"]["p95"]],
            ["unserved at end", summary["unserved"]],
            ["GPU utilization", summary["gpu_utilization"]],
            ["events", summary["events"]],
            ["simulated time (h)", round(end_s / 3600.0, 2)],
            ["wall time (s)", summary["wall_s"]],
        ],
    )
    sections = [
        Section("Summary", table=overview),
        slo_section(summary),
        Section(
            "Actuation latency",
            text="From the requester container start to its first readiness relay, per path.",
            table=summary_table(summary),
            images=[plots.latency_cdf(latencies, "Actuation latency CDF by path")],
        ),
        Section(
            "Hit rates over time",
            text="Share of actuations served by each path, per time bucket.",
            images=[
                plots.step_lines(
                    hit_rates(events, end_s),
                    "Actuation paths over time",
                    "share of actuations",
                    fraction=True,
                )
            ],
        ),
        Section(
            "GPU state over time",
            text=(
                "Awake: an instance loading or serving. Sleeping: only level-1 sleepers. "
                "Idle: neither."
            ),
            images=[plots.gpu_state_area(gpu_states(events, gpu_count, end_s), "GPU states")],
        ),
        Section(
            "Unserved requesters over time",
            text="Requesters created and not yet ready: demand waiting for GPUs or for actuation.",
            images=[
                plots.step_lines(
                    waiting_requesters(events, end_s), "Waiting requesters", "requesters"
                )
            ],
        ),
        invariant_section(summary),
    ]
    subtitle = f"scenario {summary['scenario']}, seed {summary['seed']}"
    return render(f"FMA simulation: {summary['scenario']}", subtitle, sections)


def write(path: Path, html: str) -> None:
    path.write_text(html, encoding="utf-8")
