"""Dual-pods decisions: bind each requester to a provider on its node, relay readiness, unbind.

One entry point, :func:`plan_node`, decides everything for one node from a
:class:`~fma.core.model.NodeSnapshot`. It is level-triggered: it looks only at the present
state, so running it twice, late, or after a controller restart gives the right plan.

Per requester the decision is a small state machine over what the snapshot shows:

- bound, provider being deleted          -> delete the requester (its owner makes a new one);
- bound, requester being deleted or gone -> unbind: sleep the instance (or delete it);
- bound, instance missing (launcher)     -> create it, or delete the requester if it had served;
- bound, instance sleeping               -> wake it once its GPUs are free;
- bound, instance awake, not yet relayed -> relay readiness (the first relay is the actuation);
- bound, instance or launcher stuck      -> abandon the provider after ``ready_timeout_s``;
- unbound                                -> place it: direct (:func:`_place_direct`) or through a
  launcher (:func:`fma.core.launchers.place`).

After the requesters, launcher housekeeping (:mod:`fma.core.launchers`) and the launcher
population (:mod:`fma.core.population`) run on the providers nobody claimed in this plan.
"""

from fma.core import housekeeping, launchers, population
from fma.core.actions import (
    Action,
    Bind,
    CreateDirectProvider,
    CreateInstance,
    CreateLauncher,
    DeleteInstance,
    DeleteProvider,
    DeleteRequester,
    Plan,
    RelayReadiness,
    SetRequesterStatus,
    SleepInstance,
    Unbind,
    WakeInstance,
)
from fma.core.model import (
    ActuationPath,
    Instance,
    InstanceState,
    NodeSnapshot,
    Provider,
    ProviderKind,
    Requester,
    ServerSpec,
)
from fma.core.policy import Actuation, Policy
from fma.core.retire import retire
from fma.core.room import room_for
from fma.core.target import Target, target_of


def plan_node(snapshot: NodeSnapshot, *, now_s: float, policy: Policy) -> Plan:
    """Everything the controller should do on one node now.

    Pure; no I/O; deterministic for equal inputs. Requesters are handled oldest first, and a
    provider claimed by one requester is not offered to the next within the same plan.
    """
    plan = Plan()
    sleeping = False
    claimed: set[str] = set()
    live_uids = {r.uid for r in snapshot.requesters}
    for provider in snapshot.providers:
        if provider.bound and provider.bound_requester_uid not in live_uids:
            step = _unbind(provider, snapshot, now_s=now_s, policy=policy)
            plan, sleeping = _one_sleep_at_a_time(plan, step, sleeping)
            claimed.add(provider.name)
    for requester in sorted(snapshot.requesters, key=lambda r: (r.started_s or 0.0, r.uid)):
        step = plan_requester(requester, snapshot, now_s=now_s, policy=policy, claimed=claimed)
        claimed.update(_providers_touched(step.actions))
        plan, sleeping = _one_sleep_at_a_time(plan, step, sleeping)
    tidy = housekeeping.plan_housekeeping(snapshot, claimed=claimed, now_s=now_s, policy=policy)
    claimed.update(_providers_touched(tidy.actions))
    plan, sleeping = _one_sleep_at_a_time(plan, tidy, sleeping)
    placed = {
        a.requester_uid
        for a in plan.actions
        if isinstance(a, Bind | CreateLauncher) and a.requester_uid is not None
    }
    plan += population.plan_population(
        snapshot, claimed=claimed, placed=placed, now_s=now_s, policy=policy
    )
    return plan


def _one_sleep_at_a_time(plan: Plan, step: Plan, sleeping: bool) -> tuple[Plan, bool]:
    """Add ``step``, unless it puts an instance to sleep and ``plan`` already does
    (``sleeping``); returns the plan and whether it now puts one to sleep.

    Each sleep is admitted against the sleepers the snapshot shows; two admitted in one plan
    would not see each other and could overrun the budget together. The later one waits for
    the next pass, which sees the first on its way to sleep.
    """
    sleeps = any(isinstance(a, SleepInstance) for a in step.actions)
    if sleeps and sleeping:
        return plan + Plan(requeue_after_s=0.0), True
    return plan + step, sleeping or sleeps


def plan_requester(
    requester: Requester,
    snapshot: NodeSnapshot,
    *,
    now_s: float,
    policy: Policy,
    claimed: frozenset[str] | set[str] = frozenset(),
) -> Plan:
    """The plan for one requester on ``snapshot``'s node (see the module docstring)."""
    provider = snapshot.provider_bound_to(requester.uid)
    if provider is not None:
        return _bound(requester, provider, snapshot, now_s=now_s, policy=policy)
    if requester.deleting or requester.gpu_uuids is None or requester.node is None:
        return Plan()
    if snapshot.node is None:
        return Plan()  # the node is going away; Pod GC deletes the requester
    if not snapshot.node.schedulable:
        return Plan((DeleteRequester(requester.uid, "node is cordoned"),))
    problems = _gpu_problems(requester, snapshot)
    target = target_of(requester, snapshot)
    if isinstance(target, str):
        problems = (*problems, target)
    if problems:
        return Plan((SetRequesterStatus(requester.uid, problems),))
    assert isinstance(target, Target)
    if not _fits_alone(target.spec, requester.gpu_uuids, snapshot):
        message = f"model {target.spec.model} does not fit its GPUs"
        return Plan((SetRequesterStatus(requester.uid, (message,)),))
    if target.isc_name is not None and policy.actuation is Actuation.FMA:
        return launchers.place(
            requester, target, snapshot, claimed=claimed, now_s=now_s, policy=policy
        )
    return _place_direct(requester, target, snapshot, now_s=now_s, policy=policy, claimed=claimed)


# --- bound requesters --------------------------------------------------------------------------


def _bound(
    requester: Requester,
    provider: Provider,
    snapshot: NodeSnapshot,
    *,
    now_s: float,
    policy: Policy,
) -> Plan:
    if provider.deleting:
        # The provider finalizer holds it until the requester is on its way out too.
        if requester.deleting:
            return Plan((Unbind(provider.name),))
        return Plan((DeleteRequester(requester.uid, "its provider is being deleted"),))
    if requester.deleting:
        return _unbind(provider, snapshot, now_s=now_s, policy=policy)
    if not provider.ready:
        return _wait_for_ready(provider, now_s=now_s, policy=policy)
    instance = provider.instance(provider.bound_instance_id)
    if instance is None:
        return _missing_instance(requester, provider, snapshot, now_s=now_s, policy=policy)
    match instance.state:
        case InstanceState.SLEEPING:
            room = room_for(
                instance, snapshot, owner=provider.name, claimed=(), now_s=now_s, policy=policy
            )
            return room or Plan((WakeInstance(provider.name, instance.instance_id),))
        case InstanceState.STOPPED:
            return Plan((DeleteRequester(requester.uid, "its instance stopped"),))
        case InstanceState.STARTING:
            return _wait_for_ready(provider, now_s=now_s, policy=policy)
        case InstanceState.AWAKE:
            if requester.ready:
                return Plan()
            first = None if requester.actuated else (provider.path or ActuationPath.COLD)
            return Plan((RelayReadiness(requester.uid, True, actuation=first),))


def _missing_instance(
    requester: Requester,
    provider: Provider,
    snapshot: NodeSnapshot,
    *,
    now_s: float,
    policy: Policy,
) -> Plan:
    """A bound launcher without the instance: create it, unless it vanished after serving."""
    if requester.actuated or provider.kind is ProviderKind.DIRECT:
        return Plan((DeleteRequester(requester.uid, "its instance is gone"),))
    target = target_of(requester, snapshot)
    if isinstance(target, str):
        return Plan((SetRequesterStatus(requester.uid, (target,)),))
    assert requester.gpu_uuids is not None
    if target.instance_id != provider.bound_instance_id:
        # The ISC changed between the bind and the instance's creation: the binding names an
        # instance nobody wants any more. Release it; the next pass places the requester anew.
        return Plan((Unbind(provider.name),), requeue_after_s=0.0)
    newcomer = Instance(
        target.instance_id,
        target.spec,
        requester.gpu_uuids,
        InstanceState.STARTING,
        now_s,
        now_s,
        target.isc_name,
    )
    room = room_for(newcomer, snapshot, owner=provider.name, claimed=(), now_s=now_s, policy=policy)
    if room is not None:
        return room
    create = CreateInstance(
        provider.name, target.instance_id, target.spec, requester.gpu_uuids, target.isc_name
    )
    return Plan((create,))


def _wait_for_ready(provider: Provider, *, now_s: float, policy: Policy) -> Plan:
    """Wait for a starting launcher or instance, but not forever: abandon it after the timeout.

    An abandoned launcher is only unbound (it may still become useful); an abandoned direct
    provider is deleted. Either way the requester is placed again on the next pass.
    """
    waited_s = now_s - (provider.bound_s if provider.bound_s is not None else provider.created_s)
    if waited_s < policy.ready_timeout_s:
        return Plan(requeue_after_s=policy.ready_timeout_s - waited_s)
    reason = f"not ready within {policy.ready_timeout_s:g} s"
    instance = provider.instance(provider.bound_instance_id)
    actions: list[Action] = []
    if provider.kind is ProviderKind.DIRECT:
        actions.append(DeleteProvider(provider.name, reason))
    elif instance is not None:
        actions.append(DeleteInstance(provider.name, instance.instance_id, reason))
    return Plan((*actions, Unbind(provider.name)), requeue_after_s=0.0)


# --- unbinding ---------------------------------------------------------------------------------


def _unbind(provider: Provider, snapshot: NodeSnapshot, *, now_s: float, policy: Policy) -> Plan:
    """Release ``provider`` from a requester that is going, retiring its instance.

    The binding record goes last, after the instance is put to sleep or deleted: the
    requester's finalizer, released with the binding, keeps its GPUs until then.
    """
    instance = provider.instance(provider.bound_instance_id)
    retiring = retire(provider, instance, snapshot, now_s=now_s, policy=policy)
    return Plan((*retiring, Unbind(provider.name)))


# --- placing unbound requesters on the direct path ----------------------------------------------


def _place_direct(
    requester: Requester,
    target: Target,
    snapshot: NodeSnapshot,
    *,
    now_s: float,
    policy: Policy,
    claimed: frozenset[str] | set[str],
) -> Plan:
    """Hot if a sleeper with the requester's identity is on its GPUs; else make room; else cold."""
    assert requester.gpu_uuids is not None
    if policy.actuation is not Actuation.COLD:
        sleeper = _find_direct_sleeper(snapshot.providers, target.instance_id, claimed)
        if sleeper is not None:
            return Plan((Bind(sleeper.name, requester.uid, target.instance_id, ActuationPath.HOT),))
    newcomer = Instance(
        target.instance_id, target.spec, requester.gpu_uuids, InstanceState.STARTING, now_s, now_s
    )
    room = room_for(newcomer, snapshot, owner="", claimed=claimed, now_s=now_s, policy=policy)
    if room is not None:
        return room
    create = CreateDirectProvider(
        requester.uid,
        snapshot.node_name,
        requester.gpu_uuids,
        target.spec,
        target.instance_id,
        ActuationPath.COLD,
    )
    return Plan((create,))


def _find_direct_sleeper(
    providers: tuple[Provider, ...], target: str, claimed: frozenset[str] | set[str]
) -> Provider | None:
    for p in providers:
        if p.bound or p.deleting or p.name in claimed or p.kind is not ProviderKind.DIRECT:
            continue
        inst = p.instance(target)
        if inst is not None and inst.state is InstanceState.SLEEPING:
            return p
    return None


# --- helpers ----------------------------------------------------------------------------------


def _gpu_problems(requester: Requester, snapshot: NodeSnapshot) -> tuple[str, ...]:
    assert requester.gpu_uuids is not None and snapshot.node is not None
    if not requester.gpu_uuids:
        return ("the assigned set of GPUs is empty",)
    return tuple(
        f"GPU {uuid} is not on node {snapshot.node_name}"
        for uuid in requester.gpu_uuids
        if snapshot.node.gpu(uuid) is None
    )


def _fits_alone(spec: ServerSpec, gpu_uuids: tuple[str, ...], snapshot: NodeSnapshot) -> bool:
    """Whether the instance's share of weights fits each of its GPUs with nothing else there."""
    assert snapshot.node is not None
    share = spec.weights_bytes // max(1, len(gpu_uuids))
    gpus = [snapshot.node.gpu(u) for u in gpu_uuids]
    return all(g is not None and share <= g.memory_bytes for g in gpus)


def _providers_touched(actions: tuple[Action, ...]) -> set[str]:
    return {
        a.provider
        for a in actions
        if isinstance(a, Bind | DeleteProvider | DeleteInstance | CreateInstance | SleepInstance)
    }
