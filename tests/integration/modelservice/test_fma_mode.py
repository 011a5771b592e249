"""FMA mode end to end: a ModelService whose decode role is served by requesters and launchers.

The stub sample is applied as a user would; ``fma operator run`` reconciles it (requester
Deployment, InferenceServerConfig, LauncherConfig, population policy) and, in the same
process, the dual-pods controller binds each requester to a stub instance in a launcher that
the pod runner really runs. Routing must select exactly the launchers that serve.
"""

from __future__ import annotations

from typing import Any

import pytest

from fma.api.constants import LABEL_DUAL
from tests.integration.modelservice.cluster import (
    apply_sample,
    get,
    names,
    operator,
    row_without_age,
    run,
    table,
)
from tests.integration.operator.harness import World, is_ready, labels

pytestmark = pytest.mark.integration

NAME = "facebook-opt-125m-fma"
REQUESTERS = "llm-d.ai/component=fma-requester"
TIMEOUT = 120.0


def requesters(world: World) -> list[dict[str, Any]]:
    return [p for p in world.pods(REQUESTERS) if not p["metadata"].get("deletionTimestamp")]


def served_by(world: World) -> set[str] | None:
    """The launchers bound to the live requesters, once every one is Ready and bound."""
    live = requesters(world)
    if not live or not all(is_ready(p) and LABEL_DUAL in labels(p) for p in live):
        return None
    return {labels(p)[LABEL_DUAL] for p in live}


def routed_to(world: World) -> set[str]:
    """The Pods the InferencePool selects (what the endpoint picker would route to)."""
    selector = get(world, "inferencepool", f"{NAME}-inference-pool")["spec"]["selector"]
    text = ",".join(f"{k}={v}" for k, v in selector.items())
    return {p["metadata"]["name"] for p in world.pods(text)}


def msvc_decode(world: World) -> tuple[str, str] | None:
    row = row_without_age(table(world, "msvc").get(NAME))
    return None if row is None else (row["DECODE READY"], row["DECODE AVAIL"])


def test_requesters_get_ready_through_launchers_and_routing_follows(
    routing_crds: None, world: World
) -> None:
    apply_sample(world, "opt125m-fma-stub")
    operator(world)
    world.wait(lambda: msvc_decode(world) == ("2/2", "2"), "two Ready requesters", TIMEOUT)
    assert f"{NAME}-decode" not in names(world, "deployment")  # replaced by requesters
    assert len(requesters(world)) == 2
    launchers = world.wait(lambda: served_by(world), "the requesters to be bound", TIMEOUT)
    for pod in requesters(world):
        assert pod["metadata"]["annotations"]["dual-pods.llm-d.ai/inference-server-config"] == (
            f"{NAME}-decode"
        )
        assert [c["name"] for c in pod["spec"]["containers"]] == ["inference-server"]

    # Routing selects exactly the launchers that serve, never a requester.
    world.wait(lambda: routed_to(world) == launchers, "routing to select the serving launchers")
    port = get(world, "inferencepool", f"{NAME}-inference-pool")["spec"]["targetPortNumber"]
    for name in launchers:
        launcher = world.pod(name)
        assert launcher is not None
        answer = world.http.get(f"http://{launcher['status']['podIP']}:{port}/v1/models")
        assert answer.status_code == 200
        assert answer.json()["data"][0]["id"] == "facebook/opt-125m"

    # One decode replica fewer: one requester goes, its instance sleeps and leaves routing.
    run(world, "patch", "msvc", NAME, "--type", "merge", "-p", '{"spec":{"decode":{"replicas":1}}}')
    world.wait(lambda: msvc_decode(world) == ("1/1", "1"), "one Ready requester", TIMEOUT)
    world.wait(lambda: len(requesters(world)) == 1 and served_by(world), "one bound requester")
    remaining = served_by(world)
    world.wait(lambda: routed_to(world) == remaining, "routing to follow the scale-down")

    # Deleting the ModelService takes everything with it: requesters, FMA's objects, and the
    # launchers (owned by their LauncherConfig).
    run(world, "delete", "msvc", NAME)
    fma_kinds = ("inferenceserverconfig", "launcherconfig", "launcherpopulationpolicy")

    def all_gone() -> bool:
        kinds_empty = all(not names(world, kind) for kind in fma_kinds)
        return kinds_empty and not world.pods(REQUESTERS) and not world.launchers()

    world.wait(all_gone, "the ModelService's objects and Pods to go", TIMEOUT)
