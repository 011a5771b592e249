"""Actuation metrics on the real control plane: a cold-launcher, a warm and a hot actuation,
measured by ``fma bench actuation --namespace`` watching beside them, as a user would run it.

The operator, the launcher and the requesters run as processes at their Pod IPs (the pod
runner), the engines are the stub. The same run is measured three more ways, which must agree:
from the operator's trace, from the namespace alone afterwards (the engine's own log says the
last requester was woken), and by llm-d-benchmark's rules for the controller's log.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fma.api.constants import CONTAINER_INFERENCE_SERVER, LABEL_DUAL, LABEL_INSTANCE, LABEL_SLEEPING
from tests.integration.operator.harness import World, labels
from tests.unit.bench.test_actuation_harness import dpc_records

pytestmark = pytest.mark.integration

NODE = "gpu-node-0"
BENCH_TIMEOUT_S = 240


def bench(world: World, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "KUBECONFIG": str(world.cluster.kubeconfig)}
    env.pop("KUBERNETES_SERVICE_HOST", None)
    argv = [sys.executable, "-m", "fma", "bench", "actuation", "--namespace", world.namespace]
    return subprocess.Popen([*argv, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finished(process: subprocess.Popen[bytes], timeout: float) -> dict[str, Any]:
    out, err = process.communicate(timeout=timeout)
    assert process.returncode == 0, err.decode()
    report: dict[str, Any] = json.loads(out)
    return report


def asleep_and_unbound(world: World, name: str) -> bool:
    pod = world.pod(name)
    return (
        pod is not None
        and labels(pod).get(LABEL_SLEEPING) == "true"
        and LABEL_DUAL not in labels(pod)
    )


def scale_to_zero(world: World, rs: str, launcher: str) -> None:
    world.scale(rs, 0)
    world.gone(rs)
    world.wait(lambda: asleep_and_unbound(world, launcher), f"{launcher} to sleep, unbound")


def renamed_container(world: World, rs: str, isc: str, name: str) -> None:
    """A ReplicaSet like ``world.replicaset``, its requester's container named ``name``."""
    template = world.requester_template(rs, isc=isc, node=NODE)
    template["spec"]["containers"][0]["name"] = name
    body: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": rs},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": rs}}, "template": template},
    }
    world.apps.create_namespaced_replica_set(world.namespace, body)


def test_each_path_is_classified_from_the_live_cluster(world: World, tmp_path: Path) -> None:
    world.launcher_config("lc1", max_instances=2)
    world.isc("isc1", port=8005, model="smollm")
    world.isc("isc2", port=8006, model="qwen")
    operator = world.operator()
    report_path = tmp_path / "actuation.json"
    watching = bench(
        world,
        *("--watch", str(BENCH_TIMEOUT_S), "--until-ready", "3"),
        *("--operator-log", str(operator.log), "--out", str(report_path)),
    )
    try:
        # cold_launcher: no launcher exists, the controller makes one for the requester.
        world.replicaset("rs1", isc="isc1", node=NODE)
        first, launcher = world.served("rs1")
        name = launcher["metadata"]["name"]
        scale_to_zero(world, "rs1", name)
        # warm: that launcher makes a second instance; this requester's container is misnamed.
        renamed_container(world, "rs2", "isc2", "requester")
        second, same = world.served("rs2")
        assert same["metadata"]["name"] == name
        scale_to_zero(world, "rs2", name)
        # hot: the first model's sleeping instance is woken.
        world.scale("rs1", 1)
        third, same = world.served("rs1")
        assert same["metadata"]["name"] == name
        report = finished(watching, BENCH_TIMEOUT_S)
    finally:
        if watching.poll() is None:
            watching.kill()

    requesters = [first, second, third]
    names = [r["metadata"]["name"] for r in requesters]
    (it,) = report["iterations"]
    infos = {i["requester_info"]["name"]: i for i in it["launcher_infos"]}
    assert set(names) <= set(infos)
    conditions = [infos[n]["actuation_condition"] for n in names]
    assert conditions == ["T_cold_launcher", "T_warm", "T_hot"]
    assert [infos[n]["controller_path"] for n in names] == ["cold_launcher", "warm", "hot"]
    assert (it["actuations"], it["disagreements"], it["unclassified"]) == (3, 0, 0)
    assert it["hot_hit_rate"] == it["warm_hit_rate"] == it["cold_launcher_hit_rate"]
    assert it["cold_launcher_hit_rate"] == pytest.approx(1 / 3, abs=1e-6)
    cold, warm, hot = (infos[n] for n in names)
    assert cold["t_cold_launcher"] >= 0 and cold["baseline"] == "launcher_creation"
    assert warm["t_instance_create"] >= 0 and hot["t_wake"] >= 0
    exact = [cold["exact"]["t_cold_launcher"], warm["exact"]["t_instance_create"]]
    assert all(t is not None and t > 0 for t in exact), exact
    assert 0 < hot["exact"]["t_wake"] <= hot["t_wake"] + 1  # the upper bound, to the second
    assert all(i["launcher_node"] == NODE and i["name"] == name for i in (cold, warm, hot))
    assert report_path.exists()

    # The operator's trace tells the same.
    traced = subprocess.run(
        [sys.executable, "-m", "fma", "bench", "actuation", "--trace", str(operator.trace)],
        capture_output=True,
        check=True,
    )
    (from_trace,) = json.loads(traced.stdout)["iterations"]
    by_name = {
        i["requester_info"]["name"]: i["actuation_condition"] for i in from_trace["launcher_infos"]
    }
    assert [by_name[n] for n in names] == conditions

    # Afterwards, from the namespace alone: only the hot requester is left, and its engine's log
    # (read through the launcher) shows the wake.
    alone = finished(bench(world), 60)["iterations"][0]["launcher_infos"]
    assert [(i["requester_info"]["name"], i["actuation_condition"]) for i in alone] == [
        (names[2], "T_hot")
    ]

    # The launcher lists the instance just woken last (the harness takes the last one).
    listed = world.instances(same)
    assert listed[-1]["instance_id"] == labels(third)[LABEL_INSTANCE]
    assert len(listed) == 2

    # The controller's log, by llm-d-benchmark's rules, at the default verbosity.
    records = dpc_records(operator.log_text().splitlines())
    assert {"launcher_create_start_time", "relay_readiness_time"} <= records[names[0]].keys()
    assert {"instance_create_start_time", "relay_readiness_time"} <= records[names[1]].keys()
    assert {"wake_start_time", "relay_readiness_time"} <= records[names[2]].keys()

    # A requester container not named inference-server was served, and told.
    events = world.core.list_namespaced_event(world.namespace).items
    told = [e for e in events if e.reason == "ContainerName"]
    assert [e.involved_object.name for e in told] == [names[1]]
    message = told[0].message or ""
    assert "'requester'" in message and CONTAINER_INFERENCE_SERVER in message
