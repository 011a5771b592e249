"""Time series derived from an event trace, for reports: pure replays, no plotting here."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

Event = dict[str, Any]

_AWAKE = {"instance_starting", "instance_awake", "instance_waking"}


@dataclass(frozen=True)
class Series:
    """Step series: ``values[k]`` holds from ``t[k]`` until ``t[k + 1]``."""

    t: list[float]
    values: dict[str, list[float]]


def gpu_states(events: Sequence[Event], gpu_count: int, end_s: float) -> Series:
    """GPUs awake (serving or loading), sleeping (holding only sleepers) and idle over time."""
    state: dict[str, dict[str, str]] = {}  # gpu -> instance key -> "awake" | "sleeping"
    t: list[float] = []
    out: dict[str, list[float]] = {"awake": [], "sleeping": [], "idle": []}

    def sample(now: float) -> None:
        awake = sum(1 for inst in state.values() if "awake" in inst.values())
        sleeping = sum(1 for inst in state.values() if inst and "awake" not in inst.values())
        if t and t[-1] == now:
            for series in out.values():
                series.pop()
            t.pop()
        t.append(now)
        out["awake"].append(awake)
        out["sleeping"].append(sleeping)
        out["idle"].append(gpu_count - awake - sleeping)

    sample(0.0)
    for e in events:
        kind = e["kind"]
        if not kind.startswith("instance_"):
            continue
        key = f"{e['provider']}/{e['instance']}"
        for gpu in e["gpus"]:
            instances = state.setdefault(gpu, {})
            if kind in _AWAKE:
                instances[key] = "awake"
            elif kind == "instance_sleeping":
                instances[key] = "sleeping"
            else:
                instances.pop(key, None)
        sample(e["t"])
    sample(end_s)
    return Series(t, out)


def waiting_requesters(events: Sequence[Event], end_s: float) -> Series:
    """Requesters created and not (yet) ready, over time: demand not met at that moment."""
    waiting: set[str] = set()
    t: list[float] = [0.0]
    counts: list[float] = [0.0]
    for e in events:
        kind = e["kind"]
        if kind == "requester_created":
            waiting.add(e["requester"])
        elif kind in ("ready", "requester_deleted", "requester_deleting"):
            waiting.discard(e["requester"])
        else:
            continue
        t.append(e["t"])
        counts.append(float(len(waiting)))
    t.append(end_s)
    counts.append(float(len(waiting)))
    return Series(t, {"waiting": counts})


def hit_rates(events: Sequence[Event], end_s: float, buckets: int = 24) -> Series:
    """Share of actuations per path in equal time buckets (NaN-free: empty buckets give 0)."""
    width = end_s / buckets if end_s > 0 else 1.0
    counts = [dict.fromkeys(("hot", "warm", "cold_launcher", "cold"), 0) for _ in range(buckets)]
    for e in events:
        if e["kind"] == "actuation":
            counts[min(int(e["t"] / width), buckets - 1)][e["path"]] += 1
    t = [width * (k + 0.5) for k in range(buckets)]
    values: dict[str, list[float]] = {p: [] for p in ("hot", "warm", "cold_launcher", "cold")}
    for bucket in counts:
        total = sum(bucket.values())
        for path, n in bucket.items():
            values[path].append(n / total if total else 0.0)
    return Series(t, values)
