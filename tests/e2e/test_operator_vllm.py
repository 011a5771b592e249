"""Real vLLM through the operator, on the real control plane: a requester Pod, the operator, a
launcher Pod whose process runs vLLM on the CPU (the pod runner runs the image's ``vllm-cpu``
tag from the cached vLLM environment), a tiny model built here.

The instance serves a completion through the requester's proxy port; at scale 0 the engine
refuses to sleep, so the operator deletes the instance instead, says why in an Event, and
tries once; at scale 1 again a new instance is made in the running launcher (warm).

The refusal: vLLM's sleep endpoints exist only with ``VLLM_SERVER_DEV_MODE=1``, which FMA's
launcher Pods set; the InferenceServerConfig here turns it off for its engine, which then
answers ``POST /sleep`` with 404, as an engine that cannot sleep. (With the endpoints on,
vLLM 0.32 on the CPU answers 200 and pauses its scheduler without freeing any memory — its
CPU worker ignores sleep — so the operator would keep it "asleep" and wake it, hot.)
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path

import pytest

from fma.api.constants import ANN_PROXY_PORT, REQUESTER_PROXY_PORT, REQUESTER_SPI_PORT
from fma.launcher.tiny_model import engine_options
from tests.integration.operator.harness import World, events_about, is_ready, poll

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1800)]

IMAGE = "ghcr.io/llm-d-fma/fma:vllm-cpu"
NODE = "gpu-node-0"
ENGINE_PORT = 8005
LAUNCHER_READY_S = 300.0
ENGINE_READY_S = 600.0
CPU_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1"}
ONE_PROCESS = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
"""With ``--distributed-executor-backend uni``: the engine core and its worker in the forked
instance itself, so no process imports vLLM again (half the start-up on the CPU, see
bench/results/launcher-*.json)."""
NO_SLEEP_ENDPOINTS = {"VLLM_SERVER_DEV_MODE": "0"}


def server_options(model: Path) -> str:
    """The tiny model's vLLM options, without the host (the engine must answer at the Pod IP)
    and the port (the InferenceServerConfig's)."""
    options = engine_options(model, ENGINE_PORT)
    for flag in ("--host", "--port"):
        at = options.index(flag)
        del options[at : at + 2]
    return shlex.join([*options, "--distributed-executor-backend", "uni"])


def setup(world: World, model: Path) -> None:
    container = {
        "name": "inference-server",
        "image": IMAGE,
        "args": ["launcher", "serve", "--engine", "vllm"],
        "env": [{"name": k, "value": v} for k, v in CPU_ENV.items()],
        "readinessProbe": {
            "httpGet": {"path": "/v2/vllm/instances", "port": 8001},
            "periodSeconds": 1,
        },
    }
    world.create_custom(
        "LauncherConfig",
        "lc-vllm",
        {
            "maxInstances": 1,
            "podTemplate": {
                "spec": {"terminationGracePeriodSeconds": 10, "containers": [container]}
            },
        },
    )
    world.create_custom(
        "InferenceServerConfig",
        "tiny",
        {
            "launcherConfigName": "lc-vllm",
            "modelServerConfig": {
                "port": ENGINE_PORT,
                "options": server_options(model),
                "env_vars": {**CPU_ENV, **ONE_PROCESS, **NO_SLEEP_ENDPOINTS},
            },
        },
    )
    world.population("lpp", "lc-vllm", 1, {"matchLabels": {"kubernetes.io/hostname": NODE}})


def complete(world: World, requester: dict) -> dict:
    """A completion sent to the requester's Pod IP, proxy port."""
    ip = requester["status"]["podIP"]
    answer = world.http.post(
        f"http://{ip}:{REQUESTER_PROXY_PORT}/v1/completions",
        json={"model": "tiny", "prompt": "Hello world", "max_tokens": 8, "temperature": 0},
        timeout=120,
    )
    assert answer.status_code == 200, answer.text
    body: dict = answer.json()
    assert body["usage"]["completion_tokens"] == 8
    assert body["model"] == "tiny"
    return body


def paths(world: World) -> list[str]:
    """The paths of the actuations the operator recorded, in order."""
    return [e["path"] for e in world.operators[0].events() if e["kind"] == "actuation"]


def sleep_calls(world: World) -> int:
    """The operator's sleep requests to engines, as its log counts its HTTP calls."""
    log = world.operators[0].log_text()
    return sum('purpose="sleep"' in line for line in log.splitlines())


def test_real_vllm_serves_through_the_requester_and_a_refused_sleep_deletes_the_instance(
    world: World, tiny_model: Path
) -> None:
    started_s = time.monotonic()
    setup(world, tiny_model)
    world.operator()
    world.wait(
        lambda: any(is_ready(p) for p in world.launchers(NODE)),
        "the vLLM launcher to be Ready",
        LAUNCHER_READY_S,
    )
    launcher_s = time.monotonic() - started_s

    world.replicaset("rs", isc="tiny", node=NODE, annotations={ANN_PROXY_PORT: "8082"})
    requester, launcher = world.served("rs", ENGINE_READY_S)
    first_s = time.monotonic() - started_s
    ip = requester["status"]["podIP"]
    target = world.http.get(f"http://{ip}:{REQUESTER_SPI_PORT}/v1/proxy/config").json()
    assert target == {"address": launcher["status"]["podIP"], "port": ENGINE_PORT}
    complete(world, requester)
    assert paths(world) == ["warm"]

    name = launcher["metadata"]["name"]
    world.scale("rs", 0)
    world.gone("rs")

    def refused() -> list[dict] | None:
        found = [e for e in events_about(world, name) if e["reason"] == "SleepRefused"]
        return found or None

    events = world.wait(refused, "an Event saying the engine refused to sleep", 120)
    assert all(e["type"] == "Warning" for e in events)
    assert "refused to sleep" in events[0]["message"], events[0]["message"]
    world.wait(lambda: world.instances(launcher) == [], "the instance to be deleted", 120)
    told = len(refused() or [])
    for _ in poll(5.0):  # no second try: the refusal is final
        pass
    assert sleep_calls(world) == 1
    assert len(refused() or []) == told
    kinds = [e["kind"] for e in world.operators[0].events()]
    assert kinds.count("sleep_refused") == 1

    world.scale("rs", 1)
    again, same = world.served("rs", ENGINE_READY_S)
    assert same["metadata"]["name"] == name  # the launcher that kept running
    complete(world, again)
    assert paths(world) == ["warm", "warm"]
    print(
        f"\nvLLM through the operator: launcher Ready after {launcher_s:.0f} s, first "
        f"completion after {first_s:.0f} s, whole test {time.monotonic() - started_s:.0f} s"
    )
