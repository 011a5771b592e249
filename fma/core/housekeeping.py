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

from collections.abc import Collection

from fma.core.actions import NOTHING, Action, DeleteInstance, DeleteProvider, Plan
from fma.core.model import InstanceState, NodeSnapshot, ProviderKind
from fma.core.policy import Policy
from fma.core.reasons import OBSOLETE, STOPPED
from fma.core.retire import retire
from fma.core.target import obsolete


def plan_housekeeping(
    snapshot: NodeSnapshot, *, claimed: Collection[str], now_s: float, policy: Policy
) -> Plan:
    """Tidy the providers not ``claimed`` earlier in this plan. Pure; no I/O."""
    actions: list[Action] = []
    for provider in snapshot.providers:
        if provider.deleting or provider.name in claimed:
            continue
        serving = provider.bound_instance_id if provider.bound else None
        for inst in provider.instances:
            state = inst.state
            if state is InstanceState.SLEEPING:
                if inst.isc_name is not None and obsolete(inst, snapshot):
                    actions.append(DeleteInstance(provider.name, inst.instance_id, OBSOLETE))
                continue  # the common case: a sleeper, kept
            if inst.instance_id == serving:
                continue
            if inst.state is InstanceState.STOPPED and provider.kind is ProviderKind.LAUNCHER:
                actions.append(DeleteInstance(provider.name, inst.instance_id, STOPPED))
            elif inst.state is InstanceState.STOPPED and not provider.bound:
                # A direct provider's only engine exited while it slept: nothing to wake.
                actions.append(DeleteProvider(provider.name, "its instance stopped"))
            elif inst.state is InstanceState.AWAKE and (
                not provider.bound or provider.kind is ProviderKind.LAUNCHER
            ):
                actions += retire(provider, inst, snapshot, now_s=now_s, policy=policy).actions
    return Plan(tuple(actions)) if actions else NOTHING
