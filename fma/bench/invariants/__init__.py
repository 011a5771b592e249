"""Invariant checkers over an event trace, outside the system they judge.

They replay ``events.jsonl`` (from the simulator or the operator; schema in ``docs/events.md``)
and report every breach as a dict with the time ``t``, the invariant's name and the ids
involved. They share no code with the decisions, so a bug in the core cannot hide itself here.
Capacities and limits come from the trace's inventory records (``node_added``, ``model_added``,
``limits``); a checker that needs them and finds none judges nothing.

Safety, at every moment (:data:`SAFETY`, checked after every step of the property tests):

- GPUs (:mod:`.gpus`): held by one instance at a time; memory claims (``gpu_memory_utilization``
  of awake engines, sleepers' residue) fit; given to one requester at a time;
- sleeping memory (:mod:`.memory`): host memory less its reserve; the per-GPU budget;
- bindings (:mod:`.bindings`): one provider per requester, on its node, on its GPUs; a
  launcher's instance cap and distinct ports; a requester bound to a crashed instance deleted
  within ``grace_s``;
- readiness (:mod:`.readiness`): ready only while the bound instance is awake — withdrawn
  before the controller takes it out of service and within ``grace_s`` after a crash; routing
  metadata only while awake;
- truthful paths (:mod:`.paths`): every ``hot`` actuation woke a sleeper, every ``warm`` one
  started an instance in an existing launcher, and so on;
- causes (:mod:`.deletions`): no requester deleted by the controller without a true cause.

``grace_s`` is counted in the controller's running time: while it is down (``controller_down``
to ``controller_up``) nothing is owed, so a crash during an outage must be answered within
``grace_s`` of the controller's return.

Liveness and leaks, once faults are over (:mod:`.liveness`).
"""

from collections.abc import Callable, Sequence

from fma.bench.invariants.bindings import (
    LauncherInstanceCap,
    LauncherPortsUnique,
    OneProviderPerRequester,
    StoppedNotKept,
)
from fma.bench.invariants.deletions import KNOWN_CAUSES, RequesterDeletedWithCause
from fma.bench.invariants.gpus import GpuExclusive, GpuMemoryFits, GpuSingleRequester
from fma.bench.invariants.liveness import liveness, nothing_leaked
from fma.bench.invariants.memory import HostMemoryFits, SleepingBudgetPerGpu
from fma.bench.invariants.paths import ActuationPathTruthful
from fma.bench.invariants.readiness import ReadyOnlyWhenAwake, RoutingOnlyWhenAwake
from fma.bench.invariants.replay import Checker, Event, Violation, run

SAFETY: tuple[type[Checker], ...] = (
    GpuExclusive,
    GpuMemoryFits,
    GpuSingleRequester,
    OneProviderPerRequester,
    HostMemoryFits,
    SleepingBudgetPerGpu,
    LauncherInstanceCap,
    LauncherPortsUnique,
    StoppedNotKept,
    ReadyOnlyWhenAwake,
    RoutingOnlyWhenAwake,
    ActuationPathTruthful,
    RequesterDeletedWithCause,
)
"""Every safety invariant, judged in one pass by :func:`check_safety`."""


def check_safety(events: Sequence[Event], *, now_s: float | None = None) -> list[Violation]:
    """Every breach of every safety invariant, in time order; ``now_s`` is how far time has got
    (past the last event, in a live simulation)."""
    return run([checker() for checker in SAFETY], events, now_s=now_s)


def check_all(events: Sequence[Event]) -> list[Violation]:
    """Every breach of every invariant — safety, liveness and leaks — in time order."""
    found = [*check_safety(events), *liveness(events), *nothing_leaked(events)]
    return sorted(found, key=lambda v: (v["t"], v["invariant"]))


def _one(checker: type[Checker]) -> Callable[[Sequence[Event]], list[Violation]]:
    def check(events: Sequence[Event]) -> list[Violation]:
        return run([checker()], events)

    check.__name__ = checker.name
    check.__doc__ = f"The breaches of {checker.name} alone."
    return check


gpu_exclusive_awake = _one(GpuExclusive)
gpu_memory_fits = _one(GpuMemoryFits)
gpu_single_requester = _one(GpuSingleRequester)
one_provider_per_requester = _one(OneProviderPerRequester)
host_memory_fits = _one(HostMemoryFits)
sleeping_budget_per_gpu = _one(SleepingBudgetPerGpu)
launcher_instance_cap = _one(LauncherInstanceCap)
launcher_ports_unique = _one(LauncherPortsUnique)
stopped_not_kept = _one(StoppedNotKept)
ready_only_when_awake = _one(ReadyOnlyWhenAwake)
routing_only_when_awake = _one(RoutingOnlyWhenAwake)
actuation_path_truthful = _one(ActuationPathTruthful)
requester_deleted_with_cause = _one(RequesterDeletedWithCause)

__all__ = [
    "KNOWN_CAUSES",
    "SAFETY",
    "Checker",
    "Event",
    "Violation",
    "actuation_path_truthful",
    "check_all",
    "check_safety",
    "gpu_exclusive_awake",
    "gpu_memory_fits",
    "gpu_single_requester",
    "host_memory_fits",
    "launcher_instance_cap",
    "launcher_ports_unique",
    "liveness",
    "nothing_leaked",
    "one_provider_per_requester",
    "ready_only_when_awake",
    "requester_deleted_with_cause",
    "routing_only_when_awake",
    "run",
    "sleeping_budget_per_gpu",
    "stopped_not_kept",
]
