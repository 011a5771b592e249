"""Sleeper-aware placement on the test control plane, installed by the chart.

A model has sleepers on one node: two requesters of it pinned there are served (warm, by the
population's launcher) and scaled away, so their instances fall asleep. Six requesters of the
model are then created at once, with no node asked for. With ``placement.enabled`` the
operator has labelled the launcher with the model's InferenceServerConfig, its webhook has
given each new requester a preferred affinity toward it, and the kube-scheduler puts all six
on the sleepers' node. Without it there is neither label nor affinity, and the six land where
the scheduler's other preferences put them (printed, not judged: that is chance).
"""

from __future__ import annotations

from typing import Any

import pytest

from fma.adapters.k8s.placement import sleeper_label
from fma.api.constants import SLEEPER_LABEL_PREFIX
from tests.integration.chart import test_chart_install as installed
from tests.integration.chart.test_chart_install import LAUNCHER_SA, Release
from tests.integration.operator.harness import World, is_ready, labels

pytestmark = pytest.mark.integration

release = installed.release
"""The chart installed as the chart's own test installs it, with this module's values."""
world = installed.world

SLEEPERS_NODE = "gpu-node-0"
ISC = "isc1"
REQUESTERS = 6
SEEDS = 2


@pytest.fixture(params=[True, False], ids=["placement-on", "placement-off"])
def chart_values(request: pytest.FixtureRequest) -> dict[str, Any]:
    return {"placement": {"enabled": request.param}}


def _sleepers_on_one_node(world: World) -> list[str]:
    """Sleeping instances of ``ISC`` on ``SLEEPERS_NODE``, one in each launcher a seed
    requester was served by: those launchers' names."""
    world.launcher_config("lc1")
    template = {"podTemplate": {"spec": {"serviceAccountName": LAUNCHER_SA}}}
    world.patch_custom("LauncherConfig", "lc1", {"spec": template})
    world.isc(ISC, port=8005, model="smollm")
    world.population("lpp1", "lc1", 1, {"matchLabels": {"nvidia.com/gpu.present": "true"}})
    world.wait(
        lambda: all(any(is_ready(p) for p in world.launchers(n)) for n in world.cluster.nodes),
        "a Ready launcher on every node",
    )
    world.replicaset("seed", replicas=SEEDS, isc=ISC, node=SLEEPERS_NODE)

    def providers() -> list[str] | None:
        served = [r for r in world.requesters("seed") if is_ready(r)]
        found = [world.provider_of(r) for r in served]
        names = [p["metadata"]["name"] for p in found if p is not None]
        return names if len(names) == SEEDS else None

    launchers = world.wait(providers, "the seed requesters to be served")
    world.scale("seed", 0)
    world.gone("seed")
    for name in launchers:
        world.unbound(name)
    return launchers


def _node_of_each(world: World, rs: str) -> list[str]:
    def placed() -> list[str] | None:
        nodes = [str(r["spec"].get("nodeName") or "") for r in world.requesters(rs)]
        return nodes if len(nodes) == REQUESTERS and all(nodes) else None

    return world.wait(placed, f"the {REQUESTERS} requesters of {rs} to be scheduled")


def test_requesters_land_where_their_sleepers_are(
    release: Release, world: World, chart_values: dict[str, Any]
) -> None:
    enabled = chart_values["placement"]["enabled"]
    holding = _sleepers_on_one_node(world)
    label = sleeper_label(ISC)
    if enabled:
        world.wait(
            lambda: all(labels(world.pod(n) or {}).get(label) == "true" for n in holding),
            f"{', '.join(holding)} to be labelled {label}",
        )
    world.replicaset("six", replicas=REQUESTERS, isc=ISC)
    nodes = _node_of_each(world, "six")
    on_node = nodes.count(SLEEPERS_NODE)
    print(f"placement {'on' if enabled else 'off'}: {on_node} of {REQUESTERS} on {SLEEPERS_NODE}")

    affinities = [r["spec"].get("affinity") for r in world.requesters("six")]
    sleeper_labels = [
        key for p in world.launchers() for key in labels(p) if key.startswith(SLEEPER_LABEL_PREFIX)
    ]
    if enabled:
        assert all(affinities), affinities  # the API server called the webhook for each
        assert nodes == [SLEEPERS_NODE] * REQUESTERS, nodes
    else:
        assert affinities == [None] * REQUESTERS
        assert sleeper_labels == []
