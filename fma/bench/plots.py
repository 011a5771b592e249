"""Plots for reports, as embedded PNG data URIs (matplotlib, no display needed)."""

import base64
import io
from collections.abc import Mapping, Sequence

import matplotlib

matplotlib.use("Agg")  # reports are written headless; no display is ever needed
import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from fma.bench.timeline import Series

PATH_COLOURS = {"hot": "#d62728", "warm": "#ff7f0e", "cold_launcher": "#1f77b4", "cold": "#7f7f7f"}
STATE_COLOURS = {"awake": "#2ca02c", "sleeping": "#9467bd", "idle": "#c7c7c7"}


def to_data_uri(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _hours(t: Sequence[float]) -> list[float]:
    return [x / 3600.0 for x in t]


def latency_cdf(curves: Mapping[str, Sequence[float]], title: str) -> str:
    """Empirical CDFs of actuation latency, one curve per label (path or policy)."""
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for label, values in curves.items():
        if not values:
            continue
        ordered = sorted(values)
        ys = [(k + 1) / len(ordered) for k in range(len(ordered))]
        ax.step(
            ordered,
            ys,
            where="post",
            label=f"{label} (n={len(ordered)})",
            color=PATH_COLOURS.get(label),
        )
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlabel("actuation latency (s, log scale above 1 s)")
    ax.set_ylabel("fraction of actuations")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="lower right", fontsize=8)
    return to_data_uri(fig)


def gpu_state_area(series: Series, title: str) -> str:
    """Stacked GPUs awake / sleeping / idle over time."""
    fig, ax = plt.subplots(figsize=(7, 3.2))
    hours = _hours(series.t)
    ax.stackplot(
        hours,
        *[series.values[k] for k in ("awake", "sleeping", "idle")],
        labels=["awake", "sleeping", "idle"],
        step="post",
        colors=[STATE_COLOURS[k] for k in ("awake", "sleeping", "idle")],
    )
    ax.set_xlabel("time (h)")
    ax.set_ylabel("GPUs")
    ax.set_title(title)
    ax.legend(loc="upper right", fontsize=8)
    ax.margins(x=0)
    return to_data_uri(fig)


def step_lines(series: Series, title: str, ylabel: str, *, fraction: bool = False) -> str:
    """One step line per series key over time (hit rates, waiting requesters)."""
    fig, ax = plt.subplots(figsize=(7, 3.0))
    hours = _hours(series.t)
    for label, values in series.values.items():
        if fraction and not any(values):
            continue
        ax.step(
            hours,
            values,
            where="mid" if fraction else "post",
            label=label,
            color=PATH_COLOURS.get(label),
        )
    ax.set_xlabel("time (h)")
    ax.set_ylabel(ylabel)
    if fraction:
        ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.set_title(title)
    if len(series.values) > 1:
        ax.legend(loc="upper right", fontsize=8)
    ax.margins(x=0)
    return to_data_uri(fig)


def bars(values: Mapping[str, float], title: str, ylabel: str) -> str:
    fig, ax = plt.subplots(figsize=(6, 3.0))
    ax.bar(list(values), list(values.values()), color="#1f77b4")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    return to_data_uri(fig)


def curve(
    xs: Sequence[float],
    ys: Sequence[float],
    title: str,
    xlabel: str,
    ylabel: str,
    *,
    chosen: float | None = None,
    target: float | None = None,
) -> str:
    """A value-versus-parameter curve, with the chosen value and a target marked."""
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.plot(xs, ys, marker="o")
    if chosen is not None:
        ax.axvline(chosen, color="#2ca02c", linestyle="--", label=f"chosen = {chosen:g}")
    if target is not None:
        ax.axhline(target, color="#d62728", linestyle=":", label=f"target = {target:g}")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if chosen is not None or target is not None:
        ax.legend(fontsize=8)
    return to_data_uri(fig)
