"""Dual-pods decisions: bind each requester to a provider on its node, relay readiness, unbind.

One entry point, :func:`plan_node`, decides everything for one node from a
:class:`~fma.core.model.NodeSnapshot`. It is level-triggered: it looks only at the present
state, so running it twice, late, or after a controller restart gives the right plan, and a
node in a steady state gets an empty plan.

Per requester the decision is a small state machine over what the snapshot shows:

- bound, provider being deleted          -> delete the requester (its owner makes a new one);
- bound, requester being deleted or gone -> unbind: withdraw readiness and routing, put the
  instance to sleep (or delete it), and remove the binding once it is asleep or gone;
- bound, provider not Ready              -> withdraw readiness; wait, but not for ever;
- bound, instance missing (launcher)     -> create it, or delete the requester if it had served;
- bound, instance sleeping               -> wake it once its GPUs are free;
- bound, instance waking                 -> wait for the wake to end (it is observed);
- bound, instance awake                  -> label the provider, relay readiness (the first
  relay is the actuation);
- bound, instance stopped                -> delete the requester;
- unbound, being deleted                 -> release the finalizer once its GPUs are free;
- unbound, GPUs not yet known            -> wait for the adapter to learn them;
- unbound                                -> place it: direct (:func:`_place_direct`) or through a
  launcher (:func:`fma.core.launchers.place`), adding the finalizer first.

A second provider bound to a live requester (a duplicate binding) is released like an unbind,
with a warning Event. After the requesters, housekeeping (:mod:`fma.core.housekeeping`) and the
launcher population (:mod:`fma.core.population`) run on the providers nobody claimed in this
plan. Finally every decision a user would want to see gets its Event
(:func:`fma.core.reasons.narrate`).
"""

from fma.api.constants import LABEL_DUAL, LABEL_INSTANCE, LABEL_SLEEPING
from fma.core import housekeeping, launchers, population
from fma.core.actions import (
    NOTHING,
    Action,
    Bind,
    CreateDirectProvider,
    CreateInstance,
    CreateLauncher,
    DeleteInstance,
    DeleteProvider,
    DeleteRequester,
    EmitEvent,
    LabelProvider,
    Plan,
    RelayReadiness,
    SetActuationPath,
    SetRequesterStatus,
    SleepInstance,
    SubjectKind,
    Unbind,
    UpdateRequesterMeta,
    WakeInstance,
)
from fma.core.model import (
    AWAKE,
    DIRECT,
    FALLING_ASLEEP,
    LAUNCHER,
    SLEEPING,
    STARTING,
    STOPPED,
    STOPPING,
    WAKING,
    ActuationPath,
    Instance,
    NodeSnapshot,
    Provider,
    Requester,
    Routing,
    ServerSpec,
)
from fma.core.policy import Actuation, Policy
from fma.core.reasons import (
    INSTANCE_GONE,
    INSTANCE_STOPPED,
    NODE_CORDONED,
    PROVIDER_DELETING,
    PROVIDER_NOT_READY,
    narrate,
)
from fma.core.retire import retire
from fma.core.room import holders_of, room_for
from fma.core.target import Target, target_of


class LookUp:
    """Marks an argument the callee looks up itself."""


def plan_node(snapshot: NodeSnapshot, *, now_s: float, policy: Policy) -> Plan:
    """Everything the controller should do on one node now.

    Pure; no I/O; deterministic for equal inputs. Requesters are handled oldest first, and a
    provider claimed by one requester is not offered to the next within the same plan.
    """
    plan = NOTHING
    sleeping = False
    claimed: set[str] = set()
    live = {r.uid: r for r in snapshot.requesters}
    serving: dict[str, Provider] = {}
    for uid, bound in _bindings(snapshot).items():
        if uid in live:
            serving[uid] = bound[0]
            extra = bound[1:]
        else:
            extra = bound
        for provider in extra:
            if uid in live:
                step = _release_duplicate(provider, snapshot, now_s=now_s, policy=policy)
            else:
                step = _unbind(provider, None, snapshot, now_s=now_s, policy=policy)
            plan, sleeping = _one_sleep_at_a_time(plan, step, sleeping)
            claimed.add(provider.name)
    for requester in sorted(snapshot.requesters, key=lambda r: (r.started_s or 0.0, r.uid)):
        step = plan_requester(
            requester,
            snapshot,
            now_s=now_s,
            policy=policy,
            claimed=claimed,
            provider=serving.get(requester.uid),
        )
        if step.actions:
            claimed.update(_providers_touched(step.actions))
            plan, sleeping = _one_sleep_at_a_time(plan, step, sleeping)
        elif step.requeue_after_s is not None:
            plan += step
    tidy = housekeeping.plan_housekeeping(snapshot, claimed=claimed, now_s=now_s, policy=policy)
    if tidy.actions:
        claimed.update(_providers_touched(tidy.actions))
        plan, sleeping = _one_sleep_at_a_time(plan, tidy, sleeping)
    placed: set[str] = set()
    created: dict[str, int] = {}
    released: set[str] = set()
    for a in plan.actions:
        if isinstance(a, (Bind, CreateLauncher)) and a.requester_uid is not None:
            placed.add(a.requester_uid)
            if isinstance(a, CreateLauncher):
                created[a.launcher_config] = created.get(a.launcher_config, 0) + 1
        elif isinstance(a, Unbind):
            released.add(a.provider)
    plan += population.plan_population(
        snapshot,
        claimed=claimed,
        placed=placed,
        created=created,
        released=released,
        now_s=now_s,
        policy=policy,
    )
    if not plan.actions:
        return plan
    return Plan(narrate(plan.actions), plan.requeue_after_s)


def _bindings(snapshot: NodeSnapshot) -> dict[str, list[Provider]]:
    """Requester UID -> the providers bound to it, the one that serves it first
    (:meth:`~fma.core.model.NodeSnapshot.providers_bound_to`), in one pass."""
    bound: dict[str, list[Provider]] = {}
    for provider in snapshot.providers:
        uid = provider.bound_requester_uid
        if uid is not None:
            bound.setdefault(uid, []).append(provider)
    for uid, providers in bound.items():
        if len(providers) > 1:
            bound[uid] = snapshot.providers_bound_to(uid)
    return bound


def _one_sleep_at_a_time(plan: Plan, step: Plan, sleeping: bool) -> tuple[Plan, bool]:
    """Add ``step``, unless it puts an instance to sleep and ``plan`` already does
    (``sleeping``); returns the plan and whether it now puts one to sleep.

    Each sleep is admitted against the sleepers the snapshot shows; two admitted in one plan
    would not see each other and could overrun the budget together. The later one waits for
    the next pass, which sees the first on its way to sleep.
    """
    if not step.actions:
        return plan + step, sleeping
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
    provider: Provider | type[LookUp] | None = LookUp,
) -> Plan:
    """The plan for one requester on ``snapshot``'s node (see the module docstring).

    ``provider`` is the provider serving it, when the caller has looked it up already.
    """
    if provider is LookUp:
        provider = snapshot.provider_bound_to(requester.uid)
    if isinstance(provider, Provider):
        return _bound(requester, provider, snapshot, now_s=now_s, policy=policy)
    if requester.deleting:
        return _release_finalizer(requester, snapshot)
    if requester.node is None or snapshot.node is None:
        return NOTHING  # not scheduled yet, or the node is going away (Pod GC deletes it)
    if requester.problems:
        return _status(requester, requester.problems)
    if requester.gpu_uuids is None:
        # Its GPUs are not known yet: the adapter learns them from its SPI once it runs (a
        # fact, like an instance's state), and the change re-queues the node.
        return NOTHING
    if not snapshot.node.schedulable:
        return Plan((DeleteRequester(requester.uid, NODE_CORDONED),))
    problems = _gpu_problems(requester, snapshot)
    target = target_of(requester, snapshot)
    if isinstance(target, str):
        problems = (*problems, target)
    elif not problems and not _fits_alone(target.spec, requester.gpu_uuids, snapshot):
        problems = (*problems, f"model {target.spec.model} does not fit its GPUs")
    if problems:
        return _status(requester, problems)
    assert isinstance(target, Target)
    if not snapshot.node.ready:
        # The kubelet is not reporting: a new Pod or instance could not start there now.
        return _status(requester, ()) + Plan(requeue_after_s=policy.retry_delay_s)
    if target.isc_name is not None and policy.actuation is Actuation.FMA:
        placing = launchers.place(
            requester, target, snapshot, claimed=claimed, now_s=now_s, policy=policy
        )
    else:
        placing = _place_direct(
            requester, target, snapshot, now_s=now_s, policy=policy, claimed=claimed
        )
    return _status(requester, ()) + _hold_first(requester, placing, snapshot)


def _status(requester: Requester, errors: tuple[str, ...]) -> Plan:
    """Write the requester's status when it differs from what the Pod shows."""
    if requester.errors == errors:
        return NOTHING
    return Plan((SetRequesterStatus(requester.uid, errors),))


def _hold_first(requester: Requester, placing: Plan, snapshot: NodeSnapshot) -> Plan:
    """Put the finalizer on the requester before it is first bound, so that a deletion right
    after the bind still waits for its instance to be asleep or gone. A bind to an existing
    provider names it, so the requester's labels go in the same write; a Pod being created has
    no name yet, so they follow once it is seen."""
    bind = next(
        (a for a in placing.actions if isinstance(a, Bind | CreateLauncher | CreateDirectProvider)),
        None,
    )
    if bind is None:
        return placing
    if isinstance(bind, Bind):
        provider = next((p for p in snapshot.providers if p.name == bind.provider), None)
        launcher = provider is not None and provider.kind is LAUNCHER
        meta = UpdateRequesterMeta(
            requester.uid, True, bind.provider, bind.instance_id if launcher else None
        )
    elif requester.finalizer:
        return placing
    else:
        meta = UpdateRequesterMeta(requester.uid, finalizer=True)
    return Plan((meta,)) + placing


def _release_finalizer(requester: Requester, snapshot: NodeSnapshot) -> Plan:
    """A requester being deleted, bound to nothing (or unbound in this plan): let it go once
    nothing holds its GPUs — nothing loading, serving, moving weights or stopping there."""
    if not requester.finalizer:
        return NOTHING
    if requester.gpu_uuids and holders_of(requester.gpu_uuids, snapshot):
        return NOTHING  # an instance is still stopping or moving weights there: observed later
    return Plan((UpdateRequesterMeta(requester.uid, finalizer=False),))


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
        if requester.deleting:
            # The provider finalizer held it for us; the requester's finalizer now waits for
            # the GPUs to be free (:func:`_release_finalizer`).
            return Plan((Unbind(provider.name),))
        return _withdraw(requester) + Plan((DeleteRequester(requester.uid, PROVIDER_DELETING),))
    if requester.deleting:
        return _unbind(provider, requester, snapshot, now_s=now_s, policy=policy)
    meta = _mark(requester, provider)
    if not provider.ready:
        return meta + _withdraw(requester) + _not_ready(requester, provider, now_s, policy)
    instance = provider.instance(provider.bound_instance_id)
    if instance is None:
        return meta + _missing_instance(requester, provider, snapshot, now_s=now_s, policy=policy)
    state = instance.state
    if state is AWAKE:  # first: the steady state, reconciled most often
        labels = _label(provider, snapshot, awake=True, instance=instance)
        if requester.ready:
            return meta + labels
        first = None if requester.actuated else (provider.path or ActuationPath.COLD)
        return meta + labels + Plan((RelayReadiness(requester.uid, True, actuation=first),))
    if state is SLEEPING:
        room = room_for(
            instance, snapshot, owner=provider.name, claimed=(), now_s=now_s, policy=policy
        )
        wake = room or Plan((WakeInstance(provider.name, instance.instance_id),))
        return meta + _withdraw(requester) + wake
    if state is WAKING or state is FALLING_ASLEEP or state is STOPPING:
        # In flight: its end is an observed change; the requeue is only a safety net.
        return meta + _withdraw(requester) + Plan(requeue_after_s=policy.retry_delay_s)
    if state is STOPPED:
        stopped = Plan((DeleteRequester(requester.uid, INSTANCE_STOPPED),))
        return _withdraw(requester) + stopped
    # STARTING
    since_s = max(provider.bound_s or provider.created_s, instance.created_s)
    return meta + _wait_for_ready(provider, since_s, now_s=now_s, policy=policy)


def _mark(requester: Requester, provider: Provider) -> Plan:
    """FMA's metadata on a bound requester: the finalizer, and labels naming its provider and
    (on a launcher) its instance. Written only when the Pod shows something else."""
    instance_id = provider.bound_instance_id if provider.kind is LAUNCHER else None
    if (
        requester.finalizer
        and requester.labels.get(LABEL_DUAL) == provider.name
        and requester.labels.get(LABEL_INSTANCE) == instance_id
    ):
        return NOTHING
    return Plan((UpdateRequesterMeta(requester.uid, True, provider.name, instance_id),))


def _withdraw(requester: Requester | None) -> Plan:
    """Take back readiness a requester shows while its engine cannot serve."""
    if requester is None or not requester.ready:
        return NOTHING
    return Plan((RelayReadiness(requester.uid, False),))


def _label(provider: Provider, snapshot: NodeSnapshot, *, awake: bool, instance: Instance) -> Plan:
    """The ``sleeping`` label and routing metadata a bound provider should carry: routing only
    while its instance is awake. A serving instance keeps the routing it was given."""
    routing = (provider.routing or _routing_of(instance, snapshot)) if awake else None
    sleeping = "false" if awake else "true"
    if provider.labels.get(LABEL_SLEEPING) == sleeping and provider.routing == routing:
        return NOTHING
    return Plan((LabelProvider(provider.name, sleeping=not awake, routing=routing),))


def _routing_of(instance: Instance, snapshot: NodeSnapshot) -> Routing | None:
    isc = snapshot.iscs.get(instance.isc_name) if instance.isc_name is not None else None
    return isc.routing if isc is not None and isc.routing else None


def _not_ready(requester: Requester, provider: Provider, now_s: float, policy: Policy) -> Plan:
    """A bound provider that is not Ready: after serving, its requester goes once it has been
    not Ready for the ready timeout (a restarting launcher lost its instances anyway); before,
    the wait is measured from the binding."""
    if requester.actuated:
        waited_s = provider.not_ready_for_s(now_s)
        if waited_s < policy.ready_timeout_s:
            return Plan(requeue_after_s=policy.ready_timeout_s - waited_s)
        return Plan((DeleteRequester(requester.uid, PROVIDER_NOT_READY),))
    bound_s = provider.bound_s if provider.bound_s is not None else provider.created_s
    went_not_ready_s = now_s - provider.not_ready_for_s(now_s)
    return _wait_for_ready(provider, max(bound_s, went_not_ready_s), now_s=now_s, policy=policy)


def _missing_instance(
    requester: Requester,
    provider: Provider,
    snapshot: NodeSnapshot,
    *,
    now_s: float,
    policy: Policy,
) -> Plan:
    """A bound launcher without the instance: create it, unless it vanished after serving."""
    if requester.actuated or provider.kind is DIRECT:
        return _withdraw(requester) + Plan((DeleteRequester(requester.uid, INSTANCE_GONE),))
    target = target_of(requester, snapshot)
    if isinstance(target, str):
        return _status(requester, (target,))
    assert requester.gpu_uuids is not None
    if target.instance_id != provider.bound_instance_id:
        # The ISC changed between the bind and the instance's creation: the binding names an
        # instance nobody wants any more. Release it; the next pass places the requester anew.
        return Plan((Unbind(provider.name),), requeue_after_s=0.0)
    newcomer = Instance(
        target.instance_id,
        target.spec,
        requester.gpu_uuids,
        STARTING,
        now_s,
        now_s,
        target.isc_name,
    )
    room = room_for(newcomer, snapshot, owner=provider.name, claimed=(), now_s=now_s, policy=policy)
    if room is not None:
        return room
    if launchers.port_taken(provider, target):
        # An instance leaving this launcher still holds the target's port until it exits.
        return Plan(requeue_after_s=policy.retry_delay_s)
    create = CreateInstance(
        provider.name, target.instance_id, target.spec, requester.gpu_uuids, target.isc_name
    )
    if provider.path is ActuationPath.HOT:
        # The sleeper this binding meant to wake is gone: a new instance makes it warm.
        return Plan((SetActuationPath(provider.name, ActuationPath.WARM), create))
    return Plan((create,))


def _wait_for_ready(provider: Provider, since_s: float, *, now_s: float, policy: Policy) -> Plan:
    """Wait for a starting launcher or instance, but not forever: abandon it once
    ``ready_timeout_s`` have passed since ``since_s``.

    An abandoned launcher is only unbound (it may still become useful) after its instance is
    deleted; an abandoned direct provider is deleted. Either way the requester is placed again
    on the next pass.
    """
    waited_s = now_s - since_s
    if waited_s < policy.ready_timeout_s:
        return Plan(requeue_after_s=policy.ready_timeout_s - waited_s)
    reason = f"not ready within {policy.ready_timeout_s:g} s"
    instance = provider.instance(provider.bound_instance_id)
    actions: list[Action] = []
    if provider.kind is DIRECT:
        actions.append(DeleteProvider(provider.name, reason))
    elif instance is not None:
        actions.append(DeleteInstance(provider.name, instance.instance_id, reason))
    return Plan((*actions, Unbind(provider.name)), requeue_after_s=0.0)


# --- unbinding ---------------------------------------------------------------------------------


def _unbind(
    provider: Provider,
    requester: Requester | None,
    snapshot: NodeSnapshot,
    *,
    now_s: float,
    policy: Policy,
) -> Plan:
    """Release ``provider`` from a requester that is going (or gone: None).

    First readiness and routing metadata are withdrawn, so traffic stops while the engine can
    still answer; then the instance is retired. The binding goes only once the instance is
    settled — asleep, gone or being stopped — so the provider stays claimed while its weights
    move; and with it, when nothing is left on its GPUs, the requester's finalizer.
    """
    instance = provider.instance(provider.bound_instance_id)
    withdraw = _withdraw(requester)
    if provider.routing is not None:
        withdraw += Plan((LabelProvider(provider.name, sleeping=False, routing=None),))
    retirement = retire(provider, instance, snapshot, now_s=now_s, policy=policy)
    step = withdraw + Plan(retirement.actions)
    if not retirement.settled:
        return step
    step += Plan((Unbind(provider.name),))
    if requester is not None:
        step += _release_finalizer(requester, snapshot)
    return step


def _release_duplicate(
    provider: Provider, snapshot: NodeSnapshot, *, now_s: float, policy: Policy
) -> Plan:
    """A second provider bound to a requester another provider serves: release it like an
    unbind (its requester keeps its readiness and finalizer), and say so."""
    warning = EmitEvent(
        SubjectKind.PROVIDER,
        provider.name,
        "DuplicateBinding",
        f"bound to requester {provider.bound_requester_uid}, which another provider serves;"
        " releasing it",
        warning=True,
    )
    return Plan((warning,)) + _unbind(provider, None, snapshot, now_s=now_s, policy=policy)


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
        target.instance_id, target.spec, requester.gpu_uuids, STARTING, now_s, now_s
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
        if p.bound or p.deleting or p.name in claimed or p.kind is not DIRECT:
            continue
        inst = p.instance(target)
        if inst is not None and inst.state is SLEEPING:
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
    """Whether the instance's share of weights fits within what the engine may claim of each
    of its GPUs (``gpu_memory_utilization``), with nothing else there."""
    assert snapshot.node is not None
    share = spec.weights_bytes // max(1, len(gpu_uuids))
    gpus = [snapshot.node.gpu(u) for u in gpu_uuids]
    return all(
        g is not None and share <= spec.gpu_memory_utilization * g.memory_bytes for g in gpus
    )


def _providers_touched(actions: tuple[Action, ...]) -> set[str]:
    return {
        a.provider
        for a in actions
        if isinstance(a, Bind | DeleteProvider | DeleteInstance | CreateInstance | SleepInstance)
    }
