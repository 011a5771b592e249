"""Retiring an instance nobody is bound to: keep it asleep for a hot start, or let it go.

Used when a requester goes (unbind), for duplicate bindings, and when an unbound instance is
found awake (a wake that finished after its requester left). The rule, in order:

- a provider in trouble (restarted and not Ready)                            -> delete it;
- stopped, still starting, obsolete (its ISC changed), the cold policy,
  or an engine that refused to sleep                                          -> delete it;
- already sleeping or being stopped                                           -> keep it;
- waking or falling asleep                                                    -> wait for that
  to end (it is observed, and the node re-queued);
- awake, and its sleep fits the sleeping-memory budget after evictions        -> sleep it;
- awake, and it cannot fit                                                    -> delete it.

Deleting a direct provider's only instance means deleting the provider; a launcher stays.
:class:`Retirement` says whether the instance is *settled* — asleep, gone or being stopped —
which is when its binding may be removed.
"""

from dataclasses import dataclass

from fma.core.actions import Action, DeleteInstance, DeleteProvider, SleepInstance
from fma.core.model import (
    AWAKE,
    DIRECT,
    SLEEPING,
    STOPPING,
    Instance,
    NodeSnapshot,
    Provider,
)
from fma.core.policy import Actuation, Policy
from fma.core.reasons import (
    IN_TROUBLE,
    NO_ROOM_TO_SLEEP,
    NOT_KEPT,
    NOTHING_TO_KEEP,
    OBSOLETE,
    SLEEP_REFUSED,
)
from fma.core.room import asleep, evict
from fma.core.sleepers import Sleeper, choose_victims, ledger
from fma.core.target import obsolete


@dataclass(frozen=True, slots=True)
class Retirement:
    """The actions that retire an instance, and whether it is settled once they are done."""

    actions: tuple[Action, ...] = ()
    settled: bool = True


def in_trouble(provider: Provider) -> bool:
    """A provider whose container restarted and that is not Ready: nothing on it is kept."""
    return provider.restarts > 0 and not provider.ready


def retire(
    provider: Provider,
    instance: Instance | None,
    snapshot: NodeSnapshot,
    *,
    now_s: float,
    policy: Policy,
) -> Retirement:
    """How to retire ``instance`` of ``provider`` (see the module docstring). Pure."""
    if in_trouble(provider) and provider.kind is DIRECT:
        return Retirement((DeleteProvider(provider.name, IN_TROUBLE),))
    if instance is None:
        return Retirement(_delete(provider, None, NOTHING_TO_KEEP))
    state = instance.state
    if state is STOPPING:
        return Retirement()
    if state is SLEEPING and not obsolete(instance, snapshot):
        return Retirement()
    if state is SLEEPING:
        return Retirement(_delete(provider, instance, OBSOLETE))
    if state.in_flight:
        return Retirement(settled=False)
    if in_trouble(provider):
        return Retirement(_delete(provider, instance, IN_TROUBLE))
    keepable = (
        state is AWAKE
        and policy.actuation is not Actuation.COLD
        and snapshot.node is not None
        and not obsolete(instance, snapshot)
    )
    if not keepable or snapshot.node is None:
        return Retirement(_delete(provider, instance, NOT_KEPT))
    if not instance.sleepable:
        return Retirement(_delete(provider, instance, SLEEP_REFUSED))

    book = ledger(snapshot, policy)
    tally = book.fresh()
    tally.remove_sleeper(instance)  # an unbound awake instance counts as on its way to sleep
    tally.remove_awake(instance)
    newcomer = Sleeper(provider.name, asleep(instance, now_s))
    tally.add_sleeper(newcomer.instance)
    candidates = [
        s
        for s in book.sleepers
        if s.evictable
        and not (s.provider == provider.name and s.instance.instance_id == instance.instance_id)
    ]
    victims = choose_victims(tally, [*candidates, newcomer], snapshot.node, policy, now_s)
    if victims is None or newcomer in victims:
        return Retirement(_delete(provider, instance, NO_ROOM_TO_SLEEP))
    # Evict first: the host memory the sleep needs must be free before its weights arrive.
    sleep = SleepInstance(provider.name, instance.instance_id)
    return Retirement((*(evict(v, snapshot) for v in victims), sleep), settled=False)


def _delete(provider: Provider, instance: Instance | None, reason: str) -> tuple[Action, ...]:
    if provider.kind is DIRECT:
        return (DeleteProvider(provider.name, reason),)
    if instance is None:
        return ()
    return (DeleteInstance(provider.name, instance.instance_id, reason),)
