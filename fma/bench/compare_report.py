"""The HTML report of ``fma sim compare``: a side-by-side table, overlaid CDFs, GPU-hours."""

from collections.abc import Sequence
from typing import Any

from fma.api.scenario import Scenario
from fma.bench import plots
from fma.bench.digest import Digest
from fma.bench.report import Section, Table, render
from fma.bench.timeline import Series


def _spread(variant: dict[str, Any], name: str) -> str:
    """The mean over seeds, with the range when seeds disagree."""
    values = [run[name] for run in variant["runs"]]
    mean = variant["mean"][name]
    if len(values) < 2 or min(values) == max(values):
        return f"{mean:g}"
    return f"{mean:g} ({min(values):g}-{max(values):g})"


def side_by_side(result: dict[str, Any]) -> Table:
    rows = []
    for v in result["variants"]:
        lat = v["pooled"]["actuation_latency_s"]
        seeds = len(v["runs"])
        met = sum(1 for r in v["runs"] if r["slo_met"])
        rows.append(
            [
                v["label"],
                _spread(v, "hot_hit_rate"),
                v["pooled"]["warm_rate"],
                round(v["pooled"]["cold_launcher_rate"] + v["pooled"]["cold_rate"], 4),
                lat["p50"],
                lat["p95"],
                lat["p99"],
                _spread(v, "p95_wait_s"),
                _spread(v, "unserved"),
                _spread(v, "gpu_hours_held"),
                _spread(v, "gpu_hours_loading"),
                _spread(v, "gpu_hours_sleeping"),
                f"{met}/{seeds}" if result["slo"] else "-",
                sum(r["invariant_violations"] for r in v["runs"]),
            ]
        )
    header = [
        "variant",
        "hot hit rate",
        "warm rate",
        "cold rate (any)",
        "p50 (s)",
        "p95 (s)",
        "p99 (s)",
        "p95 wait (s)",
        "unserved at end",
        "GPU-h held",
        "GPU-h loading",
        "GPU-h sleeping",
        "SLO met (seeds)",
        "invariant violations",
    ]
    return Table(header, rows)


def per_seed(result: dict[str, Any]) -> Table:
    rows = [
        [
            v["label"],
            r["seed"],
            r["actuations"],
            r["hot_hit_rate"],
            r["warm_hit_rate"],
            r["p95_actuation_s"],
            r["p95_wait_s"],
            r["unserved"],
            r["gpu_hours_held"],
        ]
        for v in result["variants"]
        for r in v["runs"]
    ]
    header = [
        "variant",
        "seed",
        "actuations",
        "hot hit rate",
        "warm hit rate",
        "p95 actuation (s)",
        "p95 wait (s)",
        "unserved",
        "GPU-h held",
    ]
    return Table(header, rows)


def compare_report(scenario: Scenario, result: dict[str, Any], digests: Sequence[Digest]) -> str:
    """The comparison report; deterministic for equal inputs."""
    labels = [v["label"] for v in result["variants"]]
    colours = {label: plots.variant_colour(k) for k, label in enumerate(labels)}
    pooled = {
        label: [x for d in digests if d.label == label for xs in d.latencies.values() for x in xs]
        for label in labels
    }
    first_seed = result["seeds"][0]
    firsts = {d.label: d for d in digests if d.seed == first_seed}
    end_s = scenario.duration
    hours = {
        v["label"]: {
            "held": v["mean"]["gpu_hours_held"],
            "serving": v["mean"]["gpu_hours_serving"],
            "loading": v["mean"]["gpu_hours_loading"],
            "sleeping": v["mean"]["gpu_hours_sleeping"],
        }
        for v in result["variants"]
    }
    waiting = {label: _total(firsts[label].series["waiting"]) for label in labels}
    seeds = ", ".join(str(s) for s in result["seeds"])
    sections = [
        Section(
            "Side by side",
            text=(
                f"{scenario.description} Each variant ran the same seeds ({seeds}), so it saw the "
                "same arrivals and hold times. Hit rates and latency percentiles are over every "
                "actuation of every seed; other columns are means over seeds, with the range "
                "across seeds in brackets."
            ).strip(),
            table=side_by_side(result),
        ),
        Section(
            "Actuation latency",
            text="Every actuation of every seed, one curve per variant: further left is faster.",
            images=[
                plots.latency_cdf(
                    pooled,
                    "Actuation latency CDF by variant",
                    colours=colours,
                    slo_s=result["slo"].get("p95_actuation_s"),
                )
            ],
        ),
        Section(
            "GPU-hours used",
            text=(
                "Per run, mean over seeds. Held: GPUs allocated to requesters (what the cluster "
                "pays for). Loading: starting or waking engines, serving nobody. Sleeping: "
                "GPUs holding only level-1 sleepers, free for other work."
            ),
            images=[plots.gpu_hours_bars(hours, "GPU-hours by variant")],
        ),
        Section(
            "Unserved requesters over time",
            text="Requesters wanted and not ready (waiting for GPUs or for actuation), averaged "
            f"over short spans of time, seed {first_seed}.",
            images=[
                plots.overlaid_lines(
                    waiting, "total", end_s, "Unserved requesters by variant", "requesters"
                )
            ],
        ),
        Section(
            "GPUs loading over time",
            text="GPUs busy starting or waking an engine, averaged over short spans of time, "
            f"seed {first_seed}: GPUs paid for that serve nobody.",
            images=[
                plots.overlaid_lines(
                    {label: firsts[label].series["gpus"] for label in labels},
                    "loading",
                    end_s,
                    "GPUs loading by variant",
                    "GPUs",
                )
            ],
        ),
        Section("Per seed", table=per_seed(result)),
    ]
    return render(
        f"FMA comparison: {scenario.name}",
        f"variants {', '.join(labels)}; seeds {seeds}",
        sections,
    )


def _total(series: Series) -> Series:
    """A series with one more key, ``total``: the sum of its values at each time."""
    total = [sum(v[k] for v in series.values.values()) for k in range(len(series.t))]
    return Series(series.t, {**series.values, "total": total})
