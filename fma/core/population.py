"""Launcher population: how many launchers of each LauncherConfig a node keeps, and which go.

Per (node, LauncherConfig) the desired number is ``max(policy count, demand)``, where demand
is the bound launchers plus the requesters still waiting for one: the policy keeps launchers
ready for warm starts, and a launcher a requester waits for is not surplus. Unlike upstream:

- cordoned and NotReady nodes get no new launchers;
- surplus removal is ordered — launchers without sleepers first, then the fewest sleepers, then
  the least recently used — and, by default, launchers holding sleepers are not surplus at all
  (the sleeping-memory budget decides when sleepers go, not the head count);
- nothing is created or deleted while the LauncherConfig is missing or malformed;
- a launcher from a stale template is replaced only once it is unbound;
- an unbound launcher not Ready within the ready timeout is replaced, not left stuck.

:func:`policy_counts` evaluates LauncherPopulationPolicies against one node.
"""

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from fma.core import launchers
from fma.core.actions import NOTHING, Action, CreateLauncher, DeleteProvider, Plan
from fma.core.memo import PerObject
from fma.core.model import (
    LAUNCHER,
    SLEEPING,
    Node,
    NodeSnapshot,
    Provider,
)
from fma.core.policy import Policy
from fma.core.reasons import STALE_TEMPLATE, STUCK, SURPLUS


def plan_population(
    snapshot: NodeSnapshot,
    *,
    claimed: Collection[str],
    placed: Collection[str] = (),
    created: Mapping[str, int] | None = None,
    released: Collection[str] = (),
    now_s: float,
    policy: Policy,
) -> Plan:
    """Create or delete unbound launchers on this node to meet the desired counts.

    Pure; no I/O. Launchers in ``claimed`` were bound or changed earlier in the same plan and
    count as bound; so do the launchers ``created`` in it for a requester (per LauncherConfig),
    which the snapshot does not show yet; requesters in ``placed`` got a launcher in this plan
    and are not waiting. Launchers in ``released`` are unbound by the plan: free once it is
    applied, they count as available to a waiting requester (a ReplicaSet's replacement for
    the requester they served), not as bound, and are not removed in it.
    """
    if snapshot.node is None:
        return NOTHING
    actions: list[Action] = []
    requeue_s: float | None = None
    names = set(snapshot.launcher_policy) | {
        p.launcher_config for p in snapshot.providers if p.kind is LAUNCHER
    }
    waiting_for = _waiting(snapshot, placed)
    for lc_name in sorted(n for n in names if n is not None):
        waiting = waiting_for.get(lc_name, 0)
        more, due_s = _plan_one(
            snapshot,
            lc_name,
            claimed=claimed,
            waiting=waiting,
            created=(created or {}).get(lc_name, 0),
            released=released,
            now_s=now_s,
            policy=policy,
        )
        actions += more
        if due_s is not None:
            requeue_s = due_s if requeue_s is None else min(requeue_s, due_s)
    if not actions and requeue_s is None:
        return NOTHING
    return Plan(tuple(actions), requeue_s)


def _plan_one(
    snapshot: NodeSnapshot,
    lc_name: str,
    *,
    claimed: Collection[str],
    waiting: int,
    created: int,
    released: Collection[str],
    now_s: float,
    policy: Policy,
) -> tuple[list[Action], float | None]:
    """The actions for one LauncherConfig, and when to look again: when a launcher that is not
    Ready yet would turn stuck (nothing else would wake the node then)."""
    lc = snapshot.launcher_configs.get(lc_name)
    if lc is None or not lc.valid:
        return [], None  # hands off: a missing or broken config must not cost anyone theirs
    assert snapshot.node is not None
    # One pass, partitioning this config's live launchers: released by this plan, bound (or
    # claimed in it), from a stale template, stuck before Ready, or current.
    bound = created
    freed = 0
    stale: list[Provider] = []
    stuck: list[Provider] = []
    current: list[Provider] = []
    for p in snapshot.providers:
        if p.kind is not LAUNCHER or p.launcher_config != lc_name or p.deleting:
            continue
        if p.name in released:
            freed += 1
        elif p.bound_requester_uid is not None or p.name in claimed:
            bound += 1
        elif p.template_hash != lc.template_hash:
            stale.append(p)
        elif not p.ready and launchers.stuck(p, now_s=now_s, policy=policy):
            stuck.append(p)
        else:
            current.append(p)
    desired = max(snapshot.launcher_policy.get(lc_name, 0), bound + waiting)
    actions: list[Action] = [DeleteProvider(p.name, STALE_TEMPLATE) for p in stale]
    actions += [DeleteProvider(p.name, STUCK) for p in stuck]
    have = bound + freed + len(current)
    if have > desired:
        removable = current
        if policy.keep_launchers_with_sleepers:
            removable = [p for p in current if not _LIVE.of(p, launchers.has_live_instances)]
        removable = sorted(removable, key=lambda p: (_sleepers(p), _last_use_s(p), p.name))
        actions += [DeleteProvider(p.name, SURPLUS) for p in removable[: have - desired]]
    elif have < desired and snapshot.node.schedulable and snapshot.node.ready:
        actions += [
            CreateLauncher(snapshot.node_name, lc.name, lc.template_hash)
            for _ in range(desired - have)
        ]
    waits = [policy.ready_timeout_s - p.not_ready_for_s(now_s) for p in current if not p.ready]
    return actions, min(waits) if waits else None


_LIVE: PerObject[Provider, bool] = PerObject()
"""Whether a launcher has live instances, once per provider object (every pass of a node asks
it of each of the node's unbound launchers)."""


def _waiting(snapshot: NodeSnapshot, placed: Collection[str]) -> dict[str, int]:
    """LauncherConfig name -> requesters on this node that will need a launcher of it and have
    none yet (not those with a problem on their status: they cannot be placed until it is
    fixed)."""
    counts: dict[str, int] = {}
    bound: set[str | None] | None = None
    for r in snapshot.requesters:
        if r.isc_name is None or r.deleting or r.errors or r.uid in placed:
            continue
        isc = snapshot.iscs.get(r.isc_name)
        if isc is None:
            continue
        if bound is None:
            bound = {p.bound_requester_uid for p in snapshot.providers if p.bound}
        if r.uid not in bound:
            counts[isc.launcher_config] = counts.get(isc.launcher_config, 0) + 1
    return counts


def _sleepers(launcher: Provider) -> int:
    return sum(1 for i in launcher.instances if i.state is SLEEPING)


def _last_use_s(launcher: Provider) -> float:
    return max((i.last_used_s for i in launcher.instances), default=launcher.created_s)


# --- LauncherPopulationPolicy evaluation -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SelectorRequirement:
    key: str
    operator: str  # In, NotIn, Exists, DoesNotExist
    values: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class PopulationPolicy:
    """A LauncherPopulationPolicy, parsed: which nodes, and how many launchers of which config.

    ``allocatable`` maps a resource name to inclusive (min, max) bounds in base units; None is
    unbounded. A node lacking a listed resource does not match.
    """

    name: str
    match_labels: Mapping[str, str]
    match_expressions: tuple[SelectorRequirement, ...]
    allocatable: Mapping[str, tuple[float | None, float | None]]
    counts: Mapping[str, int]


def selects(policy: PopulationPolicy, node: Node, allocatable: Mapping[str, float]) -> bool:
    """Whether the policy's enhanced node selector matches the node."""
    labels = node.labels
    if any(labels.get(k) != v for k, v in policy.match_labels.items()):
        return False
    for req in policy.match_expressions:
        present = req.key in labels
        ok = {
            "In": present and labels.get(req.key) in req.values,
            "NotIn": not present or labels.get(req.key) not in req.values,
            "Exists": present,
            "DoesNotExist": not present,
        }[req.operator]
        if not ok:
            return False
    for resource, (low, high) in policy.allocatable.items():
        amount = allocatable.get(resource)
        if (
            amount is None
            or (low is not None and amount < low)
            or (high is not None and amount > high)
        ):
            return False
    return True


def policy_counts(
    policies: Sequence[PopulationPolicy], node: Node, allocatable: Mapping[str, float]
) -> dict[str, int]:
    """LauncherConfig name -> the largest count any selecting policy asks for on this node."""
    counts: dict[str, int] = {}
    for policy in policies:
        if selects(policy, node, allocatable):
            for lc, n in policy.counts.items():
                counts[lc] = max(counts.get(lc, 0), n)
    return counts
