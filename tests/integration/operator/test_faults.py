"""Faults on the real control plane: the operator, a launcher, an engine or a node lost.

The operator runs as a process, launcher and requester processes run at their Pod IPs, and
each fault is what it would be in production: the operator SIGKILLed in the middle of
actuations, a launcher's or an engine's process SIGKILLed, a Node object deleted. Afterwards
everything converges with nothing duplicated. The last case checks the readiness a user sees:
a requester is Ready when its own probe passes, and that happens only once the operator has
relayed its provider's readiness.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections import Counter
from datetime import datetime

import pytest

from fma.api.constants import (
    ANN_ACTUATED,
    ANN_INFERENCE_SERVER_CONFIG,
    ANN_INSTANCE_ID,
    LABEL_DUAL,
)
from tests.integration.operator.harness import (
    Obj,
    World,
    annotations,
    child_pids,
    container_pid,
    is_ready,
    labels,
    pair_moved_off_its_node,
    pod_node,
)

pytestmark = pytest.mark.integration

SLOW = "--stub-start-s 3 --stub-wake-s 3"
"""Engine latencies long enough that a start or a wake is surely in flight when asked."""


def launchers_everywhere(world: World, *, options: str = "", max_instances: int = 2) -> None:
    """One LauncherConfig, three ISCs on ports 8005-8007, one launcher kept per GPU node, and
    the operator; returns once those launchers are Ready."""
    world.launcher_config("lc1", max_instances=max_instances)
    for n, port in ((1, 8005), (2, 8006), (3, 8007)):
        world.isc(f"isc{n}", port=port, model=f"model-{n}", options=options)
    world.population("lpp1", "lc1", 1)
    world.operator()
    world.wait(
        lambda: all(any(is_ready(p) for p in world.launchers(n)) for n in world.cluster.nodes),
        "a Ready launcher on every node",
    )


def name(pod: Obj) -> str:
    return str(pod["metadata"]["name"])


def uid(pod: Obj) -> str:
    return str(pod["metadata"]["uid"])


def traced(world: World, kind: str, **ids: str) -> list[Obj]:
    """The trace events of ``kind`` (of every operator of the test) with these ids."""
    return [
        e
        for p in world.operators
        for e in p.events()
        if e["kind"] == kind and all(e.get(k) == v for k, v in ids.items())
    ]


def assert_nothing_duplicated(world: World) -> None:
    """Each live requester has one provider, each launcher one instance per ISC and no more
    than its cap, and no instance is listed twice."""
    pods = world.pods()
    requesters = [p for p in pods if ANN_INFERENCE_SERVER_CONFIG in annotations(p)]
    providers = Counter(labels(p).get(LABEL_DUAL) for p in pods if p not in requesters)
    live = [name(r) for r in requesters if not r["metadata"].get("deletionTimestamp")]
    assert all(providers[r] == 1 for r in live), (live, providers)
    for launcher in world.launchers():
        if launcher["metadata"].get("deletionTimestamp") or not is_ready(launcher):
            continue
        listed = world.instances(launcher)
        iscs = [i["annotations"]["isc-name"] for i in listed]
        assert len(iscs) == len(set(iscs)) <= 2, (name(launcher), listed)


def test_operator_killed_in_the_middle_of_actuations_converges(world: World) -> None:
    launchers_everywhere(world, options=SLOW)
    world.replicaset("hot", isc="isc1", node="gpu-node-0")
    _, sleeper = world.served("hot")
    world.scale("hot", 0)
    world.gone("hot")
    world.unbound(name(sleeper))
    operator = world.operators[0]
    # In flight together: a wake (3 s), an instance start (3 s) on gpu-node-1, and on
    # gpu-node-0, whose launcher the wake took, a launcher made for a third requester.
    world.scale("hot", 1)
    world.wait(lambda: traced(world, "instance_waking"), "the wake to start")
    world.replicaset("warm", isc="isc2", node="gpu-node-1")
    world.replicaset("more", isc="isc3", node="gpu-node-0")
    starts = len(traced(world, "instance_starting"))
    world.wait(
        lambda: len(traced(world, "instance_starting")) > starts,
        "an instance start in flight",
    )
    operator.proc.send_signal(signal.SIGKILL)  # type: ignore[union-attr]
    operator.proc.wait(10)  # type: ignore[union-attr]
    in_flight = {e["kind"] for e in operator.events()[-6:]}
    operator.start()
    served = {rs: world.served(rs) for rs in ("hot", "warm", "more")}
    assert name(served["hot"][1]) == name(sleeper)
    assert annotations(served["hot"][1])[ANN_INSTANCE_ID] in {
        i["instance_id"] for i in world.instances(sleeper)
    }
    world.wait(
        lambda: len(world.launchers("gpu-node-0")) == 2 and len(world.launchers("gpu-node-1")) == 1,
        "no launcher left over",
    )
    assert_nothing_duplicated(world)
    for rs, (requester, _) in served.items():
        assert annotations(requester)[ANN_ACTUATED].split(" ")[0] in ("hot", "warm"), rs
        assert len(traced(world, "actuation", requester=uid(requester))) <= 1, rs
    assert len(traced(world, "relist")) == 2, in_flight


def test_a_killed_launcher_process_restarts_and_its_requester_is_served_again(
    world: World,
) -> None:
    launchers_everywhere(world)
    world.replicaset("rs1", isc="isc1", node="gpu-node-0")
    first, launcher = world.served("rs1")
    pid = container_pid(world, launcher)
    assert pid is not None
    engines = child_pids(pid)
    assert engines, "the launcher's instance runs as its child"
    os.kill(pid, signal.SIGKILL)
    second, provider = world.served_anew("rs1", first)
    assert not any(os.path.exists(f"/proc/{p}") for p in engines)  # the engine died with it
    restarted = world.pod(name(launcher))
    assert restarted is not None
    assert restarted["status"]["containerStatuses"][0]["restartCount"] >= 1
    deleted = traced(world, "requester_deleting", requester=uid(first))
    assert len(deleted) == 1 and deleted[0]["by"] == "controller"
    assert pod_node(provider) == "gpu-node-0" and is_ready(second)
    assert_nothing_duplicated(world)


def test_a_crashed_instance_is_cleared_and_its_requester_served_again(world: World) -> None:
    launchers_everywhere(world)
    world.replicaset("rs1", isc="isc1", node="gpu-node-0")
    first, launcher = world.served("rs1")
    instance = annotations(launcher)[ANN_INSTANCE_ID]
    pid = container_pid(world, launcher)
    assert pid is not None
    (engine,) = child_pids(pid)
    os.kill(engine, signal.SIGKILL)
    second, provider = world.served_anew("rs1", first)
    deleted = traced(world, "requester_deleting", requester=uid(first))
    assert len(deleted) == 1 and deleted[0]["by"] == "controller"
    assert traced(world, "instance_stopped", instance=instance)
    # The stopped instance is deleted from its launcher, not kept.
    world.wait(
        lambda: all(
            i["status"] == "running"
            for p in world.launchers()
            if is_ready(p)
            for i in world.instances(p)
        ),
        "no stopped instance left in any launcher",
    )
    assert container_pid(world, launcher) == pid  # the launcher itself kept running
    assert is_ready(second) and pod_node(provider) == "gpu-node-0"
    assert_nothing_duplicated(world)


def test_a_deleted_node_moves_the_requester_to_a_launcher_elsewhere(world: World) -> None:
    launchers_everywhere(world)
    world.replicaset("rs1", isc="isc1")
    first, launcher = world.served("rs1")
    with pair_moved_off_its_node(world, "rs1", first, launcher):
        assert not world.launchers(pod_node(first))  # none made for a node that is not there
        assert_nothing_duplicated(world)


def kubectl_ready(world: World, pod: str) -> str | None:
    """The READY column ``kubectl get pods`` shows for ``pod`` (None: not listed)."""
    proc = subprocess.run(
        [str(world.cluster.kubectl), "get", "pods", "-n", world.namespace, "--no-headers"],
        env=world.cluster.env(),
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    for line in proc.stdout.splitlines():
        fields = line.split()
        if fields and fields[0] == pod:
            return fields[1]
    return None


def ready_condition(pod: Obj) -> Obj:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return next(c for c in conditions if c["type"] == "Ready")


def test_the_readiness_a_user_sees_is_the_requesters_own_probe_as_relayed(world: World) -> None:
    launchers_everywhere(world, options=SLOW)
    world.replicaset("rs1", isc="isc1", node="gpu-node-0")

    def starting() -> Obj | None:
        live = world.requesters("rs1")
        if live and traced(world, "instance_starting"):
            return live[0]
        return None

    requester = world.wait(starting, "rs1's instance to be starting")
    # Its container runs and its probe is answered, but the engine is still loading (3 s).
    assert kubectl_ready(world, name(requester)) == "0/1"
    assert not traced(world, "ready", requester=uid(requester))
    assert ready_condition(world.pod(name(requester)) or {})["status"] == "False"
    served, launcher = world.served("rs1")
    assert uid(served) == uid(requester)
    assert kubectl_ready(world, name(requester)) == "1/1"
    (relay,) = traced(world, "ready", requester=uid(requester))[:1]
    became_ready = datetime.fromisoformat(ready_condition(served)["lastTransitionTime"])
    assert became_ready.timestamp() >= int(relay["t"])  # Ready only after the relay (to 1 s)

    ip, instance = launcher["status"]["podIP"], annotations(launcher)[ANN_INSTANCE_ID]
    world.http.delete(f"http://{ip}:8001/v2/vllm/instances/{instance}").raise_for_status()

    def not_ready() -> bool:
        pod = world.pod(name(requester))
        return pod is None or ready_condition(pod)["status"] == "False"

    world.wait(not_ready, "rs1's requester not Ready any more")
    assert kubectl_ready(world, name(requester)) in (None, "0/1")
    unready = traced(world, "unready", requester=uid(requester))
    deleting = traced(world, "requester_deleting", requester=uid(requester))
    assert unready and deleting and unready[0]["t"] <= deleting[0]["t"]
