"""GpuFetcher against the project's requester SPI: retried until it answers, the answer kept
and written onto the Pod, never asked again once written, and cancelled with the Pod."""

import asyncio
import time
from collections.abc import Mapping
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest

from fma.adapters.k8s.accelerators import AnswerInvalid, GpuFetcher, admin_port, parse_gpus
from fma.adapters.k8s.observed import GpuBook
from fma.adapters.k8s.trace import OperatorTrace
from fma.api.constants import (
    ANN_ACCELERATORS,
    ANN_ADMIN_PORT,
    ANN_INFERENCE_SERVER_CONFIG,
    ANN_SERVER_PATCH,
    CONTAINER_INFERENCE_SERVER,
    SPI_ACCELERATORS_PATH,
)
from fma.requester.app import Readiness, create_spi_app
from fma.requester.proxy_config import ProxyConfigurator
from tests.unit.k8s.test_launchers import eventually, free_port, read_trace, run, serving

NAME = "req-1"
UID = "uid-r"
FAST = {"retry_s_min": 0.02, "retry_s_max": 0.1, "timeout_s": 1.0}


def spi(gpus: list[str]) -> Any:
    proxy = ProxyConfigurator(listen_host="127.0.0.1", listen_port=1, dial_timeout_s=1.0)
    return create_spi_app(Readiness(), gpus, proxy)


def requester_pod(
    port: int,
    *,
    uid: str = UID,
    node: str | None = "node-1",
    ip: str | None = "127.0.0.1",
    running: bool = True,
    **annotations: str,
) -> dict[str, Any]:
    state = {"running": {"startedAt": "t0"}} if running else {"waiting": {}}
    pod: dict[str, Any] = {
        "metadata": {
            "name": NAME,
            "uid": uid,
            "annotations": {
                ANN_INFERENCE_SERVER_CONFIG: "isc-1",
                ANN_ADMIN_PORT: str(port),
                **annotations,
            },
        },
        "spec": {"containers": [{"name": CONTAINER_INFERENCE_SERVER}]},
        "status": {
            "containerStatuses": [{"name": CONTAINER_INFERENCE_SERVER, "state": state}],
        },
    }
    if node is not None:
        pod["spec"]["nodeName"] = node
    if ip is not None:
        pod["status"]["podIP"] = ip
    return pod


class World:
    def __init__(self, tmp_path: Path, *, fail_writes: int = 0, **options: Any) -> None:
        self.trace_path = tmp_path / "events.jsonl"
        self.trace = OperatorTrace(self.trace_path, clock=time.time)
        self.gpus = GpuBook()
        self.changes: list[str] = []
        self.writes: list[tuple[str, str, dict[str, str]]] = []
        self.fail_writes = fail_writes
        self.fetcher = GpuFetcher(
            gpus=self.gpus,
            annotate=self.annotate,
            trace=self.trace,
            changed=self.changes.append,
            **{**FAST, **options},
        )

    async def annotate(self, name: str, uid: str, annotations: Mapping[str, str]) -> None:
        if self.fail_writes > 0:
            self.fail_writes -= 1
            raise RuntimeError("409 Conflict")
        self.writes.append((name, uid, dict(annotations)))

    async def close(self) -> None:
        await self.fetcher.stop()
        self.trace.close()


def test_the_gpus_are_asked_for_until_the_spi_answers_then_kept_and_written(
    tmp_path: Path,
) -> None:
    port = free_port()

    async def scenario() -> None:
        world = World(tmp_path, fail_writes=1)
        world.fetcher.pod_changed(requester_pod(port), NAME)
        await asyncio.sleep(0.1)  # refused meanwhile: asked again
        assert world.gpus.gpus(UID) is None and world.fetcher.fetching() == {NAME}
        with serving(spi(["GPU-a", "GPU-b"]), port):
            await eventually(lambda: world.gpus.gpus(UID) == ("GPU-a", "GPU-b"), "the GPUs")
            assert world.changes == ["node-1"]
            await eventually(lambda: bool(world.writes), "the write, after one failure")
            assert world.writes == [(NAME, UID, {ANN_ACCELERATORS: "GPU-a,GPU-b"})]
            await eventually(lambda: not world.fetcher.fetching())
            await world.close()
        [learnt] = read_trace(world.trace_path)
        assert learnt["kind"] == "accelerators"
        assert (learnt["requester"], learnt["gpus"]) == (UID, ["GPU-a", "GPU-b"])

    run(scenario)


def test_no_second_fetch_once_known_or_annotated(tmp_path: Path) -> None:
    asked: list[str] = []

    def requester(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return httpx.Response(200, json=["GPU-a"])

    async def scenario() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(requester)) as http:
            world = World(tmp_path, http=http)
            world.fetcher.pod_changed(requester_pod(9001), NAME)
            await eventually(lambda: bool(world.writes) and not world.fetcher.fetching())
            assert asked == [f"http://127.0.0.1:9001{SPI_ACCELERATORS_PATH}"]
            # The Pod event of the write may come after others: neither asks again.
            world.fetcher.pod_changed(requester_pod(9001), NAME)
            world.fetcher.pod_changed(requester_pod(9001, **{ANN_ACCELERATORS: "GPU-a"}), NAME)
            assert not world.fetcher.fetching()
            # A restarted operator finds the annotation and asks nothing.
            other = World(tmp_path, http=http)
            other.fetcher.pod_changed(requester_pod(9001, **{ANN_ACCELERATORS: "GPU-a"}), NAME)
            assert not other.fetcher.fetching()
            await other.close()
            await world.close()
            assert len(asked) == 1 and len(world.writes) == 1

    run(scenario)


def test_a_requester_that_does_not_answer_is_told_once_and_still_asked(
    tmp_path: Path,
) -> None:
    port = free_port()
    told: list[tuple[str, str, str]] = []

    async def warn(name: str, uid: str, message: str) -> None:
        told.append((name, uid, message))

    async def scenario() -> None:
        world = World(tmp_path, warn=warn, retry_s_min=0.01, retry_s_max=0.02, eager_s=0.3)
        world.fetcher.pod_changed(requester_pod(port), NAME)
        await eventually(lambda: len(told) == 1, "a warning")
        await asyncio.sleep(0.2)  # refused all along: no second warning
        assert len(told) == 1
        with serving(spi(["GPU-a"]), port):
            await eventually(lambda: world.gpus.gpus(UID) == ("GPU-a",), "the GPUs")
        await world.close()

    run(scenario)
    name, uid, message = told[0]
    assert (name, uid) == (NAME, UID)
    assert f":{port}{SPI_ACCELERATORS_PATH}" in message and "does not answer" in message


def test_a_bad_answer_is_asked_again_at_the_slowest_rate(tmp_path: Path) -> None:
    answers: list[Any] = [[], {"gpus": ["GPU-a"]}, ["GPU-a"]]
    times: list[float] = []

    def requester(request: httpx.Request) -> httpx.Response:
        times.append(time.monotonic())
        return httpx.Response(200, json=answers.pop(0))

    async def scenario() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(requester)) as http:
            world = World(tmp_path, http=http, retry_s_min=0.01, retry_s_max=0.15)
            world.fetcher.pod_changed(requester_pod(9001), NAME)
            await eventually(lambda: world.gpus.gpus(UID) == ("GPU-a",))
            await world.close()
        assert len(times) == 3
        assert min(b - a for a, b in pairwise(times)) >= 0.14

    run(scenario)


def test_a_requester_that_cannot_answer_yet_is_not_asked(tmp_path: Path) -> None:
    asked: list[str] = []

    def requester(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        return httpx.Response(200, json=["GPU-a"])

    async def scenario() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(requester)) as http:
            world = World(tmp_path, http=http)
            for pod in (
                requester_pod(9001, node=None),
                requester_pod(9001, ip=None),
                requester_pod(9001, running=False),
                requester_pod(9001, **{ANN_INFERENCE_SERVER_CONFIG: ""}),  # not a requester
            ):
                world.fetcher.pod_changed(pod, NAME)
                assert not world.fetcher.fetching()
            deleting = requester_pod(9001)
            deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
            world.fetcher.pod_changed(deleting, NAME)
            assert not world.fetcher.fetching()
            await world.close()
        assert asked == []

    run(scenario)


def test_the_fetch_is_cancelled_with_the_pod_and_the_answer_forgotten(tmp_path: Path) -> None:
    async def scenario() -> None:
        world = World(tmp_path)
        world.fetcher.pod_changed(requester_pod(free_port()), NAME)  # nobody answers
        await asyncio.sleep(0.05)
        assert world.fetcher.fetching() == {NAME}
        world.fetcher.pod_changed(None, NAME)
        assert world.fetcher.fetching() == frozenset()
        with serving(spi(["GPU-a"])) as port:
            world.fetcher.pod_changed(requester_pod(port, uid="uid-2"), NAME)
            await eventually(lambda: world.gpus.gpus("uid-2") == ("GPU-a",))
            beginning = requester_pod(port, uid="uid-2", **{ANN_ACCELERATORS: "GPU-a"})
            beginning["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
            world.fetcher.pod_changed(beginning, NAME)
            assert world.gpus.gpus("uid-2") == ("GPU-a",)  # kept while the Pod lives
            world.fetcher.pod_changed(None, NAME)
            assert world.gpus.gpus("uid-2") is None
            await world.close()
        assert world.writes == [(NAME, "uid-2", {ANN_ACCELERATORS: "GPU-a"})]

    run(scenario)


def test_a_deleting_requester_stops_being_asked(tmp_path: Path) -> None:
    async def scenario() -> None:
        world = World(tmp_path)
        pod = requester_pod(free_port(), **{ANN_SERVER_PATCH: "spec: {}"})
        world.fetcher.pod_changed(pod, NAME)
        assert world.fetcher.fetching() == {NAME}
        pod["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
        world.fetcher.pod_changed(pod, NAME)
        assert world.fetcher.fetching() == frozenset()
        await world.close()

    run(scenario)


@pytest.mark.parametrize(
    "body",
    [[], "GPU-a", ["GPU-a", "GPU-a"], ["GPU-a", 3], ["GPU a"], ["GPU-a,GPU-b"], None],
)
def test_answers_that_are_not_gpu_lists(body: Any) -> None:
    with pytest.raises(AnswerInvalid):
        parse_gpus(body)


def test_the_admin_port_defaults_to_the_spi_port() -> None:
    assert admin_port({"metadata": {"annotations": {ANN_ADMIN_PORT: "9100"}}}) == 9100
    assert admin_port({"metadata": {"annotations": {ANN_ADMIN_PORT: "x"}}}) == 8081
    assert admin_port({}) == 8081
