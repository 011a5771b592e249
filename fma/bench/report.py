"""Self-contained HTML reports: tables and embedded PNG plots, readable without explanation."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from fma.bench import plots
from fma.bench.summary import PATHS
from fma.bench.timeline import Series, actuation_counts, gpu_states, waiting_requesters

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
    counts = {**summary["actuations"], "all": summary["actuations"]["total"]}
    rows = [
        [path, counts[path], lat[path]["p50"], lat[path]["p95"], lat[path]["p99"], lat[path]["max"]]
        for path in (*PATHS, "all")
    ]
    return Table(["path", "actuations", "p50 (s)", "p95 (s)", "p99 (s)", "max (s)"], rows)


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


WAITING_BUCKETS = 144
"""Spans the unserved-requester plot averages over: single waits are seconds long and would
draw as hairlines; averages show how much demand waited, and when."""


def _averaged(series: Series, end_s: float) -> Series:
    means = series.bucket_means(end_s, WAITING_BUCKETS)
    half = end_s / WAITING_BUCKETS / 2
    return Series([t - half for t in means.t], means.values)


def overview_table(summary: dict[str, Any]) -> Table:
    wait = summary.get("wait_s", {})
    hours = summary.get("gpu_hours", {})
    rows: list[list[Any]] = [
        ["actuations", summary["actuations"]["total"]],
        ["hot hit rate (woke a sleeper)", summary["hot_hit_rate"]],
        ["warm hit rate (existing launcher)", summary["warm_hit_rate"]],
        ["cold-with-new-launcher rate", summary["cold_launcher_rate"]],
        ["p50 / p95 actuation (s)", _pair(summary["actuation_latency_s"]["all"])],
        ["p50 / p95 wait, created to ready (s)", _pair(wait) if wait else "n/a"],
        ["p50 / p95 wake, multiple of its physical floor", _floor_text(summary)],
        ["unserved at end", summary["unserved"]],
        ["GPU utilization (held by requesters)", summary["gpu_utilization"]],
    ]
    if hours:
        rows.append(["GPU-hours held / loading / sleeping", _hours_text(hours)])
    rows += [
        ["invariant violations", len(summary["invariant_violations"])],
        ["events", summary["events"]],
        ["simulated time (h)", round(float(summary["sim_time_s"]) / 3600.0, 2)],
        ["wall time (s)", summary["wall_s"]],
    ]
    return Table(["measure", "value"], rows)


def _pair(stats: dict[str, Any]) -> str:
    return f"{stats['p50']:g} / {stats['p95']:g}"


def _floor_text(summary: dict[str, Any]) -> str:
    floor = summary.get("wake_floor_multiple", {})
    return _pair(floor) if floor.get("count") else "n/a (no wake)"


def _hours_text(hours: dict[str, float]) -> str:
    return f"{hours['held']:g} / {hours['loading']:g} / {hours['sleeping']:g}"


def run_report(
    summary: dict[str, Any],
    events: Sequence[Event],
    gpu_count: int,
    *,
    description: str = "",
    gpus_by_node: Mapping[str, int] | None = None,
) -> str:
    """The report of one run: summary, SLO, latency CDF per path, hit rates, GPU states,
    unserved requesters over time and invariants. Deterministic for equal inputs."""
    end_s = float(summary["sim_time_s"])
    latencies = {
        p: [e["latency_s"] for e in events if e["kind"] == "actuation" and e["path"] == p]
        for p in PATHS
    }
    slo_p95 = summary["slo"]["targets"].get("p95_actuation_s", {}).get("target")
    sections = [
        Section("Summary", text=description, table=overview_table(summary)),
        slo_section(summary),
        Section(
            "Actuation latency",
            text=(
                "From the requester's container start to the first readiness relay. Hot: a "
                "sleeping instance was woken. Warm: an existing launcher started an instance. "
                "Cold with a new launcher: a launcher Pod had to start first. Cold: a server "
                "started from scratch."
            ),
            table=summary_table(summary),
            images=[plots.latency_cdf(latencies, "Actuation latency CDF, by path", slo_s=slo_p95)],
        ),
        Section(
            "Hit rates over time",
            text="Actuations per time bucket by path (bars), and the share that were hot (line).",
            images=[
                plots.actuation_bars(
                    actuation_counts(events, end_s), end_s, "Actuations and hot hit rate over time"
                )
            ],
        ),
        Section(
            "GPU state over time",
            text=(
                "Serving: an awake instance. Loading: an instance starting or waking (GPU paid "
                "for, nobody served). Sleeping: only level-1 sleepers (free for other work). "
                "Idle: none of these."
            ),
            images=[
                plots.gpu_state_area(
                    gpu_states(events, gpu_count, end_s, gpus_by_node),
                    end_s,
                    f"What the {gpu_count} GPUs are doing",
                )
            ],
        ),
        Section(
            "Unserved requesters over time",
            text=(
                "Requesters wanted and not ready. For GPUs: not scheduled yet, the cluster is "
                "full. Actuating: scheduled, waiting for their server."
            ),
            images=[
                plots.stacked_steps(
                    _averaged(waiting_requesters(events, end_s), end_s),
                    end_s,
                    "Unserved requesters (averaged over short spans)",
                    "requesters",
                )
            ],
        ),
        invariant_section(summary),
    ]
    subtitle = f"scenario {summary['scenario']}, seed {summary['seed']}"
    return render(f"FMA simulation: {summary['scenario']}", subtitle, sections)


def write(path: Path, html: str) -> None:
    path.write_text(html, encoding="utf-8")
