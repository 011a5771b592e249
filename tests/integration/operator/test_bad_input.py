"""Bad input on the real control plane: what the CRD schemas let through but FMA cannot use is
told on the object itself — a configuration object's ``status.errors`` and a requester's
``dual-pods.llm-d.ai/status`` annotation, each with one Warning Event naming the field — while
the operator keeps running and serves everyone else; a launcher or requester whose process
does not answer is asked again with back-off and reported with an Event.
"""

from __future__ import annotations

import json
import re

import pytest

from fma.api.constants import ANN_ADMIN_PORT, ANN_STATUS
from tests.integration.operator.harness import (
    IMAGE,
    World,
    annotations,
    events_about,
    is_ready,
    poll,
)

pytestmark = pytest.mark.integration

NODE = "gpu-node-0"
Obj = dict


def setup(world: World) -> None:
    world.launcher_config("lc1", max_instances=2)
    world.isc("isc1", port=8005, model="smollm")
    world.population("lpp1", "lc1", 1, {"matchLabels": {"nvidia.com/gpu.present": "true"}})


def warnings(world: World, name: str, reason: str) -> list[Obj]:
    return [
        e for e in events_about(world, name) if e["reason"] == reason and e["type"] == "Warning"
    ]


def told(world: World, name: str, reason: str, what: str) -> Obj:
    """Wait for one Warning Event ``reason`` on ``name``; it names ``what``."""
    event = world.wait(
        lambda: next(iter(warnings(world, name, reason)), None), f"{reason} on {name}"
    )
    assert what in event["message"], event["message"]
    return event


def config_errors(world: World, kind: str, name: str) -> list[str] | None:
    status = world.get_custom(kind, name).get("status") or {}
    return status.get("errors") or None


def requester_errors(world: World, rs: str) -> list[str] | None:
    live = world.requesters(rs)
    if len(live) != 1:
        return None
    text = annotations(live[0]).get(ANN_STATUS)
    return list(json.loads(text)["Errors"]) or None if text else None


def test_malformed_objects_are_told_on_themselves_and_the_rest_is_served(world: World) -> None:
    setup(world)
    # Each passes the CRD schema; each is wrong in one field FMA checks.
    world.isc("isc-port", port=8006, options="--port 9000")
    world.create_custom(
        "LauncherConfig",
        "lc-nameless",
        {
            "maxInstances": 1,
            "podTemplate": {"spec": {"containers": [{"name": "server", "image": IMAGE}]}},
        },
    )
    world.create_custom(
        "LauncherPopulationPolicy",
        "lpp-bounds",
        {
            "enhancedNodeSelector": {
                "labelSelector": {},
                "allocatableResources": {"memory": {"min": "lots"}},
            },
            "countForLauncher": [{"launcherConfigName": "lc1", "launcherCount": 3}],
        },
    )
    world.operator()
    world.replicaset("bad-isc", isc="isc-port", node=NODE)
    world.replicaset("no-isc", isc="isc-nowhere", node=NODE)
    world.replicaset("bad-patch", server_patch="spec: {{ .Nope }\n", node=NODE)
    world.replicaset("bad-port", isc="isc1", node=NODE, annotations={ANN_ADMIN_PORT: "eighty"})
    world.replicaset("good", isc="isc1", node=NODE)
    world.served("good")

    expected = {
        ("InferenceServerConfig", "isc-port"): "spec.modelServerConfig.options",
        ("LauncherConfig", "lc-nameless"): "spec.podTemplate.spec.containers",
        ("LauncherPopulationPolicy", "lpp-bounds"): "allocatableResources",
    }
    for (kind, name), field in expected.items():
        errors = world.wait(
            lambda k=kind, n=name: config_errors(world, k, n), f"{kind} {name} status"
        )
        assert any(field in e for e in errors), errors
        told(world, name, "ConfigurationProblem", field)

    for rs, what in (
        ("bad-isc", "InferenceServerConfig isc-port is malformed"),
        ("no-isc", "InferenceServerConfig isc-nowhere not found"),
        ("bad-patch", "dual-pods.llm-d.ai/server-patch"),
        ("bad-port", ANN_ADMIN_PORT),
    ):
        errors = world.wait(lambda r=rs: requester_errors(world, r), f"the status of {rs}")
        assert any(what in e for e in errors), errors
        [requester] = world.requesters(rs)
        told(world, requester["metadata"]["name"], "ServerProblem", what)

    # A launcher of the good LauncherConfig per node, and no more: the bad policy counts
    # nothing, the nameless LauncherConfig makes no Pod.
    assert sorted(len(world.launchers(n)) for n in world.cluster.nodes) == [1, 1]

    # Told once, not in a loop: the operator keeps running, the Events stay one each.
    counted = {name: len(events_about(world, name)) for _, name in expected}
    for _ in poll(4.0):
        pass
    assert {name: len(events_about(world, name)) for _, name in expected} == counted
    for rs in ("bad-isc", "no-isc", "bad-patch"):
        assert not any(is_ready(p) for p in world.requesters(rs))
        assert (
            len(warnings(world, world.requesters(rs)[0]["metadata"]["name"], "ServerProblem")) == 1
        )
    process = world.operators[0]
    assert process.running and process.starts == 1
    assert "Traceback" not in process.log_text()


def back_offs(log: str, pattern: str) -> list[float]:
    """The 'again in N s' delays of the log lines matching ``pattern``, in order."""
    return [
        float(m.group(1))
        for line in log.splitlines()
        if re.search(pattern, line) and (m := re.search(r"again in ([0-9.]+) s", line))
    ]


def test_an_unreachable_requester_and_launcher_are_asked_with_back_off_and_reported(
    world: World,
) -> None:
    # A launcher Pod whose process is a requester: it runs and is Ready and live (its probes
    # are the requester's /health), but nothing answers the launcher's port.
    world.create_custom(
        "LauncherConfig",
        "lc-mute",
        {
            "maxInstances": 1,
            "podTemplate": {
                "spec": {
                    "terminationGracePeriodSeconds": 1,
                    "containers": [
                        {
                            "name": "inference-server",
                            "image": IMAGE,
                            "args": ["requester", "serve"],
                            "readinessProbe": {
                                "httpGet": {"path": "/health", "port": 8080},
                                "periodSeconds": 1,
                            },
                            "livenessProbe": {"httpGet": {"path": "/health", "port": 8080}},
                        }
                    ],
                }
            },
        },
    )
    world.population("lpp-mute", "lc-mute", 1, {"matchLabels": {"kubernetes.io/hostname": NODE}})
    world.isc("isc1", lc="lc-mute", port=8005, model="smollm")
    # A requester Pod whose process is not a requester: its SPI port answers nothing.
    template = world.requester_template("mute", isc="isc1", node=NODE)
    template["spec"]["containers"][0]["args"] = ["launcher", "stub-engine", "--port", "9000"]
    del template["spec"]["containers"][0]["readinessProbe"]
    world.core.create_namespaced_pod(
        world.namespace,
        {
            "apiVersion": "v1",
            "kind": "Pod",
            **template,
            "metadata": {**template["metadata"], "name": "mute"},
        },
    )
    world.operator()

    [launcher] = world.wait(
        lambda: [p for p in world.launchers(NODE) if is_ready(p)] or None,
        "the mute launcher to run",
    )
    name = launcher["metadata"]["name"]
    told(world, name, "Unreachable", f"{launcher['status']['podIP']}:8001")
    told(world, "mute", "Unreachable", "/v1/dual-pods/accelerators")

    log = world.operators[0].log_text()
    # The launcher's client backs off by itself (ten tries, about 20 s) before a failure
    # reaches the operator's log; the requester's SPI is asked with the operator's back-off.
    assert back_offs(log, f"launcher {name} .*watch failed")
    delays = back_offs(log, "requester mute: asking")
    assert len(delays) >= 4, delays
    assert delays == sorted(delays) and delays[-1] > delays[0], delays
    for _ in poll(3.0):
        pass
    assert len(warnings(world, name, "Unreachable")) == 1
    assert len(warnings(world, "mute", "Unreachable")) == 1
    assert world.operators[0].running
