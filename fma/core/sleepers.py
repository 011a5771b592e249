"""Sleeping memory: the budget sleepers must fit in, and which sleeper to evict when they do not.

A level-1 sleeper keeps its weights in host memory and a small residue on each of its GPUs.
The budget is in bytes, not a count of sleepers (upstream counts), so one 70B sleeper and ten
1B sleepers are priced for what they hold:

- per GPU: the host bytes of sleepers attributed to that GPU stay within
  ``Policy.sleeping_bytes_per_gpu_max`` (when set);
- per node: all sleepers' host bytes stay within host memory less a reserve;
- per GPU: an awake instance's bytes plus every sleeper's residue fit in the GPU's memory.

Which sleeper goes first is an :class:`EvictionPolicy`, chosen by name.
"""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from fma.core.model import GIB_BYTES, Instance, InstanceState, Node, Provider
from fma.core.policy import Policy

SLEEPER_GPU_RESIDUE_BYTES = int(1.5 * GIB_BYTES)
"""GPU memory a level-1 sleeper keeps (CUDA context, allocator): 1-2 GiB measured upstream."""


@dataclass(frozen=True, slots=True)
class Sleeper:
    provider: str
    instance: Instance
    evictable: bool = True
    """False for a sleeper that is bound (being woken) and so must not be taken."""


def sleepers_on(providers: Iterable[Provider]) -> list[Sleeper]:
    """Every sleeper on these providers, with whether it may be evicted.

    An awake instance of an unbound provider counts too: it is on its way to sleep (or will be
    retired), and leaving it out would let two sleeps admitted one after the other overrun
    the budget together.
    """
    return [
        Sleeper(p.name, i, evictable=not (p.bound and p.bound_instance_id == i.instance_id))
        for p in providers
        if not p.deleting
        for i in p.instances
        if i.state is InstanceState.SLEEPING or (i.state is InstanceState.AWAKE and not p.bound)
    ]


# --- Eviction policies -----------------------------------------------------------------------

EvictionPolicy = Callable[[Sequence[Sleeper], float], list[Sleeper]]
"""Orders candidates evict-first, given ``now_s``. Pure and deterministic."""


def evict_lru(candidates: Sequence[Sleeper], now_s: float) -> list[Sleeper]:
    """Least recently used first; last use is refreshed on wake and on unbind."""
    return sorted(candidates, key=lambda s: (s.instance.last_used_s, s.instance.instance_id))


def evict_oldest(candidates: Sequence[Sleeper], now_s: float) -> list[Sleeper]:
    """Upstream's approximation: oldest creation first, whatever the use since."""
    return sorted(candidates, key=lambda s: (s.instance.created_s, s.instance.instance_id))


def keep_value(sleeper: Sleeper, now_s: float) -> float:
    """Expected seconds saved per GiB held: reuse likelihood x (cold start - wake) / size.

    Reuse likelihood decays with idle time (a recently used model is likely to return);
    the time saved by waking rather than starting cold is the engine init time.
    """
    idle_s = max(0.0, now_s - sleeper.instance.last_used_s)
    reuse = 1.0 / (1.0 + idle_s / 600.0)
    gib = max(sleeper.instance.spec.weights_bytes / GIB_BYTES, 0.1)
    return reuse * sleeper.instance.spec.engine_init_s / gib


def evict_cost_aware(candidates: Sequence[Sleeper], now_s: float) -> list[Sleeper]:
    """Lowest expected value per GiB first: big, rarely used, quick-to-load models go first."""
    return sorted(candidates, key=lambda s: (keep_value(s, now_s), s.instance.instance_id))


EVICTION_POLICIES: dict[str, EvictionPolicy] = {
    "lru": evict_lru,
    "oldest": evict_oldest,
    "cost": evict_cost_aware,
}


# --- The budget --------------------------------------------------------------------------------


def _over_budget(
    node: Node, sleepers: Sequence[Sleeper], awake: Sequence[Instance], policy: Policy
) -> bool:
    """Whether any limit of the budget is exceeded. One pass over the instances (this runs
    for every candidate victim of every placement, so it is the budget's hot loop)."""
    host_limit = node.host_memory_bytes * (1.0 - policy.host_memory_reserve_fraction)
    total = 0
    held: dict[str, int] = {}
    count: dict[str, int] = {}
    for sleeper in sleepers:
        inst = sleeper.instance
        total += inst.spec.weights_bytes
        share = inst.bytes_per_gpu
        for uuid in inst.gpu_uuids:
            held[uuid] = held.get(uuid, 0) + share
            count[uuid] = count.get(uuid, 0) + 1
    if total > host_limit:
        return True
    awake_bytes: dict[str, int] = {}
    for inst in awake:
        share = inst.bytes_per_gpu
        for uuid in inst.gpu_uuids:
            awake_bytes[uuid] = awake_bytes.get(uuid, 0) + share
    per_gpu_max = policy.sleeping_bytes_per_gpu_max
    for gpu in node.gpus:
        uuid = gpu.uuid
        if per_gpu_max is not None and held.get(uuid, 0) > per_gpu_max:
            return True
        residue = count.get(uuid, 0) * SLEEPER_GPU_RESIDUE_BYTES
        if awake_bytes.get(uuid, 0) + residue > gpu.memory_bytes:
            return True
    return False


def victims_to_fit(
    *,
    node: Node,
    sleepers: Sequence[Sleeper],
    awake: Sequence[Instance],
    policy: Policy,
    now_s: float,
) -> list[Sleeper] | None:
    """The sleepers to evict so that ``sleepers`` and ``awake`` fit the budget.

    Evicts in the order of ``policy.eviction``, skipping a sleeper whose removal does not help
    any limit that is exceeded. Returns [] when everything fits, and None when even evicting
    every evictable sleeper cannot make it fit (the awake set alone is too big).
    Pure; no I/O.
    """
    order = EVICTION_POLICIES[policy.eviction]([s for s in sleepers if s.evictable], now_s)
    kept = list(sleepers)
    victims: list[Sleeper] = []
    for candidate in order:
        if not _over_budget(node, kept, awake, policy):
            break
        kept.remove(candidate)
        victims.append(candidate)
    if _over_budget(node, kept, awake, policy):
        return None
    return _drop_unneeded(node, kept, victims, awake, policy)


def _drop_unneeded(
    node: Node,
    kept: list[Sleeper],
    victims: list[Sleeper],
    awake: Sequence[Instance],
    policy: Policy,
) -> list[Sleeper]:
    """Spare any victim whose survival still fits (evicting on another GPU did not help)."""
    needed: list[Sleeper] = []
    for victim in reversed(victims):
        if _over_budget(node, [*kept, victim], awake, policy):
            needed.append(victim)
        else:
            kept.append(victim)
    return list(reversed(needed))
