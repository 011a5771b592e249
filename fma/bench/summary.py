"""The summary JSON of a run, computed from its event trace alone.

Keys are a stable interface (more may be added, none renamed): ``scenario``, ``seed``,
``sim_time_s``, ``wall_s``, ``events``, ``actuations``, ``hot_hit_rate``, ``warm_hit_rate``,
``cold_launcher_rate``, ``actuation_latency_s``, ``unserved``, ``gpu_utilization``,
``invariant_violations`` and ``slo``. Added since: ``gpu_hours`` (``held``, ``serving``,
``loading``, ``sleeping``; see :mod:`fma.bench.usage`) and ``wait_s`` (creation to readiness,
per requester, with the same statistics as a latency) and ``wake_floor_multiple`` (each wake's
time over its physical floor, :mod:`fma.bench.floor`, with the same statistics).
"""

import math
from collections.abc import Sequence
from typing import Any

from fma.bench.floor import wake_floor_multiples
from fma.bench.invariants import check_all
from fma.bench.usage import gpu_hours, waits_s
from fma.core.model import ActuationPath

Event = dict[str, Any]
PATHS = tuple(p.value for p in ActuationPath)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation; 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def latency_stats(values: Sequence[float]) -> dict[str, float]:
    return {
        "count": len(values),
        "p50": round(percentile(values, 50), 3),
        "p95": round(percentile(values, 95), 3),
        "p99": round(percentile(values, 99), 3),
        "max": round(max(values), 3) if values else 0.0,
    }


def gpu_utilization(events: Sequence[Event], gpu_count: int, sim_time_s: float) -> float:
    """Time-averaged fraction of GPUs held by requesters."""
    if gpu_count == 0 or sim_time_s <= 0:
        return 0.0
    held: dict[str, int] = {}
    busy, gpu_seconds, last_t = 0, 0.0, 0.0
    for e in events:
        gpu_seconds += busy * (e["t"] - last_t)
        last_t = e["t"]
        if e["kind"] == "requester_scheduled":
            held[e["requester"]] = len(e["gpus"])
            busy += len(e["gpus"])
        elif e["kind"] == "requester_deleted":
            busy -= held.pop(e["requester"], 0)
    gpu_seconds += busy * (sim_time_s - last_t)
    return round(gpu_seconds / (gpu_count * sim_time_s), 4)


def slo_report(summary: dict[str, Any], slo: dict[str, float | None]) -> dict[str, Any]:
    """Each SLO target with the measured value and whether it is met."""
    measured = {
        "p95_actuation_s": summary["actuation_latency_s"]["all"]["p95"],
        "hot_hit_rate": summary["hot_hit_rate"],
    }
    targets: dict[str, Any] = {}
    for name, target in slo.items():
        if target is None:
            continue
        value = measured[name]
        met = value <= target if name.startswith("p") else value >= target
        targets[name] = {"target": target, "value": value, "met": met}
    return {"met": all(t["met"] for t in targets.values()), "targets": targets}


def summarize(
    events: Sequence[Event],
    *,
    scenario: str,
    seed: int,
    sim_time_s: float,
    wall_s: float,
    gpu_count: int,
    unserved: int,
    slo: dict[str, float | None],
) -> dict[str, Any]:
    """The summary of one run. Pure: equal inputs give an equal summary."""
    actuations = [e for e in events if e["kind"] == "actuation"]
    by_path: dict[str, list[float]] = {p: [] for p in PATHS}
    for a in actuations:
        by_path[a["path"]].append(a["latency_s"])
    total = len(actuations)

    def rate(path: str) -> float:
        return round(len(by_path[path]) / total, 4) if total else 0.0

    summary: dict[str, Any] = {
        "scenario": scenario,
        "seed": seed,
        "sim_time_s": sim_time_s,
        "wall_s": round(wall_s, 3),
        "events": len(events),
        "actuations": {"total": total, **{p: len(v) for p, v in by_path.items()}},
        "hot_hit_rate": rate("hot"),
        "warm_hit_rate": rate("warm"),
        "cold_launcher_rate": rate("cold_launcher"),
        "actuation_latency_s": {
            **{p: latency_stats(v) for p, v in by_path.items()},
            "all": latency_stats([a["latency_s"] for a in actuations]),
        },
        "unserved": unserved,
        "gpu_utilization": gpu_utilization(events, gpu_count, sim_time_s),
        "gpu_hours": gpu_hours(events, gpu_count, sim_time_s),
        "wait_s": latency_stats(waits_s(events, sim_time_s)),
        "wake_floor_multiple": latency_stats(wake_floor_multiples(events)),
        "invariant_violations": check_all(list(events)),
    }
    summary["slo"] = slo_report(summary, slo)
    return summary
