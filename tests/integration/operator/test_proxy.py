"""The requester's TCP proxy on the real control plane: the operator points it at the bound
instance before it relays readiness — for requesters that ask (``proxy-port``), or for all
with ``--proxy-all`` — and a completion sent to the requester's Pod IP reaches the engine.

The twin of upstream's "Reverse Proxy Initialization and Forwarding" case: ``GET
/v1/proxy/config`` names the launcher's IP and the ISC's port, and traffic through the proxy
port is answered by the engine.
"""

from __future__ import annotations

import pytest

from fma.api.constants import ANN_PROXY_PORT, REQUESTER_PROXY_PORT, REQUESTER_SPI_PORT
from tests.integration.operator.harness import (
    IMAGE,
    World,
    events_about,
    is_ready,
    poll,
)

pytestmark = pytest.mark.integration

NODE = "gpu-node-0"
ENGINE_PORT = 8005
ASKS = {ANN_PROXY_PORT: str(REQUESTER_PROXY_PORT)}


def setup(world: World, *extra: str) -> None:
    world.launcher_config("lc1", max_instances=2)
    world.isc("isc1", port=ENGINE_PORT, model="smollm")
    world.population("lpp1", "lc1", 1, {"matchLabels": {"nvidia.com/gpu.present": "true"}})
    world.operator(*extra)


def proxy_config(world: World, requester: dict) -> tuple[int, dict]:
    ip = requester["status"]["podIP"]
    got = world.http.get(f"http://{ip}:{REQUESTER_SPI_PORT}/v1/proxy/config")
    return got.status_code, got.json()


def complete_through_proxy(world: World, requester: dict) -> dict:
    ip = requester["status"]["podIP"]
    answer = world.http.post(
        f"http://{ip}:{REQUESTER_PROXY_PORT}/v1/completions",
        json={"model": "smollm", "prompt": "Hello", "max_tokens": 3},
    )
    assert answer.status_code == 200, answer.text
    body: dict = answer.json()
    return body


def test_a_requester_that_asks_gets_its_proxy_and_one_that_does_not_gets_none(
    world: World,
) -> None:
    setup(world)
    world.replicaset("asks", isc="isc1", node=NODE, annotations=ASKS)
    world.replicaset("plain", isc="isc1", node=NODE)
    requester, launcher = world.served("asks")
    plain, _ = world.served("plain")

    status, target = proxy_config(world, requester)
    assert (status, target) == (200, {"address": launcher["status"]["podIP"], "port": ENGINE_PORT})
    body = complete_through_proxy(world, requester)
    assert body["choices"][0]["text"] == "tok0 tok1 tok2"  # the stub engine's own answer
    assert body["model"] == "smollm"

    assert proxy_config(world, plain)[0] == 404  # opt-in: nobody asked for its proxy


def test_proxy_all_configures_every_requester(world: World) -> None:
    setup(world, "--proxy-all")
    world.replicaset("plain", isc="isc1", node=NODE)
    requester, launcher = world.served("plain")
    status, target = proxy_config(world, requester)
    assert (status, target) == (200, {"address": launcher["status"]["podIP"], "port": ENGINE_PORT})
    assert complete_through_proxy(world, requester)["usage"]["completion_tokens"] == 3


def test_readiness_is_not_relayed_while_the_proxy_cannot_be_configured(world: World) -> None:
    """Another container of the requester's Pod holds the proxy port, so the requester's proxy
    cannot listen (its PUT answers 500): the instance serves, yet the requester stays unready,
    and an Event on it says why."""
    setup(world)
    template = world.requester_template("blocked", isc="isc1", node=NODE, annotations=ASKS)
    template["spec"]["containers"].append(
        {
            "name": "squatter",
            "image": IMAGE,
            "args": ["launcher", "stub-engine", "--port", str(REQUESTER_PROXY_PORT)],
        }
    )
    pod = {"apiVersion": "v1", "kind": "Pod", **template}
    pod["metadata"]["name"] = "blocked"
    world.core.create_namespaced_pod(world.namespace, pod)

    def told() -> list[dict] | None:
        about = events_about(world, "blocked")
        return [e for e in about if e["reason"] == "Invalid" and "proxy" in e["message"]] or None

    events = world.wait(told, "an Event saying the proxy cannot be configured")
    assert "cannot forward" in events[0]["message"], events[0]["message"]
    launcher = world.provider_of(world.pod("blocked") or {})
    assert launcher is not None  # bound, and its instance serves...
    instances = world.instances(launcher)
    assert len(instances) == 1 and instances[0]["status"] == "running"
    engine = world.http.get(f"http://{launcher['status']['podIP']}:{ENGINE_PORT}/health")
    assert engine.status_code == 200
    for _ in poll(3.0):  # ...yet the requester is never made ready
        requester = world.pod("blocked")
        assert requester is not None and not is_ready(requester)
        ip = requester["status"]["podIP"]
        assert world.http.get(f"http://{ip}:8080/ready").status_code == 503
    assert proxy_config(world, requester)[0] == 500
    ready = [e for e in world.operators[0].events() if e["kind"] == "ready"]
    assert ready == []
