"""The launcher path: place a requester through a launcher Pod, and keep launchers tidy.

A requester naming an InferenceServerConfig is served by a launcher of the ISC's
LauncherConfig on its node, chosen in this order:

1. **hot** — an unbound, ready launcher holds a sleeping instance with the requester's identity;
2. **warm** — an unbound, ready launcher has a free instance slot and no port conflict;
3. **warm after reclaim** — the launcher needing the fewest deletions of sleepers (port
   conflicts, then least recently used) to make a slot;
4. wait, while some matching launchers are still starting;
5. **cold_launcher** — create a launcher, bound to the requester from birth.

Binding comes first; the instance is created or woken on a later pass, so "an awake instance
implies its provider is bound" always holds.
"""

from collections.abc import Collection
from dataclasses import dataclass

from fma.core.actions import Bind, CreateLauncher, DeleteInstance, Plan, SetRequesterStatus
from fma.core.model import (
    ActuationPath,
    Instance,
    InstanceState,
    LauncherConfigSpec,
    NodeSnapshot,
    Provider,
    ProviderKind,
    Requester,
)
from fma.core.policy import Policy
from fma.core.target import Target


@dataclass(frozen=True, slots=True)
class _Reclaim:
    launcher: Provider
    victims: tuple[Instance, ...]

    def key(self) -> tuple[int, float, str]:
        oldest = min((v.last_used_s for v in self.victims), default=0.0)
        return (len(self.victims), -oldest, self.launcher.name)


def launcher_config_of(name: str | None, snapshot: NodeSnapshot) -> LauncherConfigSpec | str:
    """The usable LauncherConfig, or the user-facing reason there is none."""
    lc = snapshot.launcher_configs.get(name or "")
    if lc is None:
        return f"LauncherConfig {name} not found"
    if not lc.valid:
        return f"LauncherConfig {name} is malformed"
    return lc


def place(
    requester: Requester,
    target: Target,
    snapshot: NodeSnapshot,
    *,
    claimed: Collection[str],
    now_s: float,
    policy: Policy,
) -> Plan:
    """Choose or create a launcher for an unbound requester (see the module docstring).

    Pure; no I/O. ``claimed`` launchers were taken earlier in the same plan. A launcher not
    Ready within ``policy.ready_timeout_s`` of its creation is stuck: nobody waits for it.
    """
    lc = launcher_config_of(target.launcher_config, snapshot)
    if isinstance(lc, str):
        return Plan((SetRequesterStatus(requester.uid, (lc,)),))
    candidates = [
        p
        for p in snapshot.providers
        if p.kind is ProviderKind.LAUNCHER
        and p.launcher_config == lc.name
        and p.template_hash == lc.template_hash
        and not (p.deleting or p.bound or p.name in claimed)
    ]
    ready = [p for p in candidates if p.ready]
    for launcher in ready:
        inst = launcher.instance(target.instance_id)
        if inst is not None and inst.state is InstanceState.SLEEPING:
            return _bind(launcher, requester, target, ActuationPath.HOT)
    quiet = [p for p in ready if not any(i.state is InstanceState.AWAKE for i in p.instances)]
    with_slot = [p for p in quiet if not _conflicts(p, target) and _live(p) < lc.max_instances]
    if with_slot:
        best = min(with_slot, key=lambda p: _warm_preference(p, requester))
        return _bind(best, requester, target, ActuationPath.WARM)
    reclaims = [r for p in quiet if (r := _reclaim_plan(p, target, lc)) is not None]
    if reclaims:
        best_reclaim = min(reclaims, key=_Reclaim.key)
        deletions = tuple(
            DeleteInstance(
                best_reclaim.launcher.name, v.instance_id, "reclaimed for a new instance"
            )
            for v in best_reclaim.victims
        )
        return Plan(deletions) + _bind(best_reclaim.launcher, requester, target, ActuationPath.WARM)
    starting = [p for p in candidates if not p.ready and not stuck(p, now_s=now_s, policy=policy)]
    if starting or len(quiet) < len(ready):
        # A launcher is starting, or putting an instance to sleep: it will serve sooner.
        return Plan(requeue_after_s=policy.retry_delay_s)
    create = CreateLauncher(
        snapshot.node_name,
        lc.name,
        lc.template_hash,
        requester.uid,
        target.instance_id,
        ActuationPath.COLD_LAUNCHER,
    )
    return Plan((create,))


def _warm_preference(launcher: Provider, requester: Requester) -> tuple[int, int, str]:
    """Prefer launchers whose instances are on the requester's GPUs, then the least loaded.

    A bound launcher's sleepers are out of reach until it unbinds. If a launcher's instances
    share GPUs, binding it hides only sleepers whose GPUs are taken anyway; if they are spread
    over the node, binding it hides sleepers other requesters could wake. Measured on the demo
    scenario, this raises the hot-hit rate over packing into the busiest launcher.
    """
    gpus = set(requester.gpu_uuids or ())
    affine = sum(1 for i in launcher.instances if gpus & set(i.gpu_uuids))
    strangers = _live(launcher) - affine
    return (strangers, -affine, launcher.name)


def stuck(launcher: Provider, *, now_s: float, policy: Policy) -> bool:
    """A launcher that has not become Ready within the ready timeout of its creation."""
    return not launcher.ready and now_s - launcher.created_s >= policy.ready_timeout_s


def _bind(launcher: Provider, requester: Requester, target: Target, path: ActuationPath) -> Plan:
    return Plan((Bind(launcher.name, requester.uid, target.instance_id, path),))


def _live(launcher: Provider) -> int:
    return sum(1 for i in launcher.instances if i.state is not InstanceState.STOPPED)


def _conflicts(launcher: Provider, target: Target) -> bool:
    """Two instances in one launcher share its network namespace: ports must differ."""
    return any(
        i.spec.port == target.spec.port and i.instance_id != target.instance_id
        for i in launcher.instances
        if i.state is not InstanceState.STOPPED
    )


def _reclaim_plan(launcher: Provider, target: Target, lc: LauncherConfigSpec) -> _Reclaim | None:
    """The sleepers to delete so the target fits this launcher, or None if it cannot."""
    live = [i for i in launcher.instances if i.state is not InstanceState.STOPPED]
    conflicts = [i for i in live if i.spec.port == target.spec.port]
    others = sorted(
        (i for i in live if i not in conflicts), key=lambda i: (i.last_used_s, i.instance_id)
    )
    excess = max(0, len(others) - (lc.max_instances - 1))
    victims = (*conflicts, *others[:excess])
    if not victims or any(v.state is not InstanceState.SLEEPING for v in victims):
        return None
    return _Reclaim(launcher, victims)
