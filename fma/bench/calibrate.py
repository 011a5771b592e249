"""``fma sim calibrate``: fit a scenario's latencies to a measured event trace.

The trace is an ``events.jsonl`` from the operator on a real cluster (or from the simulator,
which is how the fit is tested: simulate with known latencies, fit, compare). Each parameter is
measured from the pairs of events that bracket it, using medians for fixed delays (robust to the
odd slow one) and a least-squares line for copies, whose time grows with the bytes moved:

- ``pod_start_s``: ``requester_scheduled`` to ``requester_started``, median less
  ``scheduler_s``;
- ``controller_reaction_s``: ``requester_started`` to the controller learning its GPUs
  (``accelerators``: the answer of the requester's SPI), median less ``watch_delay_s`` and
  ``api_write_s`` (the query's round trip);
- ``launcher_start_s``: a launcher's ``provider_created`` to ``launcher_ready``, median;
- ``wake_overhead_s`` and ``h2d_gbps``: ``instance_waking`` to ``instance_awake``, a line over
  the bytes per GPU;
- ``sleep_overhead_s`` and ``d2h_gbps``: ``instance_falling_asleep`` to ``instance_sleeping``,
  likewise;
- ``vllm_import_s``: a model's start in a direct Pod less its start in a launcher, less the
  pod start (needs both kinds of start, e.g. one trace of each policy);
- per model ``start_s``: ``instance_starting`` to ``instance_awake`` in a launcher, median.

Several traces may be fitted together: samples are taken from each trace on its own (ids
repeat across traces) and pooled.

A copy line needs instances of at least two sizes; with one size the fixed part is kept from
the base latencies and only the bandwidth is fitted. ``engine_init_s`` of a model is its start
less its weights over the disk bandwidth, so it is fitted only against a scenario (which gives
the disk bandwidth). Parameters without samples keep their base value and are listed as such.
"""

import json
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from fma.api.latency import GB, Latency
from fma.api.scenario import Scenario

Event = dict[str, Any]
ROUND = 4


class TraceError(ValueError):
    """A trace file that cannot be read as events; the message names the file and line."""


def read_trace(path: Path) -> list[Event]:
    """The events of an ``events.jsonl``: one JSON object with ``t`` and ``kind`` per line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise TraceError(f"{path}: cannot read: {error.strerror}") from None
    events: list[Event] = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError:
            raise TraceError(f"{path} line {number}: not JSON") from None
        if not isinstance(event, dict) or not {"t", "kind"} <= event.keys():
            raise TraceError(f"{path} line {number}: an event needs 't' and 'kind'")
        events.append(event)
    return events


@dataclass(frozen=True)
class Fit:
    value: float
    samples: int
    how: str

    def as_json(self) -> dict[str, Any]:
        return {"value": round(self.value, ROUND), "samples": self.samples, "from": self.how}


def _median_fit(values: Sequence[float], less: float, how: str) -> Fit | None:
    if not values:
        return None
    return Fit(max(0.0, statistics.median(values) - less), len(values), how)


def _key(e: Event) -> str:
    return f"{e['provider']}/{e['instance']}"


def _bytes_per_gpu(e: Event) -> float:
    return float(e.get("bytes", 0)) / max(1, len(e.get("gpus", ())) or 1)


def _pairs(events: Iterable[Event], start: str, end: str, key: str) -> list[tuple[Event, Event]]:
    """(start event, first following end event) per id ``key``."""
    opened: dict[str, Event] = {}
    pairs = []
    for e in events:
        if e["kind"] == start and key in e:
            opened[e[key]] = e
        elif e["kind"] == end and e.get(key) in opened:
            pairs.append((opened.pop(e[key]), e))
    return pairs


def copy_samples(
    events: Sequence[Event],
) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """(bytes per GPU, seconds) of every completed wake and every completed sleep."""
    wakes: list[tuple[float, float]] = []
    sleeps: list[tuple[float, float]] = []
    moving: dict[str, Event] = {}
    for e in events:
        kind = e["kind"]
        if kind in ("instance_waking", "instance_falling_asleep"):
            moving[_key(e)] = e
        elif kind in ("instance_awake", "instance_sleeping") and _key(e) in moving:
            start = moving.pop(_key(e))
            done = wakes if start["kind"] == "instance_waking" else sleeps
            done.append((_bytes_per_gpu(e), e["t"] - start["t"]))
        elif kind.startswith("instance_"):
            moving.pop(_key(e), None)  # a move that failed or was cut short: no sample
    return wakes, sleeps


def fit_copy(
    samples: Sequence[tuple[float, float]], overhead_s: float, what: str
) -> tuple[Fit | None, Fit | None]:
    """(fixed overhead, bandwidth in GB/s) of ``seconds = overhead + bytes / bandwidth``."""
    if not samples:
        return None, None
    xs = np.array([s[0] for s in samples])
    ys = np.array([s[1] for s in samples])
    n = len(samples)
    if xs.max() > 1.1 * xs.min() and n >= 3:
        slope, intercept = np.polyfit(xs, ys, 1)
        if slope > 0:
            how = f"{what}: least-squares line over bytes per GPU"
            return Fit(max(0.0, float(intercept)), n, how), Fit(1.0 / float(slope) / GB, n, how)
    moving = [x / (y - overhead_s) for x, y in zip(xs, ys, strict=True) if y > overhead_s]
    if not moving:
        return None, None
    how = f"{what}: median of bytes per GPU / (seconds - the base overhead); one size only"
    return None, Fit(statistics.median(moving) / GB, len(moving), how)


def start_samples(events: Sequence[Event]) -> dict[tuple[str, str], list[float]]:
    """Engine start durations by (model, provider kind)."""
    kind_of: dict[str, str] = {}
    model_of_requester: dict[str, str] = {}
    model_of_instance: dict[str, str] = {}
    starting: dict[str, Event] = {}
    out: dict[tuple[str, str], list[float]] = defaultdict(list)
    for e in events:
        kind = e["kind"]
        if kind == "provider_created":
            kind_of[e["provider"]] = e.get("provider_kind", "direct")
        elif kind == "requester_created":
            model_of_requester[e["requester"]] = e.get("model", "")
        elif kind == "bind" and e.get("requester") in model_of_requester:
            model_of_instance[f"{e['provider']}/{e['instance']}"] = model_of_requester[
                e["requester"]
            ]
        elif kind == "instance_starting":
            starting[_key(e)] = e
        elif kind == "instance_awake" and _key(e) in starting:
            start = starting.pop(_key(e))
            model = model_of_instance.get(_key(e))
            if model:
                out[(model, kind_of.get(e["provider"], "direct"))].append(e["t"] - start["t"])
        elif kind.startswith("instance_"):
            starting.pop(_key(e), None)
    return out


def _delays(events: Sequence[Event]) -> dict[str, list[float]]:
    binds: dict[str, float] = {}
    started: dict[str, float] = {}
    for e in events:
        if e["kind"] == "requester_started":
            started.setdefault(e["requester"], e["t"])
        elif e["kind"] == "accelerators" and e.get("requester") in started:
            binds.setdefault(e["requester"], e["t"] - started[e["requester"]])
    launchers = {e["provider"] for e in events if e.get("provider_kind") == "launcher"}
    return {
        "pod": [
            b["t"] - a["t"]
            for a, b in _pairs(events, "requester_scheduled", "requester_started", "requester")
        ],
        "bind": list(binds.values()),
        "launcher": [
            b["t"] - a["t"]
            for a, b in _pairs(events, "provider_created", "launcher_ready", "provider")
            if a["provider"] in launchers
        ],
    }


def calibrate(
    traces: Sequence[Sequence[Event]],
    base: Latency | None = None,
    scenario: Scenario | None = None,
) -> dict[str, Any]:
    """The fitted latency section and what each value came from (see the module docstring)."""
    base = base or (scenario.latency if scenario is not None else Latency())
    fits: dict[str, Fit] = {}
    delays: dict[str, list[float]] = defaultdict(list)
    wakes: list[tuple[float, float]] = []
    sleeps: list[tuple[float, float]] = []
    starts: dict[tuple[str, str], list[float]] = defaultdict(list)
    for events in traces:
        for name, values in _delays(events).items():
            delays[name] += values
        trace_wakes, trace_sleeps = copy_samples(events)
        wakes += trace_wakes
        sleeps += trace_sleeps
        for key, values in start_samples(events).items():
            starts[key] += values
    for name, fit in (
        (
            "pod_start_s",
            _median_fit(delays["pod"], base.scheduler_s, "scheduled to started, less scheduler_s"),
        ),
        (
            "controller_reaction_s",
            _median_fit(
                delays["bind"],
                base.watch_delay_s + base.api_write_s,
                "started to its GPUs learnt, less watch_delay_s and api_write_s",
            ),
        ),
        ("launcher_start_s", _median_fit(delays["launcher"], 0.0, "launcher Pod created to ready")),
    ):
        if fit is not None:
            fits[name] = fit
    wake_fixed, h2d = fit_copy(wakes, base.wake_overhead_s, "wakes")
    sleep_fixed, d2h = fit_copy(sleeps, base.sleep_overhead_s, "sleeps")
    for name, fit in (("wake_overhead_s", wake_fixed), ("sleep_overhead_s", sleep_fixed)):
        if fit is not None:
            fits[name] = fit
    pod_start = fits["pod_start_s"].value if "pod_start_s" in fits else base.pod_start_s
    imports = [
        statistics.median(starts[(m, "direct")])
        - statistics.median(starts[(m, "launcher")])
        - pod_start
        for m in {m for m, _ in starts}
        if starts.get((m, "direct")) and starts.get((m, "launcher"))
    ]
    if imports:
        fits["vllm_import_s"] = Fit(
            max(0.0, statistics.median(imports)),
            len(imports),
            "per model: direct start - launcher start - pod start",
        )
    latency = base.model_copy(update={k: round(f.value, ROUND) for k, f in fits.items()})
    bandwidth = {"h2d_gbps": h2d, "d2h_gbps": d2h}
    return {
        "events": sum(len(t) for t in traces),
        "latency": latency.model_dump(),
        "node_pool": {k: round(f.value, 3) if f else None for k, f in bandwidth.items()},
        "models": _models(starts, scenario),
        "fitted": {
            **{k: f.as_json() for k, f in fits.items()},
            **{k: f.as_json() for k, f in bandwidth.items() if f is not None},
        },
        "not_fitted": sorted(set(Latency.model_fields) - set(fits)),
    }


def _models(
    starts: dict[tuple[str, str], list[float]], scenario: Scenario | None
) -> dict[str, dict[str, Any]]:
    """Per model: the median start in a launcher, and engine_init_s given a scenario's disk."""
    out: dict[str, dict[str, Any]] = {}
    for (model, kind), values in sorted(starts.items()):
        if kind != "launcher":
            continue
        entry: dict[str, Any] = {
            "start_s": round(statistics.median(values), ROUND),
            "samples": len(values),
        }
        if scenario is not None and any(m.name == model for m in scenario.models):
            spec = scenario.model(model)
            disk = min(p.disk_gbps for p in scenario.cluster.node_pools) * GB
            load_s = spec.weights_gib * 1024**3 / disk
            entry["engine_init_s"] = round(max(0.0, entry["start_s"] - load_s), ROUND)
        out[model] = entry
    return out


def calibrated_scenario(scenario: Scenario, fitted: dict[str, Any]) -> Scenario:
    """``scenario`` with the fitted latencies, copy bandwidths and engine init times."""
    pools = [
        p.model_copy(update={k: v for k, v in fitted["node_pool"].items() if v is not None})
        for p in scenario.cluster.node_pools
    ]
    models = [
        m.model_copy(update={"engine_init_s": fitted["models"][m.name]["engine_init_s"]})
        if "engine_init_s" in fitted["models"].get(m.name, {})
        else m
        for m in scenario.models
    ]
    return scenario.model_copy(
        update={
            "latency": Latency.model_validate(fitted["latency"]),
            "cluster": scenario.cluster.model_copy(update={"node_pools": pools}),
            "models": models,
        }
    )
