"""The launcher path: place a requester through a launcher Pod.

A requester naming an InferenceServerConfig is served by a launcher of the ISC's
LauncherConfig on its node, chosen in this order:

1. **hot** — an unbound, Ready launcher holds a sleeping instance with the requester's identity;
2. **warm** — an unbound, Ready, quiet launcher has a free instance slot and no instance on the
   same port (instances share the launcher's network namespace); the launcher whose instances
   sit on the requester's GPUs first, then the least loaded;
3. **warm after reclaiming for the cap** — when every quiet launcher is full (``maxInstances``),
   the one needing the fewest deletions of sleepers, then the stalest victims (upstream's order);
4. **warm after reclaiming for a port** — a sleeper on the target's port is deleted only when it
   is expected to save less than a new launcher costs (:func:`fma.core.sleepers.expected_saving_s`
   against ``Policy.launcher_start_s``), or when the node may hold no more launchers;
5. wait, while a matching launcher is still starting or busy;
6. **cold_launcher** — create a launcher, bound to the requester from birth.

Binding comes first; the instance is created or woken on a later pass, so "an awake instance
implies its provider is bound" always holds.
"""

from collections.abc import Collection
from dataclasses import dataclass

from fma.core.actions import Bind, CreateLauncher, DeleteInstance, Plan, SetRequesterStatus
from fma.core.model import (
    LAUNCHER,
    SLEEPING,
    STOPPED,
    ActuationPath,
    Instance,
    LauncherConfigSpec,
    Node,
    NodeSnapshot,
    Provider,
    Requester,
)
from fma.core.policy import Policy
from fma.core.reasons import RECLAIMED
from fma.core.sleepers import expected_saving_s
from fma.core.target import Target

LAUNCHERS_PER_GPU_DEFAULT = 2
"""Launchers a node may hold per GPU when the policy does not say: enough for each GPU (or
GPU set) to keep its sleepers in launchers of its own, which binding then never hides."""


@dataclass(frozen=True, slots=True)
class _Reclaim:
    """The sleepers to delete from one launcher so the target fits there."""

    launcher: Provider
    victims: tuple[Instance, ...]
    for_port: bool
    """Some victim shares the target's port (else all are there for the instance cap)."""

    def key(self) -> tuple[int, float, str]:
        """Fewest victims, then the plan whose most recent victim was used longest ago."""
        newest = max((v.last_used_s for v in self.victims), default=0.0)
        return (len(self.victims), newest, self.launcher.name)

    def cost_s(self, now_s: float, node: Node) -> float:
        """The hot starts its victims are expected to save, in seconds."""
        return sum(expected_saving_s(v, now_s, node) for v in self.victims)


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
    Ready for ``policy.ready_timeout_s`` is stuck: nobody waits for it.
    """
    assert snapshot.node is not None
    lc = launcher_config_of(target.launcher_config, snapshot)
    if isinstance(lc, str):
        return Plan((SetRequesterStatus(requester.uid, (lc,)),))
    candidates = [
        p
        for p in snapshot.providers
        if p.kind is LAUNCHER
        and p.launcher_config == lc.name
        and p.template_hash == lc.template_hash
        and not (p.deleting or p.bound or p.name in claimed)
    ]
    ready = [p for p in candidates if p.ready]
    for launcher in ready:
        inst = launcher.instance(target.instance_id)
        if inst is not None and inst.state is SLEEPING:
            return _bind(launcher, requester, target, ActuationPath.HOT)
    quiet = [p for p in ready if not any(i.state.on_gpus for i in p.instances)]
    with_slot = [
        p for p in quiet if not _conflicts(p, target) and live_instances(p) < lc.max_instances
    ]
    hiding: Provider | None = None
    if with_slot:
        best = min(with_slot, key=lambda p: _warm_preference(p, requester))
        if _strangers(best, requester) == 0 or not _room_for_a_launcher(snapshot, policy):
            return _bind(best, requester, target, ActuationPath.WARM)
        # Binding it would hide its sleepers on other GPUs from the requesters that will land
        # there (a bound launcher's sleepers are out of reach): rather a launcher of our own.
        hiding = best
    node = snapshot.node
    for_port: _Reclaim | None = None
    if hiding is None:
        reclaims = [r for p in quiet if (r := _reclaim_plan(p, target, lc)) is not None]
        for_cap = [r for r in reclaims if not r.for_port]
        if for_cap:
            return _reclaim(min(for_cap, key=_Reclaim.key), requester, target)
        for_port = min(
            (r for r in reclaims if r.for_port),
            key=lambda r: (r.cost_s(now_s, node), *r.key()),
            default=None,
        )
        if for_port is not None and for_port.cost_s(now_s, node) < policy.launcher_start_s:
            return _reclaim(for_port, requester, target)
    starting = [p for p in candidates if not p.ready and not stuck(p, now_s=now_s, policy=policy)]
    if starting or len(quiet) < len(ready):
        # A launcher is starting, or retiring an instance: it will serve sooner.
        return Plan(requeue_after_s=policy.retry_delay_s)
    room = _room_for_a_launcher(snapshot, policy)
    if hiding is not None and not room:
        return _bind(hiding, requester, target, ActuationPath.WARM)
    if room:
        create = CreateLauncher(
            snapshot.node_name,
            lc.name,
            lc.template_hash,
            requester.uid,
            target.instance_id,
            ActuationPath.COLD_LAUNCHER,
        )
        return Plan((create,))
    if for_port is not None:
        return _reclaim(for_port, requester, target)
    return Plan(requeue_after_s=policy.retry_delay_s)


def _reclaim(plan: _Reclaim, requester: Requester, target: Target) -> Plan:
    deletions = tuple(
        DeleteInstance(plan.launcher.name, v.instance_id, RECLAIMED) for v in plan.victims
    )
    return Plan(deletions) + _bind(plan.launcher, requester, target, ActuationPath.WARM)


def _room_for_a_launcher(snapshot: NodeSnapshot, policy: Policy) -> bool:
    """Whether the node may hold one more launcher (``Policy.launchers_per_node_max``)."""
    assert snapshot.node is not None
    limit = policy.launchers_per_node_max
    if limit is None:
        limit = LAUNCHERS_PER_GPU_DEFAULT * len(snapshot.node.gpus)
    launchers = sum(1 for p in snapshot.providers if p.kind is LAUNCHER and not p.deleting)
    return launchers < limit


def _strangers(launcher: Provider, requester: Requester) -> int:
    """The launcher's live instances on none of the requester's GPUs."""
    gpus = set(requester.gpu_uuids or ())
    return sum(
        1 for i in launcher.instances if i.state is not STOPPED and gpus.isdisjoint(i.gpu_uuids)
    )


def _warm_preference(launcher: Provider, requester: Requester) -> tuple[int, int, str]:
    """Prefer launchers whose instances are on the requester's GPUs, then the least loaded.

    A bound launcher's sleepers are out of reach until it unbinds. If a launcher's instances
    share GPUs, binding it hides only sleepers whose GPUs are taken anyway; if they are spread
    over the node, binding it hides sleepers other requesters could wake. Measured on the demo
    scenario, this raises the hot-hit rate over packing into the busiest launcher.
    """
    gpus = set(requester.gpu_uuids or ())
    affine = sum(1 for i in launcher.instances if gpus & set(i.gpu_uuids))
    strangers = live_instances(launcher) - affine
    return (strangers, -affine, launcher.name)


def stuck(launcher: Provider, *, now_s: float, policy: Policy) -> bool:
    """A launcher that has not been Ready for the ready timeout (measured from when it last
    stopped being Ready — or from its creation — so a long-lived launcher that restarts is not
    stuck at once)."""
    return launcher.not_ready_for_s(now_s) >= policy.ready_timeout_s


def _bind(launcher: Provider, requester: Requester, target: Target, path: ActuationPath) -> Plan:
    return Plan((Bind(launcher.name, requester.uid, target.instance_id, path),))


def live_instances(launcher: Provider) -> int:
    """Instances that take a slot of ``maxInstances``: everything not stopped."""
    return sum(1 for i in launcher.instances if i.state is not STOPPED)


def has_live_instances(launcher: Provider) -> bool:
    """Whether any instance takes a slot (:func:`live_instances` > 0, found sooner)."""
    return any(i.state is not STOPPED for i in launcher.instances)


def _conflicts(launcher: Provider, target: Target) -> bool:
    """Two instances in one launcher share its network namespace: ports must differ."""
    return port_taken(launcher, target)


def port_taken(launcher: Provider, target: Target) -> bool:
    """Whether another instance of the launcher (a stopping one included: it holds its port
    until it exits) uses the target's port."""
    return any(
        i.spec.port == target.spec.port and i.instance_id != target.instance_id
        for i in launcher.instances
        if i.state is not STOPPED
    )


def _reclaim_plan(launcher: Provider, target: Target, lc: LauncherConfigSpec) -> _Reclaim | None:
    """The sleepers to delete so the target fits this launcher, or None if it cannot."""
    live = [i for i in launcher.instances if i.state is not STOPPED]
    conflicts = [i for i in live if i.spec.port == target.spec.port]
    others = sorted(
        (i for i in live if i not in conflicts), key=lambda i: (i.last_used_s, i.instance_id)
    )
    excess = max(0, len(others) - (lc.max_instances - 1))
    victims = (*conflicts, *others[:excess])
    if not victims or any(v.state is not SLEEPING for v in victims):
        return None
    return _Reclaim(launcher, victims, for_port=bool(conflicts))
