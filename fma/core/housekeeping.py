"""Housekeeping: what no requester's decision covers, on the providers nobody claimed.

- a stopped instance that no requester is bound to is deleted — with its Pod, for a direct
  provider (a bound one is left to its requester's decision, which deletes the requester
  first);
- an obsolete sleeper (its ISC is gone or changed) is deleted: it can never be a hot hit;
- an instance found awake that serves nobody — on an unbound provider, or a stray beside the
  bound instance of a launcher (a wake that finished after its requester left, a controller
  restart) — is retired: put to sleep if it fits the budget, deleted otherwise. Left awake, it
  would hold its GPUs for ever and a later requester there would wait for ever.

Awake obsolete instances that serve a requester are kept until that requester goes.
"""

from collections.abc import Collection, Mapping

from fma.core import reasons
from fma.core.actions import NOTHING, Action, DeleteInstance, DeleteProvider, Plan
from fma.core.memo import PerObject
from fma.core.model import (
    AWAKE,
    LAUNCHER,
    SLEEPING,
    STOPPED,
    IscSpec,
    NodeSnapshot,
    Provider,
)
from fma.core.policy import Policy
from fma.core.reasons import OBSOLETE
from fma.core.retire import retire
from fma.core.target import obsolete


def plan_housekeeping(
    snapshot: NodeSnapshot, *, claimed: Collection[str], now_s: float, policy: Policy
) -> Plan:
    """Tidy the providers not ``claimed`` earlier in this plan. Pure; no I/O."""
    actions: list[Action] = []
    iscs = snapshot.iscs
    for provider in snapshot.providers:
        if provider.deleting or provider.name in claimed:
            continue
        if _TIDY.get(provider) is iscs:
            continue  # seen before, with the same configuration, and nothing to do
        before = len(actions)
        serving = provider.bound_instance_id if provider.bound else None
        for inst in provider.instances:
            state = inst.state
            if state is SLEEPING:
                if inst.isc_name is not None and obsolete(inst, snapshot):
                    actions.append(DeleteInstance(provider.name, inst.instance_id, OBSOLETE))
                continue  # the common case: a sleeper, kept
            if inst.instance_id == serving:
                continue
            if inst.state is STOPPED and provider.kind is LAUNCHER:
                actions.append(DeleteInstance(provider.name, inst.instance_id, reasons.STOPPED))
            elif inst.state is STOPPED and not provider.bound:
                # A direct provider's only engine exited while it slept: nothing to wake.
                actions.append(DeleteProvider(provider.name, "its instance stopped"))
            elif inst.state is AWAKE and (not provider.bound or provider.kind is LAUNCHER):
                actions += retire(provider, inst, snapshot, now_s=now_s, policy=policy).actions
        if len(actions) == before:
            _TIDY.put(provider, iscs)
    return Plan(tuple(actions)) if actions else NOTHING


_TIDY: PerObject[Provider, Mapping[str, IscSpec]] = PerObject()
"""Providers found to need nothing, with the InferenceServerConfigs they were judged against.
What housekeeping decides for a provider depends on the provider and the ISCs alone when it
decides nothing (an action depends on more, and is never remembered), and both are frozen
values an adapter hands out again until they change: a provider of sleepers is not judged anew
on every pass."""
