"""Time series derived from an event trace, for reports: pure replays, no plotting here."""

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Event = dict[str, Any]

PATH_NAMES = ("hot", "warm", "cold_launcher", "cold")
GPU_STATES = ("serving", "loading", "sleeping", "idle", "lost")
"""Serving: an awake instance. Loading: an instance starting or waking. Sleeping: only
level-1 sleepers on it. Idle: none of these. Lost: its node is gone."""

_LOADING = {"instance_starting", "instance_waking"}


@dataclass(frozen=True)
class Series:
    """Step series: ``values[k]`` holds from ``t[k]`` until ``t[k + 1]``."""

    t: list[float]
    values: dict[str, list[float]]

    def at(self, times: Sequence[float]) -> "Series":
        """The series sampled at ``times`` (the value in force at each time)."""
        picks = [max(0, bisect.bisect_right(self.t, x) - 1) for x in times]
        return Series(list(times), {k: [v[i] for i in picks] for k, v in self.values.items()})

    def bucket_means(self, end_s: float, buckets: int) -> "Series":
        """Time averages over ``buckets`` equal spans of [0, end_s); ``t`` holds the midpoints.

        Unlike sampling, averaging keeps short spikes visible in proportion to their length.
        """
        width = end_s / buckets
        ts = [*self.t, end_s]
        out: dict[str, list[float]] = {k: [0.0] * buckets for k in self.values}
        for k in range(len(self.t)):
            lo, hi = max(ts[k], 0.0), min(ts[k + 1], end_s)
            first = int(lo / width) if width > 0 else 0
            b = first
            while b < buckets and b * width < hi:
                overlap = min(hi, (b + 1) * width) - max(lo, b * width)
                if overlap > 0:
                    for key, values in self.values.items():
                        out[key][b] += values[k] * overlap / width
                b += 1
        return Series([width * (b + 0.5) for b in range(buckets)], out)

    def integral(self, key: str, end_s: float) -> float:
        """The area under ``values[key]`` from the first time to ``end_s`` (value x seconds)."""
        ts = [*self.t, end_s]
        return sum(
            v * max(0.0, min(ts[k + 1], end_s) - ts[k]) for k, v in enumerate(self.values[key])
        )


def _gpu_state(instances: dict[str, str]) -> str:
    states = set(instances.values())
    for state in ("serving", "loading", "sleeping"):
        if state in states:
            return state
    return "idle"


def gpu_states(
    events: Sequence[Event],
    gpu_count: int,
    end_s: float,
    gpus_by_node: Mapping[str, int] | None = None,
) -> Series:
    """How many GPUs are serving, loading, sleeping, idle and lost over time.

    A GPU counts as loading while an instance on it starts or wakes, as sleeping when it holds
    only sleepers. A node's GPUs count as lost from its ``node_lost`` to its ``node_restored``;
    the size of a node comes from ``gpus_by_node`` or from its ``node_added`` event.
    """
    instances: dict[str, dict[str, str]] = {}  # gpu -> instance key -> state
    lost_nodes: set[str] = set()
    t: list[float] = []
    out: dict[str, list[float]] = {k: [] for k in GPU_STATES}
    sizes = dict(gpus_by_node or {})
    node_gpus: dict[str, list[str]] = {}

    def sample(now: float) -> None:
        counts = dict.fromkeys(GPU_STATES, 0)
        for held in instances.values():
            counts[_gpu_state(held)] += 1
        counts["lost"] = sum(sizes.get(n, 0) for n in lost_nodes)
        counts["idle"] = max(
            0,
            gpu_count - counts["serving"] - counts["loading"] - counts["sleeping"] - counts["lost"],
        )
        if t and t[-1] == now:
            t.pop()
            for series in out.values():
                series.pop()
        t.append(now)
        for key in GPU_STATES:
            out[key].append(counts[key])

    sample(0.0)
    for e in events:
        kind = e["kind"]
        if kind == "node_added":
            node_gpus[e["node"]] = list(e.get("gpus", ()))
            sizes.setdefault(e["node"], len(node_gpus[e["node"]]))
            continue
        if kind == "node_lost":
            lost_nodes.add(e["node"])
            for gpu in node_gpus.get(e["node"], ()):
                instances.pop(gpu, None)  # its Pods were force-deleted with it
        elif kind == "node_restored":
            lost_nodes.discard(e["node"])
        elif kind.startswith("instance_") and "gpus" in e:
            key = f"{e['provider']}/{e['instance']}"
            for gpu in e["gpus"]:
                held = instances.setdefault(gpu, {})
                if kind in _LOADING:
                    held[key] = "loading"
                elif kind == "instance_awake":
                    held[key] = "serving"
                elif kind == "instance_sleeping":
                    held[key] = "sleeping"
                else:
                    held.pop(key, None)
        else:
            continue
        sample(e["t"])
    sample(end_s)
    return Series(t, out)


def waiting_requesters(events: Sequence[Event], end_s: float) -> Series:
    """Requesters wanted and not ready, over time: demand not met at that moment.

    ``for GPUs``: created, not yet scheduled (the cluster is full). ``actuating``: scheduled,
    waiting for its server to become ready.
    """
    pending: set[str] = set()
    actuating: set[str] = set()
    t: list[float] = [0.0]
    out: dict[str, list[float]] = {"for GPUs": [0.0], "actuating": [0.0]}
    for e in events:
        kind = e["kind"]
        uid = str(e.get("requester"))
        if kind == "requester_created":
            pending.add(uid)
        elif kind == "requester_scheduled":
            pending.discard(uid)
            actuating.add(uid)
        elif kind in ("ready", "requester_deleted", "requester_deleting"):
            pending.discard(uid)
            actuating.discard(uid)
        else:
            continue
        if t[-1] == e["t"]:
            t.pop()
            out["for GPUs"].pop()
            out["actuating"].pop()
        t.append(e["t"])
        out["for GPUs"].append(float(len(pending)))
        out["actuating"].append(float(len(actuating)))
    t.append(end_s)
    out["for GPUs"].append(float(len(pending)))
    out["actuating"].append(float(len(actuating)))
    return Series(t, out)


def actuation_counts(events: Sequence[Event], end_s: float, buckets: int = 24) -> Series:
    """Actuations per path in equal time buckets (``t`` holds the bucket starts)."""
    width = end_s / buckets if end_s > 0 else 1.0
    counts = {p: [0.0] * buckets for p in PATH_NAMES}
    for e in events:
        if e["kind"] == "actuation":
            counts[e["path"]][min(int(e["t"] / width), buckets - 1)] += 1
    return Series([width * k for k in range(buckets)], counts)
