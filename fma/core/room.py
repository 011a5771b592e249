"""Making room on GPUs before something starts or wakes there.

Two things must hold before an instance may load onto GPUs: no other instance holds them
(a previous tenant may still be going to sleep, or its Pod still stopping), and its claim fits
beside the sleepers' residue within the sleeping-memory budget. :func:`room_for` answers with
a plan that waits or evicts, or with None when the way is clear.
"""

from collections.abc import Collection, Sequence
from dataclasses import replace

from fma.core.actions import Action, DeleteInstance, DeleteProvider, Plan
from fma.core.model import (
    DIRECT,
    SLEEPING,
    Instance,
    NodeSnapshot,
    Provider,
)
from fma.core.policy import Policy
from fma.core.reasons import EVICTED
from fma.core.sleepers import Sleeper, choose_victims, ledger


def holders_of(
    gpu_uuids: Collection[str], snapshot: NodeSnapshot, *, except_: tuple[str, str] | None = None
) -> list[tuple[Provider, Instance]]:
    """The instances holding any of these GPUs: loading, serving or moving weights, on any
    provider (one being deleted too: its engine holds the memory until it has stopped).
    ``except_`` is a (provider, instance ID) that does not count."""
    wanted = set(gpu_uuids)
    return [
        (p, i)
        for p in snapshot.providers
        for i in p.instances
        if i.state.on_gpus
        and not wanted.isdisjoint(i.gpu_uuids)
        and (p.name, i.instance_id) != except_
    ]


def gpus_taken(newcomer: Instance, snapshot: NodeSnapshot, *, owner: str) -> bool:
    """Whether another instance holds the newcomer's GPUs — on any provider, its own launcher
    included (only the newcomer itself, on ``owner``, does not count)."""
    wanted = newcomer.gpu_uuids
    for p in snapshot.providers:
        for i in p.instances:
            if (
                i.state.on_gpus
                and not set(wanted).isdisjoint(i.gpu_uuids)
                and not (p.name == owner and i.instance_id == newcomer.instance_id)
            ):
                return True
    return False


def awake_instances(providers: Sequence[Provider]) -> list[Instance]:
    """Instances holding their GPUs (loading, serving, moving weights), on any provider."""
    return [i for p in providers for i in p.instances if i.state.on_gpus]


def asleep(instance: Instance, now_s: float) -> Instance:
    """``instance`` as it will be once put to sleep now (last use refreshed)."""
    return replace(instance, state=SLEEPING, last_used_s=now_s)


def evict(victim: Sleeper, snapshot: NodeSnapshot) -> Action:
    """Delete a direct sleeper's Pod, or a launcher sleeper's instance."""
    provider = next(p for p in snapshot.providers if p.name == victim.provider)
    if provider.kind is DIRECT:
        return DeleteProvider(provider.name, EVICTED)
    return DeleteInstance(provider.name, victim.instance.instance_id, EVICTED)


def room_for(
    newcomer: Instance,
    snapshot: NodeSnapshot,
    *,
    owner: str,
    claimed: Collection[str],
    now_s: float,
    policy: Policy,
) -> Plan | None:
    """What must happen before ``newcomer`` loads or wakes on its GPUs; None when nothing.

    ``owner`` is the provider that will run it (its own sleeping copy of the newcomer does not
    count against it). Sleepers on providers in ``claimed`` are not evicted. Returns a waiting
    plan while another instance holds those GPUs, an eviction plan (to re-plan after the
    evictions are seen), or a plan with nothing but a requeue when even evicting cannot fit it.
    """
    assert snapshot.node is not None
    if gpus_taken(newcomer, snapshot, owner=owner):
        # The previous tenant is still going to sleep or stopping — possibly in the same
        # launcher. Its end is an observed change, which re-queues the node; the requeue is a
        # safety net.
        return Plan(requeue_after_s=policy.retry_delay_s)
    book = ledger(snapshot, policy)
    tally = book.fresh()
    candidates = []
    for s in book.sleepers:
        if s.provider == owner and s.instance.instance_id == newcomer.instance_id:
            tally.remove_sleeper(s.instance)  # its own sleeping copy is what wakes
        elif s.evictable and s.provider not in claimed:
            candidates.append(s)
    tally.add_awake(newcomer)
    victims = choose_victims(tally, candidates, snapshot.node, policy, now_s)
    if victims is None:
        return Plan(requeue_after_s=policy.retry_delay_s)
    if victims:
        # Evict first, load on a later pass: the freed memory must be seen before it is used.
        return Plan(tuple(evict(v, snapshot) for v in victims), requeue_after_s=0.0)
    return None
