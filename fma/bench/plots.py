"""Plots for reports, as embedded PNG data URIs (matplotlib, no display needed).

Every plot labels its axes with units and says in its title what it shows, so a report is
readable without explanation. Colours are fixed per path, per GPU state and per variant.
"""

import base64
import io
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")  # reports are written headless; no display is ever needed
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from fma.bench.timeline import Series

PATH_COLOURS = {"hot": "#d62728", "warm": "#ff7f0e", "cold_launcher": "#1f77b4", "cold": "#7f7f7f"}
PATH_LABELS = {
    "hot": "hot (woke a sleeper)",
    "warm": "warm (existing launcher)",
    "cold_launcher": "cold, new launcher",
    "cold": "cold (no launcher)",
}
STATE_COLOURS = {
    "serving": "#2ca02c",
    "loading": "#bcbd22",
    "sleeping": "#9467bd",
    "idle": "#d9d9d9",
    "lost": "#3b3b3b",
}
STATE_LABELS = {
    "serving": "awake: serving",
    "loading": "awake: loading (start or wake)",
    "sleeping": "sleeping (level 1)",
    "idle": "idle",
    "lost": "lost (node gone)",
}
VARIANT_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2")


def variant_colour(k: int) -> str:
    return VARIANT_COLOURS[k % len(VARIANT_COLOURS)]


def to_data_uri(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _hours(t: Sequence[float]) -> list[float]:
    return [x / 3600.0 for x in t]


def _legend_below(
    ax: Axes,
    handles: list[Any] | None = None,
    labels: list[str] | None = None,
    *,
    offset: float = -0.2,
) -> None:
    """A legend under the plot, where it never hides data."""
    if handles is None or labels is None:
        handles, labels = ax.get_legend_handles_labels()
    if handles:
        ax.legend(
            handles,
            labels,
            loc="upper center",
            bbox_to_anchor=(0.5, offset),
            ncol=min(len(labels), 3),
            fontsize=8,
            frameon=False,
        )


def _time_axis(ax: Axes, end_s: float) -> None:
    ax.set_xlabel("simulated time (h)")
    ax.set_xlim(0, end_s / 3600.0)


def latency_cdf(
    curves: Mapping[str, Sequence[float]],
    title: str,
    *,
    colours: Mapping[str, str] | None = None,
    slo_s: float | None = None,
) -> str:
    """Empirical CDFs of actuation latency, one curve per label (path or variant)."""
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    palette = colours if colours is not None else PATH_COLOURS
    for label, values in curves.items():
        if not values:
            continue
        ordered = sorted(values)
        ys = [(k + 1) / len(ordered) for k in range(len(ordered))]
        name = PATH_LABELS.get(label, label) if colours is None else label
        ax.step(
            [ordered[0], *ordered],
            [0.0, *ys],
            where="post",
            label=f"{name} (n={len(ordered)})",
            color=palette.get(label),
            linewidth=1.6,
        )
    if slo_s is not None:
        ax.axvline(slo_s, color="black", linestyle=":", linewidth=1, label=f"SLO p95 = {slo_s:g} s")
    ax.axhline(0.95, color="#999999", linestyle="--", linewidth=0.8)
    ax.text(0.01, 0.955, "p95", fontsize=7, color="#666666", transform=ax.get_yaxis_transform())
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlim(left=0)
    ax.set_xlabel("actuation latency (s; linear below 1 s, log above)")
    ax.set_ylabel("fraction of actuations")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3, which="both")
    ax.set_title(title)
    _legend_below(ax)
    return to_data_uri(fig)


def actuation_bars(counts: Series, end_s: float, title: str) -> str:
    """Actuations per time bucket, stacked by path, with the hot hit rate of each bucket."""
    fig, ax = plt.subplots(figsize=(7.5, 3.4))
    width_h = (end_s / len(counts.t)) / 3600.0 if counts.t else 1.0
    starts = _hours(counts.t)
    bottom = [0.0] * len(starts)
    for path, values in counts.values.items():
        if not any(values):
            continue
        ax.bar(
            starts,
            values,
            width=width_h,
            bottom=bottom,
            align="edge",
            color=PATH_COLOURS.get(path),
            label=PATH_LABELS.get(path, path),
            edgecolor="white",
            linewidth=0.4,
        )
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_ylabel("actuations per bucket")
    _time_axis(ax, end_s)
    ax.grid(axis="y", alpha=0.3)
    rate_ax = ax.twinx()
    hot = counts.values.get("hot", [0.0] * len(starts))
    mids = [s + width_h / 2 for s, total in zip(starts, bottom, strict=True) if total]
    rates = [h / total for h, total in zip(hot, bottom, strict=True) if total]
    rate_ax.plot(mids, rates, color="black", marker="o", markersize=3, linewidth=1.2)
    rate_ax.set_ylim(0, 1.05)
    rate_ax.set_ylabel("hot hit rate (line)")
    handles, labels = ax.get_legend_handles_labels()
    _legend_below(ax, [*handles, *rate_ax.get_lines()[:1]], [*labels, "hot hit rate in bucket"])
    ax.set_title(title)
    return to_data_uri(fig)


def gpu_state_area(series: Series, end_s: float, title: str) -> str:
    """Stacked GPUs serving / loading / sleeping / idle (/ lost) over time."""
    fig, ax = plt.subplots(figsize=(7.5, 3.4))
    keys = [
        k for k in STATE_COLOURS if k in series.values and (k != "lost" or any(series.values[k]))
    ]
    ax.stackplot(
        _hours(series.t),
        *[series.values[k] for k in keys],
        labels=[STATE_LABELS[k] for k in keys],
        step="post",
        colors=[STATE_COLOURS[k] for k in keys],
    )
    _time_axis(ax, end_s)
    ax.set_ylabel("GPUs")
    total = sum(series.values[k][0] for k in keys) if series.t else 1
    ax.set_ylim(0, total or 1)
    ax.set_title(title)
    _legend_below(ax)
    return to_data_uri(fig)


def stacked_steps(series: Series, end_s: float, title: str, ylabel: str) -> str:
    """Stacked step areas (e.g. requesters waiting for GPUs and waiting for actuation)."""
    fig, ax = plt.subplots(figsize=(7.5, 3.0))
    colours = ("#ff7f0e", "#1f77b4", "#2ca02c", "#9467bd")
    ax.stackplot(
        _hours(series.t),
        *series.values.values(),
        labels=list(series.values),
        step="post",
        colors=colours[: len(series.values)],
    )
    _time_axis(ax, end_s)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    _legend_below(ax)
    return to_data_uri(fig)


def overlaid_lines(
    lines: Mapping[str, Series], key: str, end_s: float, title: str, ylabel: str
) -> str:
    """One line per variant of the same quantity ``key`` (bucket averages) over time."""
    fig, ax = plt.subplots(figsize=(7.5, 3.2))
    for k, (label, series) in enumerate(lines.items()):
        ax.plot(
            _hours(series.t),
            series.values[key],
            label=label,
            color=variant_colour(k),
            linewidth=1.5,
            alpha=0.9,
        )
    ax.set_ylim(bottom=0)
    _time_axis(ax, end_s)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    _legend_below(ax)
    return to_data_uri(fig)


def gpu_hours_bars(hours: Mapping[str, Mapping[str, float]], title: str) -> str:
    """GPU-hours per variant: serving, loading and sleeping stacked, held marked."""
    fig, ax = plt.subplots(figsize=(7.5, 3.4))
    labels = list(hours)
    bottom = [0.0] * len(labels)
    for state in ("serving", "loading", "sleeping"):
        values = [hours[v].get(state, 0.0) for v in labels]
        ax.bar(labels, values, bottom=bottom, color=STATE_COLOURS[state], label=STATE_LABELS[state])
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    held = [hours[v].get("held", 0.0) for v in labels]
    xs = range(len(labels))
    ax.hlines(
        held,
        [x - 0.4 for x in xs],
        [x + 0.4 for x in xs],
        colors="black",
        linewidth=2,
        zorder=3,
        label="held by requesters",
    )
    ax.set_ylabel("GPU-hours per run (mean over seeds)")
    ax.grid(axis="y", alpha=0.3)
    ax.set_ylim(0, max([*bottom, *held, 1.0]) * 1.1)
    ax.set_title(title)
    rotated = len(labels) > 3
    if rotated:
        ax.tick_params(axis="x", labelrotation=20)
    _legend_below(ax, offset=-0.32 if rotated else -0.2)
    return to_data_uri(fig)


def plan_curve(
    values: Sequence[float],
    per_seed: Sequence[Sequence[float]],
    passed: Sequence[bool],
    *,
    title: str,
    xlabel: str,
    ylabel: str,
    target: float,
    chosen: float | None,
) -> str:
    """A metric against the varied parameter: each seed as a dot, the mean as a line, the
    target as a horizontal line, values meeting every target in green, the choice marked."""
    fig, ax = plt.subplots(figsize=(7.5, 3.4))
    means = [sum(s) / len(s) if s else float("nan") for s in per_seed]
    ax.plot(values, means, color="#1f77b4", linewidth=1.4, label="mean over seeds", zorder=2)
    for x, seeds, ok in zip(values, per_seed, passed, strict=True):
        ax.scatter(
            [x] * len(seeds),
            seeds,
            s=16,
            color="#2ca02c" if ok else "#d62728",
            alpha=0.75,
            zorder=3,
        )
    ax.scatter([], [], s=16, color="#2ca02c", label="seed run; value meets all targets")
    ax.scatter([], [], s=16, color="#d62728", label="seed run; value misses a target")
    ax.axhline(target, color="black", linestyle=":", linewidth=1, label=f"target {target:g}")
    if chosen is not None:
        ax.axvline(chosen, color="#2ca02c", linestyle="--", label=f"chosen = {chosen:g}")
    if all(float(x).is_integer() for x in values):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    seen = [y for seeds in per_seed for y in seeds] + [target]
    if min(seen) > 0 and max(seen) / min(seen) > 100:
        ax.set_yscale("log")  # a starved end of the range would flatten everything else
        ylabel += " (log scale)"
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    _legend_below(ax)
    return to_data_uri(fig)
