"""One reconcile of one key, in the three steps both worlds take: gather, decide, apply.

:func:`decide` does steps 1 and 2 (a snapshot from the reader, the core's plan); the world
applies the plan (step 3) and hands the outcomes to :func:`conclude`, which turns them into the
queue's follow-up (:func:`fma.core.outcomes.follow_up`). Keys are node names, plus
:data:`CONFIGS` for the status of the configuration objects.
"""

from collections.abc import Sequence
from dataclasses import dataclass

from fma.control.ports import ClusterReader
from fma.core.actions import Plan
from fma.core.configs import plan_configs
from fma.core.dualpods import plan_node
from fma.core.model import ConfigSnapshot, NodeSnapshot
from fma.core.outcomes import FollowUp, Outcome, follow_up
from fma.core.policy import Policy

CONFIGS = "@configs"
"""The key of the configuration objects' status (no node name can contain ``@``)."""


@dataclass(frozen=True, slots=True)
class Decision:
    """A plan and the snapshot it was made from (the executor's preconditions)."""

    key: str
    snapshot: NodeSnapshot | ConfigSnapshot
    plan: Plan


def decide(reader: ClusterReader, key: str, *, now_s: float, policy: Policy) -> Decision:
    """1. gather: the key's snapshot; 2. decide: the core's plan for it."""
    if key == CONFIGS:
        configs = reader.config_snapshot()
        return Decision(key, configs, plan_configs(configs))
    snapshot = reader.snapshot(key)
    return Decision(key, snapshot, plan_node(snapshot, now_s=now_s, policy=policy))


def conclude(reader: ClusterReader, decision: Decision, outcomes: Sequence[Outcome]) -> FollowUp:
    """After step 3: when to look at the key again. An outcome that may or may not have been
    applied makes the reader refresh what it caches of the key first."""
    follow = follow_up(decision.plan, outcomes)
    if follow.resync:
        reader.resync(decision.key)
    return follow
