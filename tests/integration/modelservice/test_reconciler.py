"""The reconciler's behaviours on the real control plane: replicas owned or handed to an
autoscaler, children no longer rendered pruned, bad input reported (a condition and an Event,
nothing created), and a BaseConfig that appears later picked up at once."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.modelservice.cluster import (
    SAMPLES,
    apply_sample,
    condition,
    get,
    names,
    operator,
    row_without_age,
    run,
    table,
)
from tests.integration.operator.harness import World, poll

pytestmark = pytest.mark.integration

PLAIN = "facebook-opt-125m"
DECODE = f"{PLAIN}-decode"


def decode_ready(world: World) -> str | None:
    row = row_without_age(table(world, "msvc").get(PLAIN))
    return None if row is None else row["DECODE READY"]


def replicas(world: World) -> int:
    return int(get(world, "deployment", DECODE)["spec"]["replicas"])


def patch(world: World, spec: dict[str, Any]) -> None:
    import json

    run(world, "patch", "msvc", PLAIN, "--type", "merge", "-p", json.dumps({"spec": spec}))


def reconciled(world: World, name: str) -> dict[str, Any] | None:
    return condition(get(world, "msvc", name), "Reconciled")


def test_replicas_are_the_modelservices_unless_scaling_is_decoupled(
    routing_crds: None, world: World
) -> None:
    apply_sample(world, "opt125m-plain")
    operator(world)
    world.wait(lambda: decode_ready(world) == "1/1", "the decode Deployment")

    # Owned: a scale from outside is undone.
    run(world, "scale", "deployment", DECODE, "--replicas", "3")
    world.wait(lambda: replicas(world) == 1, "the ModelService's replicas to be restored")

    # Decoupled: an autoscaler's replicas stay, and the status follows them.
    patch(world, {"decoupleScaling": True})
    world.wait(
        lambda: get(world, "deployment", DECODE)["metadata"]["annotations"].get(
            "llm-d.ai/decouple-scaling"
        ),
        "the Deployment to be marked decoupled",
    )
    run(world, "scale", "deployment", DECODE, "--replicas", "3")
    world.wait(lambda: decode_ready(world) == "3/3", "the status to follow the autoscaler")
    assert table(world, "msvc")[PLAIN]["DECOUPLE SCALING"] == "true"
    patch(world, {"decode": {"replicas": 2}})  # a change of the spec does not take them back
    for _ in poll(3):
        assert replicas(world) == 3

    # Coupled again: the ModelService's replicas apply.
    patch(world, {"decoupleScaling": False})
    world.wait(lambda: decode_ready(world) == "2/2", "the ModelService's replicas again")


def test_children_no_longer_rendered_are_pruned(routing_crds: None, world: World) -> None:
    apply_sample(world, "opt125m-plain")
    operator(world)
    route = f"{PLAIN}-http-route"
    patch(world, {"routing": {"gatewayRefs": [{"name": "inference-gateway"}]}})
    world.wait(lambda: route in names(world, "httproute"), "the HTTPRoute of the gatewayRefs")
    parents = get(world, "httproute", route)["spec"]["parentRefs"]
    assert [p["name"] for p in parents] == ["inference-gateway"]
    patch(world, {"routing": {"gatewayRefs": None}})
    world.wait(lambda: route not in names(world, "httproute"), "the HTTPRoute to be pruned")
    assert DECODE in names(world, "deployment")  # what is still rendered stays


def test_bad_input_is_a_condition_and_an_event_and_creates_nothing(
    routing_crds: None, world: World
) -> None:
    apply_sample(world, "opt125m-plain")
    patch(world, {"decode": {"containers": [{"name": "vllm", "args": ["{{ .HFModelNme }}"]}]}})
    apply_sample(world, "opt125m-pd")  # has an EPP, but the operator is given no ClusterRole
    world.operator()

    def reason(name: str) -> str | None:
        found = reconciled(world, name)
        return None if found is None or found["status"] != "False" else str(found["reason"])

    world.wait(lambda: reason(PLAIN) == "InvalidSpec", "the template error to be reported")
    message = str(reconciled(world, PLAIN)["message"])  # type: ignore[index]
    assert "spec.decode.containers[0].args[0]" in message and "HFModelNme" in message
    nixl = "facebook-opt-125m-nixl"
    world.wait(lambda: reason(nixl) == "InvalidOption", "the missing ClusterRole to be reported")
    assert "--epp-cluster-role" in str(reconciled(world, nixl)["message"])  # type: ignore[index]
    events = get(world, "events", "--field-selector", "type=Warning")["items"]
    reported = {(e["involvedObject"]["name"], e["reason"]) for e in events}
    assert {(PLAIN, "InvalidSpec"), (nixl, "InvalidOption")} <= reported
    assert not names(world, "deployment")  # nothing made from input that cannot be rendered


def test_a_base_config_created_later_is_used(routing_crds: None, world: World) -> None:
    apply_sample(world, "opt125m-plain", base=False)
    operator(world)

    def reason() -> str | None:
        found = reconciled(world, PLAIN)
        return None if found is None else str(found["reason"])

    world.wait(lambda: reason() == "BaseConfigNotFound", "the missing BaseConfig to be reported")
    run(world, "apply", "-f", str(SAMPLES / "opt125m-plain-baseconfig.yaml"))
    # Well within the reconciler's 30 s retry: the ConfigMap's watch event triggers it.
    world.wait(lambda: decode_ready(world) == "1/1", "the decode Deployment", timeout=20)
    assert reason() == "Applied"


def test_another_epp_cluster_role_replaces_the_role_binding(
    routing_crds: None, world: World
) -> None:
    apply_sample(world, "opt125m-pd")
    first = operator(world)
    binding = "facebook-opt-125m-nixl-epp-rolebinding"

    def role() -> str | None:
        row = table(world, "rolebinding").get(binding)
        return None if row is None else row["ROLE"]

    world.wait(lambda: role() == "ClusterRole/pod-read", "the EPP's RoleBinding")
    first.stop()
    # roleRef is immutable: the binding is replaced, not patched.
    world.operator("--epp-cluster-role", "endpoint-picker", name="operator-2")
    world.wait(lambda: role() == "ClusterRole/endpoint-picker", "the RoleBinding replaced")
    nixl = get(world, "msvc", "facebook-opt-125m-nixl")
    assert (condition(nixl, "Reconciled") or {}).get("status") == "True"
