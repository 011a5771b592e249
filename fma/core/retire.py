"""Retiring an instance nobody is bound to: keep it asleep for a hot start, or let it go.

Used when a requester goes (unbind) and when an unbound instance is found awake (a wake that
finished after its requester left). The rule, in order:

- stopped, still starting, obsolete (its ISC changed), or the cold policy  -> delete it;
- already sleeping                                                          -> keep it;
- awake, and its sleep fits the sleeping-memory budget after evictions      -> sleep it;
- awake, and it cannot fit                                                  -> delete it.

Deleting a direct provider's only instance means deleting the provider; a launcher stays.
"""

from fma.core.actions import Action, DeleteInstance, DeleteProvider, SleepInstance
from fma.core.model import Instance, InstanceState, NodeSnapshot, Provider, ProviderKind
from fma.core.policy import Actuation, Policy
from fma.core.room import asleep, awake_instances, evict
from fma.core.sleepers import Sleeper, sleepers_on, victims_to_fit
from fma.core.target import obsolete


def retire(
    provider: Provider,
    instance: Instance | None,
    snapshot: NodeSnapshot,
    *,
    now_s: float,
    policy: Policy,
) -> tuple[Action, ...]:
    """The actions that retire ``instance`` of ``provider`` (see the module docstring). Pure."""
    if instance is None:
        return _delete(provider, None, "unbound, nothing to keep")
    if instance.state is InstanceState.SLEEPING and not obsolete(instance, snapshot):
        return ()
    keepable = (
        instance.state is InstanceState.AWAKE
        and policy.actuation is not Actuation.COLD
        and snapshot.node is not None
        and not obsolete(instance, snapshot)
    )
    if not keepable or snapshot.node is None:
        return _delete(provider, instance, "unbound, not kept")

    def is_it(provider_name: str, other: Instance) -> bool:
        return provider_name == provider.name and other.instance_id == instance.instance_id

    others = [s for s in sleepers_on(snapshot.providers) if not is_it(s.provider, s.instance)]
    newcomer = Sleeper(provider.name, asleep(instance, now_s))
    awake = [i for p in snapshot.providers for i in awake_instances((p,)) if not is_it(p.name, i)]
    victims = victims_to_fit(
        node=snapshot.node,
        sleepers=[*others, newcomer],
        awake=awake,
        policy=policy,
        now_s=now_s,
    )
    if victims is None or newcomer in victims:
        return _delete(provider, instance, "no room to sleep")
    return (
        SleepInstance(provider.name, instance.instance_id),
        *(evict(v, snapshot) for v in victims),
    )


def _delete(provider: Provider, instance: Instance | None, reason: str) -> tuple[Action, ...]:
    if provider.kind is ProviderKind.DIRECT:
        return (DeleteProvider(provider.name, reason),)
    if instance is None:
        return ()
    return (DeleteInstance(provider.name, instance.instance_id, reason),)
