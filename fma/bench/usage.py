"""What a run cost and how long demand waited, from its event trace: GPU-hours and waits.

``gpu_hours`` splits GPU time by what the GPUs did: ``held`` (allocated to requesters, what a
cluster bills), ``serving`` (an awake instance), ``loading`` (starting or waking: paid for,
serving nobody) and ``sleeping`` (holding only level-1 sleepers: free for other work).
``wait_s`` is per requester, from creation to its first readiness: it includes queueing for
GPUs, which actuation latency (counted from the container start) does not. A requester still
waiting at the end counts with the time it has waited so far.
"""

from collections.abc import Sequence
from typing import Any

from fma.bench.timeline import gpu_states

Event = dict[str, Any]


def held_gpu_seconds(events: Sequence[Event], end_s: float) -> float:
    """GPU-seconds allocated to requesters (scheduled until deleted)."""
    held: dict[str, int] = {}
    busy, gpu_seconds, last_t = 0, 0.0, 0.0
    for e in events:
        t = min(e["t"], end_s)
        gpu_seconds += busy * (t - last_t)
        last_t = t
        if e["kind"] == "requester_scheduled":
            held[e["requester"]] = len(e["gpus"])
            busy += len(e["gpus"])
        elif e["kind"] == "requester_deleted":
            busy -= held.pop(e["requester"], 0)
    return gpu_seconds + busy * max(0.0, end_s - last_t)


def gpu_hours(events: Sequence[Event], gpu_count: int, end_s: float) -> dict[str, float]:
    """GPU-hours held, serving, loading and sleeping over [0, end_s]."""
    states = gpu_states(events, gpu_count, end_s)
    hours = {
        key: round(states.integral(key, end_s) / 3600.0, 3)
        for key in ("serving", "loading", "sleeping")
    }
    return {"held": round(held_gpu_seconds(events, end_s) / 3600.0, 3), **hours}


def waits_s(events: Sequence[Event], end_s: float) -> list[float]:
    """Creation to first readiness of every requester (censored at ``end_s`` if never ready).

    Requesters deleted before they were ready are left out: nobody waits for them any more
    (a replacement, if any, is counted on its own).
    """
    created: dict[str, float] = {}
    waits: list[float] = []
    for e in events:
        kind = e["kind"]
        if kind == "requester_created":
            created[e["requester"]] = e["t"]
        elif kind == "ready" and e["requester"] in created:
            waits.append(e["t"] - created.pop(e["requester"]))
        elif kind in ("requester_deleting", "requester_deleted"):
            created.pop(e.get("requester", ""), None)
    waits.extend(end_s - t for t in created.values())
    return waits
