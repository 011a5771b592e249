"""EngineProbes against the project's stub engine: a starting engine resolved to AWAKE, an
unknown one found asleep, a direct provider's run, and the executor's notes left alone."""

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from fma.adapters.k8s.engines import EngineBook
from fma.adapters.k8s.observed import LauncherReport, ReportBook, container_run
from fma.adapters.k8s.probes import EngineProbes
from fma.adapters.k8s.trace import OperatorTrace
from fma.api.constants import (
    ANN_ACCELERATORS,
    ANN_INSTANCE_ID,
    ANN_NOMINAL,
    CONTAINER_INFERENCE_SERVER,
    LABEL_LAUNCHER_CONFIG_NAME,
)
from fma.core.model import InstanceState
from fma.launcher.api import InstanceState as ReportedInstance
from fma.launcher.api import InstanceStatus
from fma.launcher.stub_engine import StubArgs, StubLatency, create_app
from tests.unit.k8s.test_launchers import eventually, free_port, read_trace, run, serving

LAUNCHER = "launcher-a"
DIRECT = "req-dual-x"
FAST = {"interval_s_min": 0.02, "interval_s_max": 0.05, "timeout_s": 1.0}


def stub_engine() -> Any:
    args = StubArgs(
        model="m",
        served_model_names=("m",),
        host="127.0.0.1",
        port=0,
        latency=StubLatency(start_s=0.0, sleep_s=0.0, wake_s=0.0),
    )
    return create_app(args)


def running(restarts: int = 0, started: str = "2026-01-01T00:00:00Z") -> dict[str, Any]:
    return {
        "name": CONTAINER_INFERENCE_SERVER,
        "restartCount": restarts,
        "state": {"running": {"startedAt": started}},
    }


def launcher_pod() -> dict[str, Any]:
    return {
        "metadata": {
            "name": LAUNCHER,
            "uid": "uid-l",
            "labels": {LABEL_LAUNCHER_CONFIG_NAME: "lc"},
        },
        "spec": {"nodeName": "node-1"},
        "status": {"podIP": "127.0.0.1", "containerStatuses": [running()]},
    }


def direct_pod(port: int, *, restarts: int = 0, started: str = "t0") -> dict[str, Any]:
    server = {
        "name": CONTAINER_INFERENCE_SERVER,
        "ports": [{"name": "http", "containerPort": port}],
        "readinessProbe": {"httpGet": {"path": "/health", "port": "http"}},
    }
    return {
        "metadata": {
            "name": DIRECT,
            "uid": "uid-d",
            "annotations": {
                ANN_NOMINAL: "hash",
                ANN_INSTANCE_ID: "inst-d",
                ANN_ACCELERATORS: "GPU-1,GPU-2",
            },
        },
        "spec": {"nodeSelector": {"kubernetes.io/hostname": "node-2"}, "containers": [server]},
        "status": {"podIP": "127.0.0.1", "containerStatuses": [running(restarts, started)]},
    }


def instance(instance_id: str, port: int, status: InstanceStatus = InstanceStatus.RUNNING) -> Any:
    return ReportedInstance(
        instance_id=instance_id,
        status=status,
        revision=1,
        options=["--port", str(port)],
        gpu_uuids=["GPU-0"],
        annotations={"inference-port": str(port)},
    )


class World:
    def __init__(self, tmp_path: Path, **options: Any) -> None:
        self.trace_path = tmp_path / "events.jsonl"
        self.trace = OperatorTrace(self.trace_path, clock=time.time)
        self.reports = ReportBook()
        self.changes: list[str] = []
        self.engines = EngineBook(on_change=self.changes.append)
        self.probes = EngineProbes(
            reports=self.reports,
            engines=self.engines,
            trace=self.trace,
            clock=lambda: 42.0,
            **{**FAST, **options},
        )

    def report(self, *instances: ReportedInstance) -> None:
        self.reports.set(
            LAUNCHER, LauncherReport("uid-l", 0, 1, {i.instance_id: i for i in instances})
        )
        self.probes.reconsider(LAUNCHER)

    def phase(self, provider: str, instance_id: str) -> InstanceState | None:
        note = self.engines.note(provider, instance_id)
        return note.phase if note is not None else None

    def phase_is(self, provider: str, instance_id: str, phase: InstanceState) -> Callable[[], bool]:
        return lambda: self.phase(provider, instance_id) is phase

    async def close(self) -> None:
        await self.probes.stop()
        self.trace.close()


def test_a_starting_engine_is_awake_once_it_answers(tmp_path: Path) -> None:
    port = free_port()

    async def scenario() -> None:
        world = World(tmp_path)
        world.probes.pod_changed(launcher_pod(), LAUNCHER)
        world.report(instance("i1", port))
        await eventually(world.phase_is(LAUNCHER, "i1", InstanceState.STARTING), "STARTING")
        await asyncio.sleep(0.1)  # asked again meanwhile: STARTING is noted once
        assert world.changes == [LAUNCHER]
        with serving(stub_engine(), port):
            await eventually(world.phase_is(LAUNCHER, "i1", InstanceState.AWAKE), "AWAKE")
            note = world.engines.note(LAUNCHER, "i1")
            assert note is not None and note.since_s == 42.0 and note.run is None
            await eventually(lambda: not world.probes.probing(), "the probe's end")
            await world.close()
        [awake] = read_trace(world.trace_path)
        assert awake["kind"] == "instance_awake"
        assert (awake["provider"], awake["instance"], awake["node"]) == (LAUNCHER, "i1", "node-1")
        assert (awake["gpus"], awake["port"]) == (["GPU-0"], port)

    run(scenario)


def test_an_unknown_engine_found_asleep_is_sleeping(tmp_path: Path) -> None:
    with serving(stub_engine()) as port:

        async def scenario() -> None:
            async with httpx.AsyncClient() as http:
                assert (await http.post(f"http://127.0.0.1:{port}/sleep")).status_code == 200
            world = World(tmp_path)
            world.probes.pod_changed(launcher_pod(), LAUNCHER)
            world.report(instance("i1", port), instance("gone", port, InstanceStatus.STOPPED))
            await eventually(world.phase_is(LAUNCHER, "i1", InstanceState.SLEEPING))
            assert world.phase(LAUNCHER, "gone") is None  # a stopped one is not asked
            await eventually(lambda: not world.probes.probing())
            await world.close()
            # Found, not seen starting: recorded as found (after a restart, the trace learns
            # where the engine is).
            [found] = read_trace(world.trace_path)
            assert (found["kind"], found["instance"]) == ("instance_sleeping", "i1")

        run(scenario)


def test_a_direct_provider_is_asked_for_its_current_run(tmp_path: Path) -> None:
    with serving(stub_engine()) as port:

        async def scenario() -> None:
            world = World(tmp_path)
            first = direct_pod(port, started="t0")
            world.probes.pod_changed(first, DIRECT)
            await eventually(world.phase_is(DIRECT, "inst-d", InstanceState.AWAKE))
            note = world.engines.note(DIRECT, "inst-d")
            run_0 = container_run(first, CONTAINER_INFERENCE_SERVER)
            assert note is not None and note.run == run_0
            world.engines.set_phase(DIRECT, "inst-d", InstanceState.SLEEPING, 1.0, run=run_0)
            world.probes.pod_changed(first, DIRECT)  # the note applies: nothing to ask
            assert not world.probes.probing()
            # The container restarted: the note is of an earlier run.
            second = direct_pod(port, restarts=1, started="t1")
            world.probes.pod_changed(second, DIRECT)
            await eventually(world.phase_is(DIRECT, "inst-d", InstanceState.AWAKE))
            note = world.engines.note(DIRECT, "inst-d")
            assert note is not None and note.run == container_run(second, "inference-server")
            world.probes.pod_changed(None, DIRECT)  # deleted: its notes go with it
            assert not world.engines.notes(DIRECT)
            await world.close()

        run(scenario)


def test_an_answer_never_overwrites_what_the_executor_noted_meanwhile(tmp_path: Path) -> None:
    world_box: list[World] = []

    def engine(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/health":
            # While the probe waits for the answer, the executor starts a wake.
            world_box[0].engines.set_phase(LAUNCHER, "i1", InstanceState.WAKING, 7.0)
            return httpx.Response(200)
        return httpx.Response(200, json={"is_sleeping": True})

    async def scenario() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(engine)) as http:
            world = World(tmp_path, http=http)
            world_box.append(world)
            world.probes.pod_changed(launcher_pod(), LAUNCHER)
            world.report(instance("i1", 8000))
            await eventually(lambda: not world.probes.probing())
            note = world.engines.note(LAUNCHER, "i1")
            assert note is not None and (note.phase, note.since_s) == (InstanceState.WAKING, 7.0)
            await world.close()

    run(scenario)


def test_a_probe_ends_when_the_executor_takes_over_or_the_report_goes(tmp_path: Path) -> None:
    async def scenario() -> None:
        world = World(tmp_path)
        world.probes.pod_changed(launcher_pod(), LAUNCHER)
        world.report(instance("i1", free_port()), instance("i2", free_port()))
        await eventually(world.phase_is(LAUNCHER, "i1", InstanceState.STARTING))
        await eventually(world.phase_is(LAUNCHER, "i2", InstanceState.STARTING))
        world.engines.set_phase(LAUNCHER, "i1", InstanceState.STOPPING, 5.0)
        await eventually(lambda: world.probes.probing() == {(LAUNCHER, "i2")}, "i1's end")
        assert world.phase(LAUNCHER, "i1") is InstanceState.STOPPING
        world.reports.forget(LAUNCHER)
        world.probes.reconsider(LAUNCHER)
        assert world.probes.probing() == frozenset()
        await world.close()

    run(scenario)


def test_probes_are_bounded_and_cancelled_on_stop(tmp_path: Path) -> None:
    concurrent = [0, 0]  # now, most

    async def engine(request: httpx.Request) -> httpx.Response:
        concurrent[0] += 1
        concurrent[1] = max(concurrent)
        await asyncio.sleep(0.02)
        concurrent[0] -= 1
        return httpx.Response(503)  # still loading

    async def scenario() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(engine)) as http:
            world = World(tmp_path, http=http, probes_max=2)
            world.probes.pod_changed(launcher_pod(), LAUNCHER)
            world.report(*(instance(f"i{n}", 9000 + n) for n in range(6)))
            await eventually(
                lambda: all(
                    world.phase(LAUNCHER, f"i{n}") is InstanceState.STARTING for n in range(6)
                )
            )
            assert len(world.probes.probing()) == 6
            await world.close()
            assert world.probes.probing() == frozenset()
        assert concurrent[1] == 2

    run(scenario)


def test_a_launcher_report_of_another_run_is_not_probed(tmp_path: Path) -> None:
    async def scenario() -> None:
        world = World(tmp_path)
        world.probes.pod_changed(launcher_pod(), LAUNCHER)
        world.reports.set(LAUNCHER, LauncherReport("uid-l", 3, 1, {"i1": instance("i1", 1)}))
        world.probes.reconsider(LAUNCHER)
        assert world.probes.probing() == frozenset()
        await world.close()

    run(scenario)
