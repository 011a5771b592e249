"""Evidence from an ``events.jsonl`` trace, the simulator's or the operator's (``docs/events.md``).

The trace is read in order. Each requester's *window* opens at its (latest) ``bind`` and closes
at its first readiness (``ready``, or the controller's ``actuation`` record, whichever comes
first); later bindings of a requester already actuated are ignored, as the controller records
an actuation once. In the window, the bound instance's ``instance_starting`` is an engine start
and its ``instance_waking`` / ``instance_awake`` a wake. A launcher was Ready before the binding
when its ``launcher_ready`` came earlier in the trace; a provider was made for the requester when
its ``provider_created`` is the event just before the ``bind``.

The operator's ``actuation`` events carry its record of the actuation
(:class:`~fma.adapters.k8s.actuations.ActuationRecord`): the Pods' own timestamps, which its
trace has no events for, and its moments. Where present they are used in place of what the
stream says, so that creation times compare like with like (whole seconds on both sides).
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from fma.bench.actuation.evidence import Evidence, ProviderKind
from fma.bench.actuation.report import metrics
from fma.bench.actuation.schema import ActuationMetrics, Source
from fma.bench.calibrate import read_trace

Event = dict[str, Any]


class TraceProblem(ValueError):
    """An event that lacks a field the fold needs; the message names the event and field."""


@dataclass(slots=True)
class _Provider:
    kind: ProviderKind | None = None
    node: str | None = None
    created_s: float | None = None
    ever_ready: bool = False
    bound_to: str | None = None
    instance: str | None = None


@dataclass(slots=True)
class _Requester:
    created_s: float | None = None
    started_s: float | None = None
    gpus: tuple[str, ...] = ()
    evidence: Evidence | None = None
    actuated: bool = False


def _field(e: Event, key: str, number: int) -> Any:
    value = e.get(key)
    if value is None or (isinstance(value, str) and not value):
        raise TraceProblem(f"event {number} ({e.get('kind')}): missing field {key!r}")
    return value


def _time(e: Event, number: int) -> float:
    t = e.get("t")
    if isinstance(t, bool) or not isinstance(t, int | float):
        raise TraceProblem(f"event {number} ({e.get('kind')}): field 't' is not a number")
    return float(t)


class _Fold:
    def __init__(self) -> None:
        self.providers: dict[str, _Provider] = {}
        self.requesters: dict[str, _Requester] = {}
        self.previous: Event | None = None

    def requester(self, uid: str) -> _Requester:
        return self.requesters.setdefault(uid, _Requester())

    def provider(self, name: str) -> _Provider:
        return self.providers.setdefault(name, _Provider())

    def open_window(self, uid: str) -> Evidence | None:
        """The evidence of a requester whose window is open (bound, not yet ready)."""
        r = self.requesters.get(uid)
        if r is None or r.actuated or r.evidence is None or r.evidence.ready_s is not None:
            return None
        return r.evidence

    def bound_window(self, provider: str, instance: str) -> tuple[str, Evidence] | None:
        p = self.providers.get(provider)
        if p is None or p.bound_to is None or p.instance != instance:
            return None
        e = self.open_window(p.bound_to)
        return (p.bound_to, e) if e is not None else None

    def apply(self, e: Event, number: int) -> None:
        kind, t = e.get("kind"), _time(e, number)
        match kind:
            case "requester_created":
                self.requester(_field(e, "requester", number)).created_s = t
            case "requester_started":
                self.requester(_field(e, "requester", number)).started_s = t
            case "requester_scheduled" | "accelerators":
                gpus = e.get("gpus")
                if isinstance(gpus, list):
                    self.requester(_field(e, "requester", number)).gpus = tuple(map(str, gpus))
            case "provider_created":
                p = self.provider(_field(e, "provider", number))
                kind_text = e.get("provider_kind")
                p.kind = ProviderKind(kind_text) if kind_text in set(ProviderKind) else None
                p.node, p.created_s, p.ever_ready = e.get("node"), t, False
            case "launcher_ready":
                self.provider(_field(e, "provider", number)).ever_ready = True
            case "bind":
                self.bind(e, t, number)
            case "path_changed":
                p = self.provider(_field(e, "provider", number))
                window = self.open_window(p.bound_to) if p.bound_to else None
                if p.bound_to is not None and window is not None:
                    self.set(p.bound_to, controller_path=e.get("path"))
            case "unbind":
                p = self.provider(_field(e, "provider", number))
                p.bound_to = p.instance = None
            case "instance_starting" | "instance_waking" | "instance_awake":
                self.instance_event(e, t, number)
            case "ready":
                uid = _field(e, "requester", number)
                if self.open_window(uid) is not None:
                    self.set(uid, ready_s=t, relayed_s=t)
            case "actuation":
                self.actuation(e, t, number)
        self.previous = e

    def set(self, uid: str, **changes: Any) -> None:
        r = self.requesters[uid]
        assert r.evidence is not None
        r.evidence = replace(r.evidence, **changes)

    def bind(self, e: Event, t: float, number: int) -> None:
        uid = _field(e, "requester", number)
        name = _field(e, "provider", number)
        r, p = self.requester(uid), self.provider(name)
        p.bound_to, p.instance = uid, e.get("instance")
        if r.actuated:
            return
        previous = self.previous or {}
        made_for_it = (
            previous.get("kind") == "provider_created" and previous.get("provider") == name
        )
        r.evidence = Evidence(
            requester=uid,
            requester_name=uid,
            requester_created_s=r.created_s,
            container_started_s=r.started_s,
            gpu_uuids=r.gpus,
            provider=name,
            provider_kind=p.kind,
            node=p.node,
            instance=p.instance,
            provider_created_s=p.created_s,
            launcher_ready_before_bind=p.ever_ready if p.kind is ProviderKind.LAUNCHER else None,
            bound_s=t,
            provider_create_started_s=p.created_s if made_for_it else None,
            wake_evidence=True,
            controller_path=e.get("path"),
        )

    def instance_event(self, e: Event, t: float, number: int) -> None:
        found = self.bound_window(_field(e, "provider", number), _field(e, "instance", number))
        if found is None:
            return
        uid, window = found
        match e["kind"]:
            case "instance_starting" if window.instance_started_s is None:
                self.set(uid, instance_started_s=t)
            case "instance_waking" if window.wake_started_s is None:
                self.set(uid, wake_started_s=t)
            case "instance_awake" if window.wake_started_s is not None:
                self.set(uid, wake_ended_s=t)

    def actuation(self, e: Event, t: float, number: int) -> None:
        uid = _field(e, "requester", number)
        r = self.requester(uid)
        if r.actuated:
            return
        if r.evidence is None:
            r.evidence = Evidence(requester=uid, problems=("actuation without a binding",))
        if r.evidence.ready_s is None:
            self.set(uid, ready_s=t, relayed_s=t)
        self.set(uid, controller_path=e.get("path"))
        self.set(uid, **record_changes(e, r.evidence))
        r.actuated = True

    def evidence(self) -> list[Evidence]:
        """Every bound requester's evidence, in order of first binding (then the never bound
        among the created, as records without a provider)."""
        found: list[Evidence] = []
        for uid, r in self.requesters.items():
            if r.evidence is not None:
                found.append(r.evidence)
            elif r.created_s is not None:
                found.append(
                    Evidence(requester=uid, requester_created_s=r.created_s, gpu_uuids=r.gpus)
                )
        return found


_RECORD_FIELDS = {
    "requester_name": "requester_name",
    "requester_created_t": "requester_created_s",
    "requester_started_t": "container_started_s",
    "provider": "provider",
    "instance": "instance",
    "node": "node",
    "provider_created_t": "provider_created_s",
    "bound_t": "bound_s",
    "provider_create_t": "provider_create_started_s",
    "instance_create_t": "instance_started_s",
    "wake_start_t": "wake_started_s",
    "wake_end_t": "wake_ended_s",
    "relay_t": "relayed_s",
}
"""An operator's ``actuation`` record field -> the evidence field it gives."""


def record_changes(e: Event, evidence: Evidence) -> dict[str, Any]:
    """What the operator's record in an ``actuation`` event adds to (or corrects in) the
    evidence; nothing for a simulator's event."""
    if "bound_t" not in e:
        return {}
    changes: dict[str, Any] = {
        target: e[key] for key, target in _RECORD_FIELDS.items() if e.get(key) is not None
    }
    kind = e.get("provider_kind")
    if kind in set(ProviderKind):
        changes["provider_kind"] = ProviderKind(kind)
    if (changes.get("provider_kind") or evidence.provider_kind) is ProviderKind.LAUNCHER:
        ready_t, bound_t = e.get("provider_ready_t"), e.get("bound_t")
        changes["launcher_ready_before_bind"] = (
            isinstance(ready_t, int | float)
            and isinstance(bound_t, int | float)
            and ready_t <= bound_t
        )
    return changes


def evidence_from_events(events: Iterable[Event]) -> list[Evidence]:
    """One :class:`Evidence` per requester of the trace; raises :class:`TraceProblem`."""
    fold = _Fold()
    for number, e in enumerate(events, start=1):
        fold.apply(e, number)
    return fold.evidence()


def metrics_from_traces(paths: Sequence[Path]) -> ActuationMetrics:
    """The report of ``events.jsonl`` files, one iteration each; raises
    :class:`~fma.bench.calibrate.TraceError` or :class:`TraceProblem` naming the file."""
    observations = []
    for path in paths:
        try:
            observations.append(evidence_from_events(read_trace(path)))
        except TraceProblem as problem:
            raise TraceProblem(f"{path}: {problem}") from None
    source = Source(
        kind="trace",
        traces=[str(p) for p in paths],
        namespace=None,
        operator_records=[],
    )
    return metrics(source, observations, timing_source="trace")
