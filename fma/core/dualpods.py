"""Dual-pods decisions: bind each requester to a provider on its node, relay readiness, unbind.

One entry point, :func:`plan_node`, decides everything for one node from a
:class:`~fma.core.model.NodeSnapshot`. It is level-triggered: it looks only at the present
state, so running it twice, late, or after a controller restart gives the right plan.

Per requester the decision is a small state machine over what the snapshot shows:

- bound, provider being deleted          -> delete the requester (its owner makes a new one);
- bound, requester being deleted or gone -> unbind: sleep the instance (or delete it);
- bound, instance sleeping               -> wake it;
- bound, instance awake, not yet relayed -> relay readiness (the first relay is the actuation);
- bound, instance stuck starting         -> abandon the provider after ``ready_timeout_s``;
- unbound                                 -> hot (bind a sleeper with the same identity), else
  make room in the sleeping-memory budget, else create a provider (cold).
"""

from collections.abc import Sequence

from fma.core.actions import (
    Action,
    Bind,
    CreateDirectProvider,
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
from fma.core.identity import instance_id
from fma.core.model import (
    ActuationPath,
    Instance,
    InstanceState,
    NodeSnapshot,
    Provider,
    ProviderKind,
    Requester,
)
from fma.core.policy import Actuation, Policy
from fma.core.sleepers import Sleeper, sleepers_on, victims_to_fit


def plan_node(snapshot: NodeSnapshot, *, now_s: float, policy: Policy) -> Plan:
    """Everything the controller should do on one node now.

    Pure; no I/O; deterministic for equal inputs. Requesters are handled oldest first, and a
    provider claimed by one requester is not offered to the next within the same plan.
    """
    plan = Plan()
    live_uids = {r.uid for r in snapshot.requesters}
    for provider in snapshot.providers:
        if (
            provider.bound_requester_uid is not None
            and provider.bound_requester_uid not in live_uids
        ):
            plan += _unbind(provider, snapshot, now_s=now_s, policy=policy)
    claimed: set[str] = set()
    for requester in sorted(snapshot.requesters, key=lambda r: (r.started_s or 0.0, r.uid)):
        step = plan_requester(requester, snapshot, now_s=now_s, policy=policy, claimed=claimed)
        claimed.update(_providers_touched(step.actions))
        plan += step
    return plan


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
    if problems:
        return Plan((SetRequesterStatus(requester.uid, problems),))
    if requester.spec is None:
        return Plan(
            (SetRequesterStatus(requester.uid, ("no server patch or InferenceServerConfig",)),)
        )
    return _place_direct(requester, snapshot, now_s=now_s, policy=policy, claimed=claimed)


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
    instance = provider.instance(provider.bound_instance_id)
    if instance is None:
        return Plan((DeleteRequester(requester.uid, "its instance is gone"),))
    match instance.state:
        case InstanceState.SLEEPING:
            return _wake(provider, instance, snapshot, now_s=now_s, policy=policy)
        case InstanceState.STOPPED:
            return Plan((DeleteRequester(requester.uid, "its instance stopped"),))
        case InstanceState.STARTING:
            return _wait_for_start(requester, provider, now_s=now_s, policy=policy)
        case InstanceState.AWAKE:
            if requester.ready:
                return Plan()
            first = None if requester.actuated else (provider.path or ActuationPath.COLD)
            return Plan((RelayReadiness(requester.uid, True, actuation=first),))


def _wake(
    provider: Provider, instance: Instance, snapshot: NodeSnapshot, *, now_s: float, policy: Policy
) -> Plan:
    """Wake once the GPUs are free of other awake instances and the weights fit beside sleepers."""
    others = [p for p in snapshot.providers if p.name != provider.name]
    if any(_uses_gpus(p, instance.gpu_uuids, awake_only=True) for p in others if not p.deleting):
        return Plan(
            requeue_after_s=policy.retry_delay_s
        )  # the previous tenant is still going to sleep
    if snapshot.node is None:
        return Plan()  # the node is going away; nothing should start on it
    victims = victims_to_fit(
        node=snapshot.node,
        sleepers=[
            s
            for s in sleepers_on(snapshot.providers)
            if s.instance.instance_id != instance.instance_id
        ],
        awake=[*_awake_instances(snapshot.providers), instance],
        policy=policy,
        now_s=now_s,
    )
    if victims:
        return Plan(tuple(_evict(v, snapshot) for v in victims), requeue_after_s=0.0)
    return Plan((WakeInstance(provider.name, instance.instance_id),))


def _wait_for_start(
    requester: Requester, provider: Provider, *, now_s: float, policy: Policy
) -> Plan:
    """Wait for a starting instance, but not forever: abandon it after the ready timeout."""
    waited_s = now_s - (provider.bound_s if provider.bound_s is not None else provider.created_s)
    if waited_s < policy.ready_timeout_s:
        return Plan(requeue_after_s=policy.ready_timeout_s - waited_s)
    reason = f"not ready within {policy.ready_timeout_s:g} s"
    return Plan((Unbind(provider.name), DeleteProvider(provider.name, reason)), requeue_after_s=0.0)


# --- unbinding ---------------------------------------------------------------------------------


def _unbind(provider: Provider, snapshot: NodeSnapshot, *, now_s: float, policy: Policy) -> Plan:
    """Release ``provider`` from a requester that is going: keep its instance asleep if it fits.

    Under the cold policy, or when the instance is not awake, or when its sleep cannot fit the
    sleeping-memory budget even after evictions, the provider is deleted instead.
    """
    instance = provider.instance(provider.bound_instance_id)
    awake = instance is not None and instance.state is InstanceState.AWAKE
    if policy.actuation is Actuation.COLD or not awake or instance is None or snapshot.node is None:
        return Plan((Unbind(provider.name), DeleteProvider(provider.name, "unbound, not kept")))
    others = [s for s in sleepers_on(snapshot.providers) if s.provider != provider.name]
    newcomer = Sleeper(provider.name, _asleep(instance, now_s))
    victims = victims_to_fit(
        node=snapshot.node,
        sleepers=[*others, newcomer],
        awake=_awake_instances(snapshot.providers, excluding=provider.name),
        policy=policy,
        now_s=now_s,
    )
    if victims is None or newcomer in victims:
        return Plan((Unbind(provider.name), DeleteProvider(provider.name, "no room to sleep")))
    evictions = [_evict(v, snapshot) for v in victims]
    return Plan(
        (SleepInstance(provider.name, instance.instance_id), Unbind(provider.name), *evictions)
    )


# --- placing unbound requesters ----------------------------------------------------------------


def _place_direct(
    requester: Requester,
    snapshot: NodeSnapshot,
    *,
    now_s: float,
    policy: Policy,
    claimed: frozenset[str] | set[str],
) -> Plan:
    """Hot if a sleeper with the requester's identity is on its GPUs; else make room; else cold."""
    assert requester.spec is not None and requester.gpu_uuids is not None
    assert snapshot.node is not None
    target = instance_id(requester.spec, requester.gpu_uuids)
    if policy.actuation is not Actuation.COLD:
        sleeper = _find_sleeper(snapshot.providers, target, claimed)
        if sleeper is not None:
            return Plan((Bind(sleeper.name, requester.uid, target, ActuationPath.HOT),))
    busy = [
        p.name
        for p in snapshot.providers
        if not p.bound and not p.deleting and _uses_gpus(p, requester.gpu_uuids, awake_only=True)
    ]
    if busy:
        return Plan(requeue_after_s=policy.retry_delay_s)  # an unbind is still putting it to sleep
    newcomer = Instance(
        target, requester.spec, requester.gpu_uuids, InstanceState.STARTING, now_s, now_s
    )
    victims = victims_to_fit(
        node=snapshot.node,
        sleepers=[s for s in sleepers_on(snapshot.providers) if s.provider not in claimed],
        awake=[*_awake_instances(snapshot.providers), newcomer],
        policy=policy,
        now_s=now_s,
    )
    if victims is None:
        message = f"model {requester.spec.model} does not fit its GPUs"
        return Plan((SetRequesterStatus(requester.uid, (message,)),))
    if victims:
        # Evict first, create on a later pass: the freed memory must be seen before it is used.
        return Plan(tuple(_evict(v, snapshot) for v in victims), requeue_after_s=0.0)
    create = CreateDirectProvider(
        requester.uid,
        snapshot.node_name,
        requester.gpu_uuids,
        requester.spec,
        target,
        ActuationPath.COLD,
    )
    return Plan((create,))


def _find_sleeper(
    providers: Sequence[Provider], target: str, claimed: frozenset[str] | set[str]
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


def _uses_gpus(provider: Provider, gpu_uuids: Sequence[str], *, awake_only: bool) -> bool:
    return any(
        set(i.gpu_uuids) & set(gpu_uuids)
        for i in provider.instances
        if not awake_only or i.state in (InstanceState.AWAKE, InstanceState.STARTING)
    )


def _awake_instances(providers: Sequence[Provider], excluding: str = "") -> list[Instance]:
    return [
        i
        for p in providers
        if p.name != excluding and not p.deleting
        for i in p.instances
        if i.state in (InstanceState.AWAKE, InstanceState.STARTING)
    ]


def _asleep(instance: Instance, now_s: float) -> Instance:
    return Instance(
        instance.instance_id,
        instance.spec,
        instance.gpu_uuids,
        InstanceState.SLEEPING,
        instance.created_s,
        now_s,
        instance.isc_name,
    )


def _evict(victim: Sleeper, snapshot: NodeSnapshot) -> Action:
    provider = next(p for p in snapshot.providers if p.name == victim.provider)
    if provider.kind is ProviderKind.DIRECT:
        return DeleteProvider(provider.name, "evicted to fit the sleeping-memory budget")
    return DeleteInstance(
        provider.name, victim.instance.instance_id, "evicted to fit the sleeping-memory budget"
    )


def _providers_touched(actions: Sequence[Action]) -> set[str]:
    return {a.provider for a in actions if isinstance(a, Bind | DeleteProvider | DeleteInstance)}
