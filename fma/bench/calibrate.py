"""``fma sim calibrate``: fit a scenario's latencies to a measured event trace.

The trace is an ``events.jsonl`` from the operator on a real cluster (``fma operator run
--trace``) or from the simulator, which is how the fit is tested: simulate with known latencies,
fit, compare. Each parameter is measured from the pairs of events that bracket it, with medians
for fixed delays (robust to the odd slow one) and a least-squares line for copies, whose time
grows with the bytes moved. A requester's container start is its ``requester_started`` event,
or, in the operator's trace, its actuation's time less its latency.

- ``pod_start_s``: ``requester_scheduled`` (bound) to ``requester_started``, median; in the
  operator's trace, the requester Pod's creation to its container's start as the Pod's
  timestamps (whole seconds) tell them;
- ``requester_start_s``: a requester's container start to its GPUs learnt from its SPI
  (``accelerators``), median less the call (``http_call_s``). The operator's container start
  is the Pod's ``startedAt``, kept to the second, so from its trace this includes the
  truncation (0 to 1 s), as the operator's actuation latencies do;
- ``controller_reaction_s``: the GPUs learnt to the requester's ``bind``, median less
  ``watch_delay_s``. The operator records an action when it is done, the simulator when it
  starts, so this reaction includes the writes before the bind (the finalizer), about what a
  relay waits for after an instance is awake (the provider's labels, the call);
- ``launcher_start_s``: a launcher's ``provider_created`` to ``launcher_ready``, median less
  the mean wait for its readiness probe's tick (half ``launcher_probe_period_s``); where the
  trace has no ``launcher_ready`` (the operator's), a launcher made for a requester created to
  its first ``instance_starting``, less that and the watch and the reaction;
- ``wake_overhead_s`` and ``h2d_gbps``: ``instance_waking`` to ``instance_awake``, a line over
  the bytes per GPU;
- ``sleep_overhead_s`` and ``d2h_gbps``: ``instance_falling_asleep`` to ``instance_sleeping``,
  likewise (a first sleep, which pins host memory, is left out);
- ``vllm_import_s``: a model's start in a direct Pod less its start in a launcher (each as the
  engine probe saw it: see ``engine_init_s``), less the pod start (needs both kinds of start,
  e.g. one trace of each policy);
- per model ``start_s``: ``instance_starting`` to ``instance_awake`` in a launcher, median;
  with a scenario, ``engine_init_s``: what reproduces that start through the controller's
  engine probe (asked at once, then after ``engine_probe_min_s``, doubling), less the weights'
  load and torch.compile.

Several traces may be fitted together: samples are taken from each trace on its own (ids
repeat across traces) and pooled.

A copy line needs instances of at least two sizes; with one size the fixed part is kept from
the base latencies and only the bandwidth is fitted; when no copy can be timed (too few bytes,
or bytes that would have moved faster than any link: a stub engine reports the weights it would
hold), the median time is the fixed part. Parameters without samples keep their base value
and are listed as such.
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
from fma.api.topology import LINKS

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
    """(bytes per GPU, seconds) of every completed wake and every completed sleep but an
    instance's first (which pins its host buffers)."""
    wakes: list[tuple[float, float]] = []
    sleeps: list[tuple[float, float]] = []
    moving: dict[str, Event] = {}
    slept: set[str] = set()
    for e in events:
        kind = e["kind"]
        if kind in ("instance_waking", "instance_falling_asleep"):
            moving[_key(e)] = e
        elif kind in ("instance_awake", "instance_sleeping") and _key(e) in moving:
            start = moving.pop(_key(e))
            if start["kind"] == "instance_waking":
                wakes.append((_bytes_per_gpu(e), e["t"] - start["t"]))
            elif _key(e) in slept:
                sleeps.append((_bytes_per_gpu(e), e["t"] - start["t"]))
            else:
                slept.add(_key(e))
        elif kind.startswith("instance_"):
            moving.pop(_key(e), None)  # a move that failed or was cut short: no sample
    return wakes, sleeps


TIMED_BYTES = 64 * 1024**2
"""Fewer bytes per GPU than this move in milliseconds: such copies time the fixed part."""


FASTEST_LINK_GBPS = max(link.h2d_floor_gbps for link in LINKS.values())
"""No copy is faster than this: bytes that seem to move faster were never copied (a stub
engine reports the weights it would hold)."""


def fit_copy(
    samples: Sequence[tuple[float, float]], overhead_s: float, what: str
) -> tuple[Fit | None, Fit | None]:
    """(fixed overhead, bandwidth in GB/s) of ``seconds = overhead + bytes / bandwidth``."""
    if not samples:
        return None, None
    xs = np.array([s[0] for s in samples])
    ys = np.array([s[1] for s in samples])
    n = len(samples)
    if xs.max() < TIMED_BYTES or float(np.median(xs / ys)) > FASTEST_LINK_GBPS * GB:
        how = f"{what}: median time (no copy that could be timed: too few bytes, or too fast)"
        return Fit(float(np.median(ys)), n, how), None
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


def _models(events: Sequence[Event]) -> dict[str, str]:
    """Requester UID -> its model (``requester_created`` in the simulator's traces, the
    actuation's ``model`` in the operator's)."""
    found: dict[str, str] = {}
    for e in events:
        if e["kind"] in ("requester_created", "actuation") and e.get("model"):
            found.setdefault(e["requester"], e["model"])
    return found


def start_samples(events: Sequence[Event]) -> dict[tuple[str, str], list[float]]:
    """Engine start durations by (model, provider kind). A start that overlapped another on
    its node is left out: their loads shared the node's disk."""
    kind_of: dict[str, str] = {}
    model_of_requester = _models(events)
    model_of_instance: dict[str, str] = {}
    starting: dict[str, Event] = {}
    shared: set[str] = set()
    out: dict[tuple[str, str], list[float]] = defaultdict(list)
    for e in events:
        kind = e["kind"]
        if kind == "provider_created":
            kind_of[e["provider"]] = e.get("provider_kind", "direct")
        elif kind == "bind" and e.get("requester") in model_of_requester:
            model_of_instance[f"{e['provider']}/{e['instance']}"] = model_of_requester[
                e["requester"]
            ]
        elif kind == "instance_starting":
            beside = [k for k, s in starting.items() if s.get("node") == e.get("node")]
            shared.update(beside)
            if beside:
                shared.add(_key(e))
            starting[_key(e)] = e
        elif kind == "instance_awake" and _key(e) in starting:
            start = starting.pop(_key(e))
            model = model_of_instance.get(_key(e))
            if model and _key(e) not in shared:
                out[(model, kind_of.get(e["provider"], "direct"))].append(e["t"] - start["t"])
            shared.discard(_key(e))
        elif kind.startswith("instance_"):
            starting.pop(_key(e), None)
            shared.discard(_key(e))
    return out


def container_starts(events: Sequence[Event]) -> dict[str, float]:
    """Requester UID -> when its container started (see the module docstring)."""
    found: dict[str, float] = {}
    for e in events:
        if e["kind"] == "requester_started":
            found.setdefault(e["requester"], e["t"])
        elif e["kind"] == "actuation" and "latency_s" in e:
            found.setdefault(e["requester"], e["t"] - float(e["latency_s"]))
    return found


def _delays(events: Sequence[Event]) -> dict[str, list[float]]:
    started = container_starts(events)
    learnt: dict[str, float] = {}
    first_bind: dict[str, Event] = {}
    for e in events:
        uid = e.get("requester")
        if e["kind"] == "accelerators" and uid is not None:
            learnt.setdefault(uid, e["t"])
        elif e["kind"] == "bind" and uid is not None:
            first_bind.setdefault(uid, e)
    launchers = {e["provider"] for e in events if e.get("provider_kind") == "launcher"}
    scheduled = [
        b["t"] - a["t"]
        for a, b in _pairs(events, "requester_scheduled", "requester_started", "requester")
    ]
    return {
        "launcher_served": _launcher_first_instances(events, launchers),
        "pod": scheduled or _pod_starts_from_timestamps(events),
        "gpus": [learnt[u] - started[u] for u in learnt if u in started],
        "bind": [first_bind[u]["t"] - learnt[u] for u in learnt if u in first_bind],
        "launcher": [
            b["t"] - a["t"]
            for a, b in _pairs(events, "provider_created", "launcher_ready", "provider")
            if a["provider"] in launchers
        ],
    }


def _pod_starts_from_timestamps(events: Sequence[Event]) -> list[float]:
    """Requester Pods created to their container started, from the Pods' own timestamps (the
    operator's actuation records carry them; Kubernetes keeps them to the second)."""
    return [
        float(e["requester_started_t"]) - float(e["requester_created_t"])
        for e in events
        if e["kind"] == "actuation"
        and e.get("requester_started_t") is not None
        and e.get("requester_created_t") is not None
    ]


def _launcher_first_instances(events: Sequence[Event], launchers: set[str]) -> list[float]:
    """A launcher made for a requester (bound at creation), created to its first instance
    started: its start, its readiness probe, and the controller's reaction to it."""
    created: dict[str, float] = {}
    born_bound: set[str] = set()
    out: list[float] = []
    for e in events:
        kind, provider = e["kind"], e.get("provider")
        if kind == "provider_created" and provider in launchers:
            created[provider] = e["t"]
        elif kind == "bind" and e.get("path") == "cold_launcher" and provider in created:
            born_bound.add(provider)
        elif kind == "instance_starting" and provider in born_bound:
            born_bound.discard(provider)
            out.append(e["t"] - created[provider])
    return out


def probed_init_s(observed_s: float, min_s: float, max_s: float) -> float:
    """The engine start that the controller's probe (at once, then after ``min_s``, doubling to
    ``max_s``) would see at ``observed_s``: the middle of the probe interval it ends."""
    before, t, interval = 0.0, 0.0, min_s
    while t < observed_s - 1e-9:
        before, t = t, t + interval
        interval = min(max_s, interval * 2)
    return (before + min(t, observed_s)) / 2 if t > 0 else 0.0


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

    def fit(name: str, samples: str, less: float, how: str) -> None:
        found = _median_fit(delays[samples], less, how)
        if found is not None:
            fits[name] = found

    fit("pod_start_s", "pod", 0.0, "scheduled (bound) to started")
    fit(
        "requester_start_s",
        "gpus",
        base.http_call_s,
        "container started to its GPUs learnt, less http_call_s",
    )
    fit(
        "controller_reaction_s",
        "bind",
        base.watch_delay_s,
        "GPUs learnt to bound, less watch_delay_s",
    )
    fit(
        "launcher_start_s",
        "launcher",
        base.launcher_probe_period_s / 2,
        "launcher Pod created to Ready, less half its probe period",
    )
    if "launcher_start_s" not in fits:
        reaction_s = fits.get("controller_reaction_s")
        fit(
            "launcher_start_s",
            "launcher_served",
            base.launcher_probe_period_s / 2
            + base.watch_delay_s
            + (reaction_s.value if reaction_s else base.controller_reaction_s),
            "a launcher made for a requester, created to its first instance, less half its"
            " probe period, the watch and the reaction",
        )
    wake_fixed, h2d = fit_copy(wakes, base.wake_overhead_s, "wakes")
    sleep_fixed, d2h = fit_copy(sleeps, base.sleep_overhead_s, "sleeps")
    for name, found in (("wake_overhead_s", wake_fixed), ("sleep_overhead_s", sleep_fixed)):
        if found is not None:
            fits[name] = found
    pod_start = fits["pod_start_s"].value if "pod_start_s" in fits else base.pod_start_s
    probe_min_s, probe_max_s = base.engine_probe_min_s, base.engine_probe_max_s
    imports = [
        probed_init_s(statistics.median(starts[(m, "direct")]), probe_min_s, probe_max_s)
        - probed_init_s(statistics.median(starts[(m, "launcher")]), probe_min_s, probe_max_s)
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
        "models": _model_fits(starts, scenario, latency),
        "fitted": {
            **{k: f.as_json() for k, f in fits.items()},
            **{k: f.as_json() for k, f in bandwidth.items() if f is not None},
        },
        "not_fitted": sorted(set(Latency.model_fields) - set(fits)),
    }


def _model_fits(
    starts: dict[tuple[str, str], list[float]], scenario: Scenario | None, latency: Latency
) -> dict[str, dict[str, Any]]:
    """Per model: the median start in a launcher, and, given a scenario (its disk and
    torch.compile times), the engine init that reproduces it through the engine probe."""
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
            up_s = probed_init_s(
                entry["start_s"], latency.engine_probe_min_s, latency.engine_probe_max_s
            )
            init_s = up_s - load_s - spec.compile_cached_s
            entry["engine_init_s"] = round(max(0.0, init_s), ROUND)
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
    calibrated = scenario.model_copy(
        update={
            "latency": Latency.model_validate(fitted["latency"]),
            "cluster": scenario.cluster.model_copy(update={"node_pools": pools}),
            "models": models,
        }
    )
    return Scenario.model_validate(calibrated.model_dump())  # the fit obeys the rules too
