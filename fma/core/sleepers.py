"""Sleeping memory: the budget sleepers must fit in, and which sleeper to evict when they do not.

A level-1 sleeper keeps its weights in host memory and a small residue on each of its GPUs.
An awake vLLM claims ``gpu_memory_utilization`` of each of its GPUs at start — weights *and*
KV cache — and refuses to start or wake when that much is not free. The budget is in bytes,
not a count of sleepers (upstream counts), so one 70B sleeper and ten 1B sleepers are priced
for what they hold:

- per GPU: the host bytes of sleepers attributed to that GPU stay within
  ``Policy.sleeping_bytes_per_gpu_max`` (when set);
- per node: all sleepers' host bytes stay within host memory less a reserve;
- per GPU: what the awake instances there claim (``gpu_memory_utilization`` of the GPU, or
  their weights if larger) plus every other sleeper's residue fit in the GPU's memory. At the
  default 0.9 and 1.5 GiB of residue, an 80 GiB GPU serving one engine keeps at most 5
  sleepers.

Which sleeper goes first is an :class:`EvictionPolicy`, chosen by name.
"""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from fma.core.model import GIB_BYTES, Instance, InstanceState, Node, Provider
from fma.core.policy import Policy

_HOST_HOLDERS = frozenset(
    {InstanceState.SLEEPING, InstanceState.FALLING_ASLEEP, InstanceState.WAKING}
)
"""States in which an instance's weights are (also) in host memory."""


@dataclass(frozen=True, slots=True)
class Sleeper:
    provider: str
    instance: Instance
    evictable: bool = True
    """False for a sleeper that is bound (being woken) and so must not be taken."""


def sleepers_on(providers: Iterable[Provider]) -> list[Sleeper]:
    """Every sleeper on these providers, with whether it may be evicted.

    Instances moving weights count too (they hold host memory), and so does an awake instance
    of an unbound provider: it is on its way to sleep (or will be retired), and leaving it out
    would let two sleeps admitted one after the other overrun the budget together. Only a
    settled, unbound sleeper may be evicted.
    """
    return [
        Sleeper(
            p.name,
            i,
            evictable=i.state is InstanceState.SLEEPING
            and not (p.bound and p.bound_instance_id == i.instance_id),
        )
        for p in providers
        if not p.deleting
        for i in p.instances
        if i.state in _HOST_HOLDERS or (i.state is InstanceState.AWAKE and not p.bound)
    ]


# --- What a sleeper is worth -------------------------------------------------------------------

REUSE_HALF_LIFE_S = 3600.0
"""Idle time after which a sleeper is judged half as likely to be used again. Sleepers are
kept for hours in practice (upstream has no TTL at all: only its count limit evicts), so an
hour, not minutes."""


def expected_saving_s(instance: Instance, now_s: float, node: Node) -> float:
    """Seconds a future hot hit on ``instance`` is expected to save: reuse likelihood x
    (cold start - wake).

    Reuse likelihood decays with idle time (a recently used model is likely to return), by
    half after :data:`REUSE_HALF_LIFE_S`. A cold start loads the weights from disk and
    initialises the engine; a wake moves each GPU's share back over PCIe.
    """
    idle_s = max(0.0, now_s - instance.last_used_s)
    reuse = 1.0 / (1.0 + idle_s / REUSE_HALF_LIFE_S)
    cold_s = instance.spec.weights_bytes / node.disk_bytes_per_s + instance.spec.engine_init_s
    wake_s = instance.bytes_per_gpu / node.h2d_bytes_per_s
    return reuse * max(0.0, cold_s - wake_s)


def keep_value(sleeper: Sleeper, now_s: float, node: Node) -> float:
    """Expected seconds saved per GiB of host memory held (:func:`expected_saving_s` / size)."""
    gib = max(sleeper.instance.spec.weights_bytes / GIB_BYTES, 0.1)
    return expected_saving_s(sleeper.instance, now_s, node) / gib


# --- Eviction policies -----------------------------------------------------------------------

EvictionPolicy = Callable[[Sequence[Sleeper], float, Node], list[Sleeper]]
"""Orders candidates evict-first, given ``now_s`` and the node. Pure and deterministic."""


def evict_lru(candidates: Sequence[Sleeper], now_s: float, node: Node) -> list[Sleeper]:
    """Least recently used first; last use is refreshed on wake and on sleep."""
    return sorted(candidates, key=lambda s: (s.instance.last_used_s, s.instance.instance_id))


def evict_oldest(candidates: Sequence[Sleeper], now_s: float, node: Node) -> list[Sleeper]:
    """Upstream's approximation: oldest creation first, whatever the use since."""
    return sorted(candidates, key=lambda s: (s.instance.created_s, s.instance.instance_id))


def evict_cost_aware(candidates: Sequence[Sleeper], now_s: float, node: Node) -> list[Sleeper]:
    """Lowest expected saving per GiB first: big, rarely used, quick-to-load models go first."""
    return sorted(candidates, key=lambda s: (keep_value(s, now_s, node), s.instance.instance_id))


EVICTION_POLICIES: dict[str, EvictionPolicy] = {
    "lru": evict_lru,
    "oldest": evict_oldest,
    "cost": evict_cost_aware,
}


# --- The budget --------------------------------------------------------------------------------


def gpu_claim_bytes(instance: Instance, gpu_memory_bytes: int) -> int:
    """What an awake instance holds on one of its GPUs: its share of ``gpu_memory_utilization``
    (weights and KV cache), or its weights if they are larger."""
    claim = int(instance.spec.gpu_memory_utilization * gpu_memory_bytes)
    return max(claim, instance.bytes_per_gpu)


def _over_budget(
    node: Node, sleepers: Sequence[Sleeper], awake: Sequence[Instance], policy: Policy
) -> bool:
    """Whether any limit of the budget is exceeded. One pass over the instances (this runs
    for every candidate victim of every placement, so it is the budget's hot loop)."""
    host_limit = node.host_memory_bytes * (1.0 - policy.host_memory_reserve_fraction)
    total = 0
    held: dict[str, int] = {}
    for sleeper in sleepers:
        inst = sleeper.instance
        total += inst.spec.weights_bytes
        share = inst.bytes_per_gpu
        for uuid in inst.gpu_uuids:
            held[uuid] = held.get(uuid, 0) + share
    if total > host_limit:
        return True
    per_gpu_max = policy.sleeping_bytes_per_gpu_max
    if per_gpu_max is not None and any(b > per_gpu_max for b in held.values()):
        return True
    used: dict[str, int] = {}
    memory = {g.uuid: g.memory_bytes for g in node.gpus}
    for inst in awake:
        for uuid in inst.gpu_uuids:
            used[uuid] = used.get(uuid, 0) + gpu_claim_bytes(inst, memory.get(uuid, 0))
    # An awake instance on its way to sleep is in both lists: it is claimed in full, once. The
    # same object, not merely the same identity: two launchers may hold one instance ID.
    awake_ids = {id(inst) for inst in awake}
    residue = policy.sleeper_gpu_residue_bytes
    for sleeper in sleepers:
        inst = sleeper.instance
        if id(inst) in awake_ids:
            continue
        for uuid in inst.gpu_uuids:
            used[uuid] = used.get(uuid, 0) + residue
    return any(b > memory.get(uuid, 0) for uuid, b in used.items())


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
    order = EVICTION_POLICIES[policy.eviction]([s for s in sleepers if s.evictable], now_s, node)
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
