"""Upstream's milestone-3 end-to-end suite (launchers), on the real control plane.

The twin of ``tests/unit/sim/test_upstream_e2e_launcher.py``: the same cases, by the same
names, asserting what upstream asserts — here with the operator as a process, launcher and
requester processes run by the pod runner at their Pod IPs, and the stub engine. Three ISCs
share one LauncherConfig with ``maxInstances: 2``; a population policy keeps one launcher on
each GPU node. Requesters are pinned to one node, as upstream's GPU pin, and the pod runner
gives the lowest free GPU, so a replacement gets the same GPU back.
"""

from __future__ import annotations

import pytest

from fma.api.constants import LABEL_SLEEPING
from tests.integration.operator.harness import (
    World,
    annotations,
    gpus_of,
    is_ready,
    labels,
    pod_node,
)

pytestmark = pytest.mark.integration

NODE = "gpu-node-0"
ROUTING = {"llm-d.ai/model": "smollm"}
TEMPLATE_LABELS = {"team": "serving"}
TEMPLATE_ANNOTATIONS = {"example.com/owner": "serving"}


def setup(world: World, *, per_node: int = 1) -> None:
    world.launcher_config(
        "lc1", max_instances=2, labels=TEMPLATE_LABELS, annotations=TEMPLATE_ANNOTATIONS
    )
    world.isc("isc1", port=8005, model="smollm", labels=ROUTING)
    world.isc("isc2", port=8006, model="qwen")
    world.isc("isc3", port=8007, model="tinyllama")
    world.population("lpp1", "lc1", per_node, {"matchLabels": {"nvidia.com/gpu.present": "true"}})
    world.operator()
    world.wait(
        lambda: all(
            len([p for p in world.launchers(n) if is_ready(p)]) >= per_node
            for n in world.cluster.nodes
        ),
        "the population's launchers to be Ready",
    )


def test_2_basic_launcher_creation_and_binding(world: World) -> None:
    setup(world)
    assert all(len(world.launchers(n)) >= 1 for n in world.cluster.nodes)
    world.replicaset("rs1", isc="isc1", node=NODE)
    requester, launcher = world.served("rs1")
    assert pod_node(launcher) == pod_node(requester) == NODE
    assert labels(launcher).items() >= ROUTING.items()  # the ISC's routing metadata
    assert labels(launcher).items() >= TEMPLATE_LABELS.items()  # the LC template's
    assert annotations(launcher).items() >= TEMPLATE_ANNOTATIONS.items()
    assert labels(launcher)[LABEL_SLEEPING] == "false"
    assert gpus_of(requester) == [f"GPU-{NODE}-0"]
    paths = [e["path"] for e in world.operators[0].events() if e["kind"] == "actuation"]
    assert paths == ["warm"]  # the population made the launcher ahead


def test_6_wake_up_fast_path_binds_the_same_launcher(world: World) -> None:
    setup(world)
    world.replicaset("rs1", isc="isc1", node=NODE)
    requester, launcher = world.served("rs1")
    gpus = gpus_of(requester)
    world.scale("rs1", 0)
    world.gone("rs1")
    name = launcher["metadata"]["name"]

    def asleep_and_unbound() -> bool:
        pod = world.pod(name)
        return (
            pod is not None
            and labels(pod).get(LABEL_SLEEPING) == "true"
            and "dual-pods.llm-d.ai/dual" not in labels(pod)
        )

    world.wait(asleep_and_unbound, "the launcher to be unbound and asleep")
    idle = world.pod(name)
    assert idle is not None
    assert not labels(idle).items() & ROUTING.items()  # routing metadata taken off
    assert labels(idle).items() >= TEMPLATE_LABELS.items()  # the template's kept
    world.scale("rs1", 1)
    again, same = world.served("rs1")
    assert same["metadata"]["name"] == name
    assert gpus_of(again) == gpus
    assert labels(same).items() >= ROUTING.items()
    paths = [e["path"] for e in world.operators[0].events() if e["kind"] == "actuation"]
    assert paths == ["warm", "hot"]
