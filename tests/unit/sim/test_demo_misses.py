"""On the demo, every actuation fma does not serve hot is one no decision could have served hot.

A hot start needs a sleeper of the requester's model on exactly the GPUs the scheduler gave it.
If such an instance ever existed and the requester still started warm or cold, a decision
(a reclaim, an eviction, binding a launcher that hid its sleeper) destroyed or withheld it. On
the demo none does: fma's misses, like direct-sleep's, are all first-time identities, and the
per-seed differences between the two policies come from which GPUs the scheduler hands out.
"""

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from fma.adapters.sim.runner import run_scenario
from fma.api.loading import load_scenario
from fma.api.scenario import Scenario

DEMO = Path(__file__).resolve().parents[3] / "sim" / "scenarios" / "demo.yaml"


def misses_on_known_identities(events: Iterable[dict[str, Any]]) -> list[str]:
    """Requesters bound warm or cold although their (model, GPU set) had been served before."""
    model: dict[str, str] = {}
    gpus: dict[str, tuple[str, ...]] = {}
    served: set[tuple[str, tuple[str, ...]]] = set()
    missed = []
    for e in events:
        if e["kind"] == "requester_created":
            model[e["requester"]] = e["model"]
        elif e["kind"] == "requester_scheduled":
            gpus[e["requester"]] = tuple(e["gpus"])
        elif e["kind"] == "bind":
            identity = (model[e["requester"]], gpus[e["requester"]])
            if e["path"] != "hot" and identity in served:
                missed.append(e["requester"])
            served.add(identity)
    return missed


def demo(**policy: object) -> Scenario:
    scenario = load_scenario(DEMO)
    return scenario.model_copy(update={"policy": scenario.policy.model_copy(update=policy)})


@pytest.mark.parametrize("seed", [7, 8, 9])
def test_fma_loses_no_hot_start_on_the_demo(seed: int) -> None:
    events = run_scenario(demo(actuation="fma"), seed).trace.events
    assert any(e["kind"] == "bind" and e["path"] == "hot" for e in events)
    assert misses_on_known_identities(events) == []


def test_a_node_short_of_launchers_does_lose_hot_starts() -> None:
    """The check can fail: with two launchers for eight GPUs, sleepers must be reclaimed for
    their ports, and later requesters on those GPUs start warm."""
    events = run_scenario(demo(actuation="fma", launchers_per_node_max=2), 9).trace.events
    assert misses_on_known_identities(events) != []
