"""Faults: the trouble a scenario's ``faults`` list asks for, injected at seeded moments.

Two families (``fma.api.scenario.Fault``):

- **Occurrences** change the platform at a moment, once (``at``) or as a Poisson process
  (``rate_per_h``): a node is lost (its Pods are force-deleted; it may come back empty after
  ``duration``), a node is cordoned (and uncordoned after
  ``duration``), a launcher's container restarts (its instances vanish), an instance crashes
  (it shows as stopped), or the controller restarts (its memory is lost).
- **Per-operation** faults hit single operations with ``probability`` inside their window: a
  wake answers an error or hangs until the HTTP timeout (the engine may still wake), an API
  write answers 409 Conflict or a transient 5xx, a watch notification is held back or dropped.
  A window with drops ends with a re-list, as a reflector does when it re-establishes a watch.

Every random choice comes from the fault's own generator (seeded from the run's seed, the
fault's index and kind), and every injection is written to the trace as a ``fault`` event, so a
run replays exactly. :meth:`FaultInjector.stop` ends every fault at once (the liveness phase).
"""

from collections.abc import Callable, Sequence
from typing import Any

from fma.adapters.sim.cluster import SimCluster
from fma.adapters.sim.controller import SimController
from fma.adapters.sim.seeds import sub_rng
from fma.api.scenario import OCCURRENCE_FAULTS, Fault
from fma.core.actions import (
    Action,
    Bind,
    CreateDirectProvider,
    CreateLauncher,
    DeleteProvider,
    DeleteRequester,
    Plan,
    SetRequesterStatus,
    Unbind,
    WakeInstance,
)
from fma.core.model import InstanceState, ProviderKind
from fma.core.ports import ActionExecutor, Outcome

API_WRITES = (
    CreateDirectProvider,
    CreateLauncher,
    Bind,
    Unbind,
    DeleteProvider,
    DeleteRequester,
    SetRequesterStatus,
)
"""Actions that are Kubernetes API writes (the rest are HTTP calls to launchers, engines and
requesters)."""

_ERRORS = {"api_conflict": "409 Conflict", "api_error": "503 Service Unavailable"}


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
        if self._of("wake_failure", "api_conflict", "api_error"):
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

    def action_fault(self, action: Action) -> tuple[str, float, bool] | None:
        """(error, stall seconds, whether the call took effect anyway) for a faulty call."""
        if isinstance(action, WakeInstance):
            armed = self._hit("wake_failure")
            if armed is None:
                return None
            timeout = armed.fault.mode == "timeout"
            self._record(
                armed.fault,
                mode=armed.fault.mode,
                provider=action.provider,
                instance=action.instance_id,
            )
            if timeout:
                # The client gave up; the engine may well have woken meanwhile.
                return "wake timed out", self.cluster.latency.http_timeout_s, True
            return "500 wake failed", 0.0, False
        if isinstance(action, API_WRITES):
            armed = self._hit("api_conflict", "api_error")
            if armed is None:
                return None
            self._record(armed.fault, action=type(action).__name__)
            return _ERRORS[armed.fault.kind], 0.0, False
        return None


class FaultyExecutor:
    """Wraps an executor; lets the injector fail calls before (or after) they take effect."""

    def __init__(self, inner: ActionExecutor, injector: FaultInjector) -> None:
        self.inner = inner
        self.injector = injector
        self._stall_s = 0.0

    def apply(self, plan: Plan) -> list[Outcome]:
        """Apply in order; stop at the first failure, injected or real (like the executor)."""
        outcomes: list[Outcome] = []
        for action in plan.actions:
            fault = self.injector.action_fault(action)
            if fault is not None:
                error, stall_s, took_effect = fault
                if took_effect:
                    self.inner.apply(Plan((action,)))
                self._stall_s += stall_s
                outcomes.append(Outcome(action, False, error, retryable=True))
                break
            done = self.inner.apply(Plan((action,)))
            outcomes.extend(done)
            if any(not o.ok for o in done):
                break
        return outcomes

    def take_stall_s(self) -> float:
        """Seconds the calls since the last take hung; resets to 0."""
        stall_s, self._stall_s = self._stall_s, 0.0
        return stall_s
