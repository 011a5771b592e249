"""The launcher's aggregated ``GET /metrics``: every instance by ``instance_id``, its state as
its engine says, and GPU memory where NVML answers (a fake NVML here, and none at all)."""

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from fma.launcher.api import INSTANCES_PATH, METRICS_PATH
from fma.launcher.app import create_app
from fma.launcher.metrics import (
    AWAKE,
    SLEEPING,
    STARTING,
    UNKNOWN,
    GpuSample,
    LauncherMetrics,
    ask_engine,
    served_model_and_port,
)
from fma.launcher.service import LauncherService
from tests.unit.launcher.launcher_fakes import FakeSpawner

Labels = tuple[tuple[str, str], ...]


def scrape(client: TestClient) -> dict[str, dict[Labels, float]]:
    """name -> labels -> value."""
    answer = client.get(METRICS_PATH)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    found: dict[str, dict[Labels, float]] = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            found.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return found


class Engines:
    """What each engine port answers, and the NVML the test pretends to have."""

    def __init__(self) -> None:
        self.states: dict[int, str] = {}
        self.gpus: list[GpuSample] | None = None
        self.groups: dict[int, int] = {}

    async def state(self, http: httpx.AsyncClient, port: int) -> str:
        return self.states.get(port, STARTING)


@pytest.fixture
def engines() -> Engines:
    return Engines()


@pytest.fixture
def metrics_client(service: LauncherService, engines: Engines) -> Iterator[TestClient]:
    metrics = LauncherMetrics(
        lambda: service.list_detail().instances,
        engine_state=engines.state,
        gpu_sampler=lambda: engines.gpus,
        process_group=lambda pid: engines.groups.get(pid),
    )
    with TestClient(create_app(service, engine_name="fake", metrics=metrics)) as client:
        yield client


def create(client: TestClient, instance_id: str, port: int, model: str) -> None:
    options = ["--model", model, "--port", str(port)]
    answer = client.put(f"{INSTANCES_PATH}/{instance_id}", json={"options": options})
    assert answer.status_code == 201, answer.text


def test_every_instance_is_labelled_by_its_id_with_its_engine_state(
    metrics_client: TestClient, engines: Engines, spawner: FakeSpawner
) -> None:
    create(metrics_client, "a", 8100, "qwen")
    create(metrics_client, "b", 8101, "smollm")
    create(metrics_client, "c", 8102, "tiny")
    engines.states = {8100: AWAKE, 8101: SLEEPING}
    spawner.processes["c"].crash(1)
    for _ in range(200):  # the exit is noticed on the app's loop
        if metrics_client.get(f"{INSTANCES_PATH}/c").json()["status"] == "stopped":
            break
    found = scrape(metrics_client)
    info = {
        dict(labels)["instance_id"]: dict(labels) for labels in found["fma_launcher_instance_info"]
    }
    assert info == {
        "a": {"instance_id": "a", "model": "qwen", "port": "8100", "state": "awake"},
        "b": {"instance_id": "b", "model": "smollm", "port": "8101", "state": "sleeping"},
        "c": {"instance_id": "c", "model": "tiny", "port": "8102", "state": "stopped"},
    }
    totals = {dict(labels)["state"]: v for labels, v in found["fma_launcher_instances"].items()}
    assert totals == {"starting": 0, "awake": 1, "sleeping": 1, "stopped": 1, "unknown": 0}


def test_without_nvml_there_are_no_gpu_metrics(metrics_client: TestClient) -> None:
    create(metrics_client, "a", 8100, "qwen")
    found = scrape(metrics_client)
    assert not [name for name in found if "gpu_memory" in name]


def test_gpu_memory_is_attributed_to_the_instance_whose_process_group_holds_it(
    metrics_client: TestClient, engines: Engines, spawner: FakeSpawner
) -> None:
    create(metrics_client, "a", 8100, "qwen")
    create(metrics_client, "b", 8101, "smollm")
    leader_a, leader_b = spawner.processes["a"].pid, spawner.processes["b"].pid
    engine_core_a, stranger = 50001, 50002
    engines.groups = {leader_a: leader_a, engine_core_a: leader_a, leader_b: leader_b}
    gib = 1024**3
    engines.gpus = [
        GpuSample("GPU-0", 30 * gib, 80 * gib, ((engine_core_a, 20 * gib), (stranger, 9 * gib))),
        GpuSample("GPU-1", 12 * gib, 80 * gib, ((leader_a, 1 * gib), (leader_b, 10 * gib))),
    ]
    found = scrape(metrics_client)
    assert found["fma_launcher_instance_gpu_memory_bytes"] == {
        (("gpu_uuid", "GPU-0"), ("instance_id", "a")): 20 * gib,
        (("gpu_uuid", "GPU-1"), ("instance_id", "a")): 1 * gib,
        (("gpu_uuid", "GPU-1"), ("instance_id", "b")): 10 * gib,
    }
    assert found["fma_launcher_gpu_memory_used_bytes"] == {
        (("gpu_uuid", "GPU-0"),): 30 * gib,
        (("gpu_uuid", "GPU-1"),): 12 * gib,
    }
    assert found["fma_launcher_gpu_memory_total_bytes"][(("gpu_uuid", "GPU-0"),)] == 80 * gib


def test_the_default_metrics_serve_a_launcher_with_no_instances(client: TestClient) -> None:
    found = scrape(client)
    assert set(found["fma_launcher_instances"].values()) == {0.0}
    assert METRICS_PATH in client.get("/").json()["endpoints"]


@pytest.mark.parametrize(
    ("answer", "state"),
    [
        (httpx.Response(200, json={"is_sleeping": True}), SLEEPING),
        (httpx.Response(200, json={"is_sleeping": False}), AWAKE),
        (httpx.Response(404, json={"detail": "Not Found"}), UNKNOWN),
        (httpx.Response(200, text="not json"), UNKNOWN),
        (httpx.ConnectError("refused"), STARTING),
    ],
)
def test_an_engine_is_asked_whether_it_sleeps(
    answer: httpx.Response | Exception, state: str
) -> None:
    asked: list[str] = []

    def respond(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def ask() -> str:
        async with httpx.AsyncClient(transport=httpx.MockTransport(respond)) as http:
            return await ask_engine(http, 8123)

    assert asyncio.run(ask()) == state
    assert asked == ["http://127.0.0.1:8123/is_sleeping"]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        (["--model", "m", "--port", "8005"], ("m", 8005)),
        (["--model=m", "--port=8006", "--served-model-name", "a", "b"], ("a", 8006)),
        (["--model", "m"], ("m", 8000)),
        (["--port", "x"], ("", 8000)),
        (["--enable-sleep-mode", "--model", "m", "--port"], ("", 8000)),
    ],
)
def test_an_engine_is_found_by_its_options(options: list[str], expected: tuple[str, int]) -> None:
    assert served_model_and_port(options) == expected
