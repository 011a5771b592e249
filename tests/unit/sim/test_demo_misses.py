"""On the demo, fma loses no hot start to a choice of its own.

A hot start needs a sleeper of the requester's model on exactly the GPUs the scheduler gave it.
If such an instance existed and the requester still started warm or cold, something destroyed
or withheld it: the sleeping-memory budget (each sleeper keeps a residue on its GPUs, and an
awake engine claims most of a GPU, so a sleeper may have to go), or a decision of fma's (a
reclaim for a launcher's port or instance cap, binding a launcher that hid the sleeper). On the
demo only the budget does, under fma as under direct-sleep; the other misses are first-time
identities, and the per-seed differences between the two policies come from which GPUs the
kubelet hands out.
"""

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from fma.adapters.sim.runner import run_scenario
from fma.api.loading import load_scenario
from fma.api.scenario import Scenario
from fma.core.reasons import EVICTED

DEMO = Path(__file__).resolve().parents[3] / "sim" / "scenarios" / "demo.yaml"


def misses_on_known_identities(
    events: Iterable[dict[str, Any]], *, but_evicted: bool = False
) -> list[str]:
    """Requesters bound warm or cold although their (model, GPU set) had been served before;
    with ``but_evicted``, only those whose sleeper was not evicted for the budget meanwhile."""
    model: dict[str, str] = {}
    gpus: dict[str, tuple[str, ...]] = {}
    served: set[tuple[str, tuple[str, ...]]] = set()
    evicted: set[tuple[str, tuple[str, ...]]] = set()
    instance_of: dict[str, tuple[str, tuple[str, ...]]] = {}
    missed = []
    for e in events:
        if e["kind"] == "requester_created":
            model[e["requester"]] = e["model"]
        elif e["kind"] == "requester_scheduled":
            gpus[e["requester"]] = tuple(e["gpus"])
        elif e["kind"] == "bind":
            identity = (model[e["requester"]], gpus[e["requester"]])
            instance_of[e["instance"]] = identity
            if e["path"] != "hot" and identity in served and identity not in evicted:
                missed.append(e["requester"])
            served.add(identity)
            evicted.discard(identity)
        elif (
            e["kind"] == "instance_deleted"
            and but_evicted
            and e.get("reason") == EVICTED
            and e["instance"] in instance_of
        ):
            evicted.add(instance_of[e["instance"]])
    return missed


def demo(**policy: object) -> Scenario:
    scenario = load_scenario(DEMO)
    return scenario.model_copy(update={"policy": scenario.policy.model_copy(update=policy)})


@pytest.mark.parametrize("seed", [7, 8, 9])
def test_fma_loses_no_hot_start_on_the_demo(seed: int) -> None:
    events = run_scenario(demo(actuation="fma"), seed).trace.events
    assert any(e["kind"] == "bind" and e["path"] == "hot" for e in events)
    assert misses_on_known_identities(events, but_evicted=True) == []


def test_the_budget_costs_both_policies_the_same_hot_start() -> None:
    """On seed 9 the budget evicts a sleeper that a later requester would have woken, under
    fma and direct-sleep alike."""
    for actuation in ("fma", "direct-sleep"):
        events = run_scenario(demo(actuation=actuation), 9).trace.events
        assert len(misses_on_known_identities(events)) == 1
        assert misses_on_known_identities(events, but_evicted=True) == []


def test_a_node_short_of_launchers_does_lose_hot_starts() -> None:
    """The check can fail: with two launchers for eight GPUs, sleepers must be reclaimed for
    their ports, and later requesters on those GPUs start warm."""
    events = run_scenario(demo(actuation="fma", launchers_per_node_max=2), 9).trace.events
    assert misses_on_known_identities(events, but_evicted=True) != []
