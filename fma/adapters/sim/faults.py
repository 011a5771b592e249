"""Faults: the trouble a scenario's ``faults`` list asks for, injected at seeded moments.

Two families (``fma.api.scenario.Fault``):

- **Occurrences** change the platform at a moment, once (``at``) or as a Poisson process
  (``rate_per_h``): a node is lost (its Pods are force-deleted; it may come back empty after
  ``duration``), cordoned (uncordoned after ``duration``) or NotReady for ``duration`` (its
  kubelet stops reporting; its Pods run on), a launcher's container restarts (its instances
  vanish), an instance crashes (it shows as stopped), or the controller restarts (its memory
  is lost).
- **Per-operation** faults hit single operations with ``probability`` inside their window, and
  answer with an outcome of the operator's taxonomy (:mod:`fma.core.outcomes`): a wake or a
  sleep answers an error, or hangs until the HTTP timeout (the engine may still finish:
  ``UNKNOWN``), or the engine refuses to sleep (``INVALID``); an instance create answers 500,
  or 409 for an instance a lost call created; an instance delete, a readiness relay or the
  query of a requester's GPUs fails; an API write answers 409 Conflict or a transient 5xx; a watch
  notification is held back or dropped. A window with drops ends with a re-list, as a
  reflector does when it re-establishes a watch.

Every random choice comes from the fault's own generator (seeded from the run's seed, the
fault's index and kind), and every injection is written to the trace as a ``fault`` event, so a
run replays exactly. :meth:`FaultInjector.stop` ends every fault at once (the liveness phase).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fma.adapters.sim.cluster import SimCluster
from fma.adapters.sim.controller import Executor, SimController
from fma.adapters.sim.seeds import sub_rng
from fma.api.scenario import OCCURRENCE_FAULTS, Fault
from fma.control.reconcile import Decision
from fma.core.actions import (
    API_WRITES,
    Action,
    CreateInstance,
    DeleteInstance,
    EmitEvent,
    RelayReadiness,
    SleepInstance,
    WakeInstance,
)
from fma.core.model import InstanceState, ProviderKind
from fma.core.outcomes import Outcome, OutcomeKind

_API_ERRORS = {
    "api_conflict": (OutcomeKind.CONFLICT, "409 Conflict"),
    "api_error": (OutcomeKind.TRANSIENT, "503 Service Unavailable"),
}
_CALL_FAULTS: dict[type, str] = {
    WakeInstance: "wake_failure",
    SleepInstance: "sleep_failure",
    CreateInstance: "create_failure",
    DeleteInstance: "delete_failure",
    RelayReadiness: "relay_failure",
}
"""The per-operation fault that hits each kind of HTTP call."""


@dataclass(frozen=True, slots=True)
class Injection:
    """What a faulty call does: its outcome, the seconds it hung, and whether it took effect
    all the same (a timeout whose call went through; a 409 for an instance that exists)."""

    kind: OutcomeKind
    error: str
    stall_s: float = 0.0
    took_effect: bool = False
    refused_sleep: bool = False


class _Armed:
    """One configured fault with its window and its own generator."""

    __slots__ = ("fault", "hi_s", "index", "lo_s", "rng")

    def __init__(self, index: int, fault: Fault, end_s: float, seed: int) -> None:
        self.index = index
        self.fault = fault
        self.lo_s = fault.start
        self.hi_s = min(fault.until if fault.until is not None else end_s, end_s)
        self.rng = sub_rng(seed, f"fault/{index}/{fault.kind}")

    def covers(self, now_s: float) -> bool:
        return self.lo_s <= now_s < self.hi_s


def faults_end_s(faults: Sequence[Fault], end_s: float, *, restart_s: float) -> float:
    """When every fault is over: the end of the last window plus how long one occurrence lasts
    (a node away, a cordon, the controller down for ``restart_s`` unless set); 0 without
    faults. Liveness is judged from then on."""
    ends = []
    for f in faults:
        lasts_s = f.duration
        if lasts_s is None:
            lasts_s = restart_s if f.kind == "controller_restart" else 0.0
        ends.append(min(f.until if f.until is not None else end_s, end_s) + lasts_s)
    return max(ends, default=0.0)


class FaultInjector:
    """Injects faults into one run; also the controller's :class:`WatchFilter`."""

    def __init__(
        self,
        cluster: SimCluster,
        controller: SimController,
        faults: Sequence[Fault],
        *,
        end_s: float,
        seed: int,
    ) -> None:
        self.cluster = cluster
        self.controller = controller
        self.active = False
        self.injected = 0
        self._armed = [_Armed(i, f, end_s, seed) for i, f in enumerate(faults)]

    def _of(self, *kinds: str) -> list[_Armed]:
        return [a for a in self._armed if a.fault.kind in kinds]

    def start(self) -> None:
        """Arm every fault: schedule occurrences, hook the watch and the executor."""
        self.active = True
        for armed in self._armed:
            if armed.fault.kind in OCCURRENCE_FAULTS:
                self._schedule_next(armed, float(self.cluster.env.now))
            elif armed.fault.kind == "watch_drop":
                self._later(armed.hi_s, self.controller.relist)
        if self._of("watch_delay", "watch_drop"):
            self.controller.watch = self
        if self._of("gpu_query_failure"):
            self.cluster.accelerator_query_fails = self._accelerator_query_fails
        if self._of("api_conflict", "api_error", *_CALL_FAULTS.values()):
            executor = FaultyExecutor(self.controller.executor, self)
            self.controller.executor = executor
            self.controller.stall_s = executor.take_stall_s

    def stop(self) -> None:
        """Every fault ends now; recoveries already scheduled (a node's return) still happen."""
        if self.active and self._of("watch_drop"):
            self.controller.relist()
        self.active = False

    # --- scheduling ----------------------------------------------------------------------------

    def _later(self, at_s: float, fn: Callable[[], None]) -> None:
        delay_s = max(0.0, at_s - float(self.cluster.env.now))
        self.cluster.env.timeout(delay_s).callbacks.append(lambda _event: fn())

    def _schedule_next(self, armed: _Armed, after_s: float) -> None:
        """The next occurrence after ``after_s``: ``at`` once, or the next Poisson arrival."""
        fault = armed.fault
        if fault.at is not None:
            at_s = fault.at if after_s <= fault.at else None
        else:
            assert fault.rate_per_h is not None
            at_s = max(after_s, armed.lo_s) + armed.rng.expovariate(fault.rate_per_h / 3600.0)
        if at_s is None or at_s >= armed.hi_s:
            return

        def occur() -> None:
            if not self.active:
                return
            self._occur(armed)
            if fault.rate_per_h is not None:
                self._schedule_next(armed, at_s)

        self._later(at_s, occur)

    def _record(self, fault: Fault, **ids: Any) -> None:
        self.injected += 1
        self.cluster.trace.record(float(self.cluster.env.now), "fault", fault=fault.kind, **ids)

    # --- occurrences ---------------------------------------------------------------------------

    def _occur(self, armed: _Armed) -> None:
        fault = armed.fault
        match fault.kind:
            case "node_loss":
                self._node_loss(armed)
            case "node_cordon":
                self._node_cordon(armed)
            case "node_not_ready":
                self._node_not_ready(armed)
            case "launcher_crash":
                self._launcher_crash(armed)
            case "instance_crash":
                self._instance_crash(armed)
            case "controller_restart":
                down_s = (
                    fault.duration
                    if fault.duration is not None
                    else self.cluster.latency.controller_restart_s
                )
                self._record(fault, down_s=down_s)
                self.controller.restart(down_s)

    def _pick(self, armed: _Armed, candidates: Sequence[str]) -> str | None:
        if armed.fault.node is not None:
            return armed.fault.node if armed.fault.node in candidates else None
        return armed.rng.choice(candidates) if candidates else None

    def _node_loss(self, armed: _Armed) -> None:
        nodes = self.cluster.state.nodes
        name = self._pick(armed, [n.name for n in nodes.values() if n.ready])
        self._record(armed.fault, node=name)
        if name is None:
            return
        node = nodes[name]
        self.cluster.lose_node(name)
        if armed.fault.duration is not None:
            # The machine comes back empty: a new Node object with the same hardware.
            self._later(
                float(self.cluster.env.now) + armed.fault.duration,
                lambda: self.cluster.restore_node(node),
            )

    def _node_cordon(self, armed: _Armed) -> None:
        nodes = self.cluster.state.nodes
        name = self._pick(armed, [n.name for n in nodes.values() if n.ready and n.schedulable])
        self._record(armed.fault, node=name)
        if name is None:
            return
        self.cluster.cordon_node(name)
        if armed.fault.duration is not None:
            self._later(
                float(self.cluster.env.now) + armed.fault.duration,
                lambda: self.cluster.uncordon_node(name),
            )

    def _node_not_ready(self, armed: _Armed) -> None:
        nodes = self.cluster.state.nodes
        name = self._pick(armed, [n.name for n in nodes.values() if n.ready])
        self._record(armed.fault, node=name)
        if name is None:
            return
        self.cluster.set_node_ready(name, False)
        self._later(
            float(self.cluster.env.now) + (armed.fault.duration or 0.0),
            lambda: self.cluster.set_node_ready(name, True),
        )

    def _launcher_crash(self, armed: _Armed) -> None:
        state = self.cluster.state
        launchers = [
            p
            for p in state.providers.values()
            if p.kind is ProviderKind.LAUNCHER
            and not p.deleting
            and p.ready
            and (armed.fault.node is None or p.node == armed.fault.node)
        ]
        launcher = armed.rng.choice(launchers) if launchers else None
        self._record(armed.fault, provider=launcher.name if launcher else None)
        if launcher is not None:
            self.cluster.crash_launcher(launcher)

    def _instance_crash(self, armed: _Armed) -> None:
        state = self.cluster.state
        live = [
            (p, i)
            for p in state.providers.values()
            if not p.deleting and (armed.fault.node is None or p.node == armed.fault.node)
            for i in p.instances.values()
            if i.state is not InstanceState.STOPPED
        ]
        if not live:
            self._record(armed.fault, provider=None)
            return
        provider, instance = armed.rng.choice(live)
        self._record(armed.fault, provider=provider.name, instance=instance.instance_id)
        self.cluster.crash_instance(provider, instance.instance_id)

    # --- per operation -------------------------------------------------------------------------

    def _hit(self, *kinds: str) -> _Armed | None:
        """The first fault of ``kinds`` whose window covers now and whose draw hits."""
        if not self.active:
            return None
        now_s = float(self.cluster.env.now)
        for armed in self._armed:
            if armed.fault.kind in kinds and armed.covers(now_s):
                assert armed.fault.probability is not None
                if armed.rng.random() < armed.fault.probability:
                    return armed
        return None

    def _accelerator_query_fails(self, requester: str) -> bool:
        """Whether the controller's query of a requester's SPI for its GPUs fails now."""
        armed = self._hit("gpu_query_failure")
        if armed is None:
            return False
        self._record(armed.fault, requester=requester)
        return True

    def extra_delay_s(self, node: str, now_s: float) -> float | None:
        """The watch filter: None drops the notification, else the extra delay."""
        armed = self._hit("watch_drop", "watch_delay")
        if armed is None:
            return 0.0
        if armed.fault.kind == "watch_drop":
            self._record(armed.fault, node=node)
            return None
        assert armed.fault.delay is not None
        extra_s = armed.rng.uniform(0.0, armed.fault.delay)
        self._record(armed.fault, node=node, delay_s=round(extra_s, 6))
        return extra_s

    def action_fault(self, action: Action) -> Injection | None:
        """How a faulty call fails, or None when it is not hit."""
        if isinstance(action, EmitEvent):
            return None
        if isinstance(action, API_WRITES):
            armed = self._hit("api_conflict", "api_error")
            if armed is None:
                return None
            self._record(armed.fault, action=type(action).__name__)
            kind, error = _API_ERRORS[armed.fault.kind]
            return Injection(kind, error)
        fault_kind = _CALL_FAULTS.get(type(action))
        armed = self._hit(fault_kind) if fault_kind is not None else None
        if armed is None:
            return None
        mode = armed.fault.mode
        self._record(armed.fault, mode=mode, action=type(action).__name__, **_ids(action))
        match mode:
            case "timeout":
                # The client gave up; the engine may well have finished meanwhile.
                return Injection(
                    OutcomeKind.UNKNOWN,
                    "timed out",
                    stall_s=self.cluster.latency.http_timeout_s,
                    took_effect=True,
                )
            case "refused":
                return Injection(OutcomeKind.INVALID, "sleep mode is off", refused_sleep=True)
            case "conflict":
                return Injection(OutcomeKind.CONFLICT, "409 exists already", took_effect=True)
            case _:
                return Injection(OutcomeKind.TRANSIENT, "500 failed")


def _ids(action: Action) -> dict[str, str]:
    ids = {}
    for name in ("provider", "instance_id", "requester_uid"):
        value = getattr(action, name, None)
        if isinstance(value, str):
            ids[name] = value
    return ids


class FaultyExecutor:
    """Wraps the executor; lets the injector fail calls before (or after) they take effect."""

    def __init__(self, inner: Executor, injector: FaultInjector) -> None:
        self.inner = inner
        self.injector = injector
        self._stall_s = 0.0

    def apply(self, decision: Decision) -> list[Outcome]:
        """Apply in order; stop at the first failure, injected or real (like the executor)."""
        outcomes: list[Outcome] = []
        for action in decision.plan.actions:
            outcome = self.apply_one(action)
            outcomes.append(outcome)
            if outcome.kind is not OutcomeKind.OK and not isinstance(action, EmitEvent):
                break
        return outcomes

    def apply_one(self, action: Action) -> Outcome:
        fault = self.injector.action_fault(action)
        if fault is None:
            return self.inner.apply_one(action)
        if fault.took_effect:
            self.inner.apply_one(action)
        if fault.refused_sleep and isinstance(action, SleepInstance):
            self.inner.refuse_sleep(action)
        self._stall_s += fault.stall_s
        return Outcome(action, fault.kind, fault.error)

    def refuse_sleep(self, action: SleepInstance) -> None:
        self.inner.refuse_sleep(action)

    def take_waited_s(self) -> float:
        return self.inner.take_waited_s()

    def take_stall_s(self) -> float:
        """Seconds the calls since the last take hung; resets to 0."""
        stall_s, self._stall_s = self._stall_s, 0.0
        return stall_s
