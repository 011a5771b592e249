"""Seed 004's three scenarios on the real control plane, with ``fma operator run`` reconciling.

Each applies a sample as its README does (the BaseConfig, then the ModelService) and waits for
the expected cluster state the seed lists: the Deployments Ready (their Pods get KWOK's fake
lifecycle), the Services, routing objects and RBAC, and ``kubectl get modelservice`` with the
right printer columns.
"""

from __future__ import annotations

import pytest

from tests.integration.modelservice.cluster import (
    apply_sample,
    condition,
    get,
    names,
    operator,
    row_without_age,
    run,
    table,
)
from tests.integration.operator.harness import World

pytestmark = pytest.mark.integration

PLAIN = "facebook-opt-125m"
NIXL = "facebook-opt-125m-nixl"
MSVC_COLUMNS = [
    "NAME",
    "DECOUPLE SCALING",
    "PREFILL READY",
    "PREFILL AVAIL",
    "DECODE READY",
    "DECODE AVAIL",
    "AGE",
]


def msvc_row(world: World, name: str) -> dict[str, str] | None:
    return row_without_age(table(world, "modelservice").get(name))


def ready_deployments(world: World) -> dict[str, str]:
    return {n: row["READY"] for n, row in table(world, "deployment").items()}


def test_scenario_1_plain_decode(routing_crds: None, world: World) -> None:
    apply_sample(world, "opt125m-plain")
    operator(world)
    expected = {
        "NAME": PLAIN,
        "DECOUPLE SCALING": "false",
        "PREFILL READY": "",
        "PREFILL AVAIL": "0",
        "DECODE READY": "1/1",
        "DECODE AVAIL": "1",
    }
    world.wait(lambda: msvc_row(world, PLAIN) == expected, "the ModelService to be ready")
    assert list(table(world, "msvc")[PLAIN]) == MSVC_COLUMNS  # the short name, the columns
    assert ready_deployments(world) == {f"{PLAIN}-decode": "1/1"}
    assert f"{PLAIN}-service-decode" in names(world, "service")
    assert f"{PLAIN}-sa" in names(world, "serviceaccount")
    msvc = get(world, "msvc", PLAIN)
    reconciled, ready = condition(msvc, "Reconciled"), condition(msvc, "Ready")
    assert reconciled is not None and reconciled["status"] == "True", reconciled
    assert ready is not None and ready["status"] == "True", ready
    assert condition(msvc, "DecodeAvailable") is not None  # the Deployment's, mirrored
    assert msvc["status"]["decodeDeploymentRef"] == f"{PLAIN}-decode"
    assert msvc["status"]["decodeServiceAccountRef"] == f"{PLAIN}-sa"
    for absent in ("prefillDeploymentRef", "httpRouteRef", "inferencePoolRef", "eppRoleBinding"):
        assert absent not in msvc["status"]  # nothing of the kind was rendered


def test_scenarios_2_and_3_pd_with_routing_then_xpyd(routing_crds: None, world: World) -> None:
    apply_sample(world, "opt125m-pd")
    operator(world)
    expected = {
        "NAME": NIXL,
        "DECOUPLE SCALING": "false",
        "PREFILL READY": "1/1",
        "PREFILL AVAIL": "1",
        "DECODE READY": "1/1",
        "DECODE AVAIL": "1",
    }
    world.wait(lambda: msvc_row(world, NIXL) == expected, "scenario 2's ModelService")
    three = {f"{NIXL}-decode": "1/1", f"{NIXL}-epp": "1/1", f"{NIXL}-prefill": "1/1"}
    world.wait(lambda: ready_deployments(world) == three, "the three Deployments to be Ready")
    labels = get(world, "deployment", f"{NIXL}-decode")["metadata"]["labels"]
    assert labels == {
        "llm-d.ai/inferenceServing": "true",
        "llm-d.ai/model": "facebook-opt-125m",
        "llm-d.ai/role": "decode",
    }
    services = table(world, "service")
    assert services[f"{NIXL}-epp-service"]["TYPE"] == "ClusterIP"
    assert services[f"{NIXL}-epp-service"]["PORT(S)"] == "9002/TCP"
    assert f"{NIXL}-inference-pool" in table(world, "inferencepool")
    model = table(world, "inferencemodel")[NIXL]
    assert (model["MODEL NAME"], model["INFERENCE POOL"]) == (
        "facebook/opt-125m",
        f"{NIXL}-inference-pool",
    )
    assert {f"{NIXL}-epp-sa", f"{NIXL}-sa"} <= names(world, "serviceaccount")
    epp = get(world, "deployment", f"{NIXL}-epp")
    assert epp["spec"]["template"]["spec"]["serviceAccountName"] == f"{NIXL}-epp-sa"
    binding = table(world, "rolebinding")[f"{NIXL}-epp-rolebinding"]
    assert binding["ROLE"] == "ClusterRole/pod-read"
    assert f"{NIXL}-http-route" in names(world, "httproute")

    # Scenario 3: the same ModelService with two decode replicas, re-applied.
    apply_sample(world, "opt125m-xpyd", base=False)
    world.wait(
        lambda: ready_deployments(world) == {**three, f"{NIXL}-decode": "2/2"},
        "the decode Deployment to scale to 2",
    )
    xpyd = {**expected, "DECODE READY": "2/2", "DECODE AVAIL": "2"}
    world.wait(lambda: msvc_row(world, NIXL) == xpyd, "scenario 3's ModelService")

    # Deletion: every child goes with the ModelService (owner references).
    children = {
        "deployment": set(three),
        "service": {f"{NIXL}-epp-service"},
        "serviceaccount": {f"{NIXL}-sa", f"{NIXL}-epp-sa"},
        "rolebinding": {f"{NIXL}-epp-rolebinding"},
        "inferencepool": {f"{NIXL}-inference-pool"},
        "inferencemodel": {NIXL},
        "httproute": {f"{NIXL}-http-route"},
    }
    run(world, "delete", "modelservice", NIXL)
    world.wait(
        lambda: all(not (names(world, kind) & listed) for kind, listed in children.items()),
        "the children to be garbage-collected",
    )
