"""LauncherWatches against live launchers (fake engine processes): the report kept complete
across events and re-lists, a launcher that comes up late, a launcher restart, and the
engine notes an instance's end finishes."""

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import contextmanager
from itertools import pairwise
from pathlib import Path
from types import TracebackType
from typing import Any

import pytest
import uvicorn

from fma.adapters.k8s.engines import EngineBook
from fma.adapters.k8s.launchers import LauncherWatches, _Target, _Watch, instance_port
from fma.adapters.k8s.observed import ReportBook
from fma.adapters.k8s.trace import OperatorTrace
from fma.api.constants import CONTAINER_INFERENCE_SERVER, LABEL_LAUNCHER_CONFIG_NAME
from fma.core.model import InstanceState
from fma.launcher.api import InstanceState as ReportedInstance
from fma.launcher.api import InstanceStatus, VllmConfig
from fma.launcher.app import create_app
from fma.launcher.client import LauncherClient, Resync, WatchItem
from fma.launcher.gpus import GpuTranslator
from fma.launcher.service import LauncherService, ServiceSettings
from tests.unit.launcher.launcher_fakes import FakeSpawner

STEP_TIMEOUT_S = 10.0
NAME = "launcher-a"
CONFIG = VllmConfig(options=["--port", "8100"], gpu_uuids=["GPU-1"])

# --- serving apps on loopback (shared with the probe and GPU tests) ------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serving(app: Any, port: int = 0) -> Iterator[int]:
    """Serve an ASGI app on loopback in a thread; yields its port."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=0.2
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + STEP_TIMEOUT_S
    while not server.started:
        assert time.monotonic() < deadline, "the server did not start"
        assert thread.is_alive(), "the server thread died"
        time.sleep(0.005)
    try:
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(STEP_TIMEOUT_S)


async def eventually(check: Callable[[], bool], what: str = "the condition") -> None:
    deadline = time.monotonic() + STEP_TIMEOUT_S
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    """Run a scenario and check that it left no task behind."""

    async def checked() -> None:
        await scenario()
        left = asyncio.all_tasks() - {asyncio.current_task()}
        assert not left, f"tasks left running: {left}"

    asyncio.run(checked())


def read_trace(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


# --- fixtures ------------------------------------------------------------------------------------


def launcher_pod(
    *, uid: str = "uid-1", restarts: int = 0, running: bool = True, ip: str | None = "127.0.0.1"
) -> dict[str, Any]:
    state = (
        {"running": {"startedAt": f"2026-01-01T00:00:0{restarts}Z"}}
        if running
        else {"terminated": {"exitCode": 1}}
    )
    status: dict[str, Any] = {
        "containerStatuses": [
            {"name": CONTAINER_INFERENCE_SERVER, "restartCount": restarts, "state": state}
        ]
    }
    if ip is not None:
        status["podIP"] = ip
    return {
        "metadata": {"name": NAME, "uid": uid, "labels": {LABEL_LAUNCHER_CONFIG_NAME: "lc"}},
        "spec": {"nodeName": "node-1"},
        "status": status,
    }


def new_service(tmp_path: Path, spawner: FakeSpawner | None = None) -> LauncherService:
    return LauncherService(
        spawner=spawner or FakeSpawner(),
        translator=GpuTranslator({"GPU-0": 0, "GPU-1": 1}, source="test"),
        settings=ServiceSettings(log_dir=tmp_path, stop_grace_s=0.2),
    )


class World:
    """The books and the watches under test, and what they called back."""

    def __init__(self, tmp_path: Path, port: int, **options: Any) -> None:
        self.trace_path = tmp_path / "events.jsonl"
        self.trace = OperatorTrace(self.trace_path, clock=time.time)
        self.reports = ReportBook()
        self.engines = EngineBook()
        self.changes: list[str] = []
        self.watches = LauncherWatches(
            reports=self.reports,
            engines=self.engines,
            trace=self.trace,
            changed=self.changes.append,
            port=port,
            **options,
        )

    def instances(self) -> dict[str, InstanceStatus]:
        report = self.reports.report(NAME)
        return {} if report is None else {i: s.status for i, s in report.instances.items()}

    def kinds(self) -> list[tuple[str, str | None, str | None]]:
        events = read_trace(self.trace_path)
        return [(e["kind"], e.get("instance"), e.get("reason")) for e in events]

    async def close(self) -> None:
        await self.watches.stop()
        self.trace.close()


# --- the report ----------------------------------------------------------------------------------


def test_the_report_follows_events_and_finishes_the_notes(tmp_path: Path) -> None:
    spawner = FakeSpawner()
    with serving(create_app(new_service(tmp_path, spawner), engine_name="fake")) as port:

        async def scenario() -> None:
            world = World(tmp_path, port)
            async with LauncherClient(f"http://127.0.0.1:{port}") as client:
                await client.create(CONFIG, "a")
                world.watches.pod_changed(launcher_pod(), NAME)
                await eventually(lambda: world.instances() == {"a": InstanceStatus.RUNNING})
                report = world.reports.report(NAME)
                assert report is not None and (report.pod_uid, report.restarts) == ("uid-1", 0)
                assert world.changes == [NAME]

                await client.create(CONFIG, "b")
                await eventually(lambda: set(world.instances()) == {"a", "b"})
                spawner.processes["b"].crash(-11)  # an exit
                await eventually(lambda: world.instances()["b"] is InstanceStatus.STOPPED)

                world.engines.set_phase(NAME, "a", InstanceState.STOPPING, 1.0)
                await client.delete("a")  # the controller's stop: stopped, then deleted
                await eventually(lambda: "a" not in world.instances())
                assert world.engines.note(NAME, "a") is None
                await client.delete("b")  # someone else's
                await eventually(lambda: world.instances() == {})
            assert world.kinds() == [
                ("instance_stopped", "b", None),
                ("instance_deleted", "a", "deleted"),
                ("instance_deleted", "b", "vanished"),
            ]
            deleted = read_trace(world.trace_path)[1]
            assert deleted["provider"] == NAME and deleted["node"] == "node-1"
            assert deleted["gpus"] == ["GPU-1"] and deleted["port"] == 8100
            await world.close()
            assert world.watches.watching() == frozenset()

        run(scenario)


def test_a_relist_replaces_the_report(tmp_path: Path) -> None:
    """The launcher restarts before the Pod shows it: the client's resumed watch is refused
    (410), it lists again, and the new list replaces the old one."""
    port = free_port()

    async def scenario() -> None:
        world = World(tmp_path, port)
        with serving(create_app(new_service(tmp_path), engine_name="fake"), port):
            async with LauncherClient(f"http://127.0.0.1:{port}") as client:
                for instance_id in ("a", "b", "c"):
                    await client.create(CONFIG, instance_id)
            world.watches.pod_changed(launcher_pod(), NAME)
            await eventually(lambda: set(world.instances()) == {"a", "b", "c"})
            world.engines.set_phase(NAME, "a", InstanceState.AWAKE, 1.0)
        with serving(create_app(new_service(tmp_path), engine_name="fake"), port):
            async with LauncherClient(f"http://127.0.0.1:{port}") as client:
                await client.create(CONFIG, "d")
            await eventually(lambda: set(world.instances()) == {"d"}, "the re-list")
            assert world.engines.note(NAME, "a") is None
            await world.close()
        gone = [(kind, i) for kind, i, _ in world.kinds()]
        assert gone == [("instance_deleted", i) for i in ("a", "b", "c")]

    run(scenario)


def test_a_resync_keeps_an_instance_created_after_its_picture(tmp_path: Path) -> None:
    """The operator puts the instance it created into the report at once (the launcher's
    answer); a re-list whose picture predates it does not make it vanish, a later one does."""
    world = World(tmp_path, port=1)
    watch = _Watch(_Target("uid-1", "10.0.0.1", 0))
    world.watches._watches[NAME] = watch

    def state(instance_id: str, revision: int) -> ReportedInstance:
        return ReportedInstance(
            instance_id=instance_id, status=InstanceStatus.RUNNING, revision=revision, options=[]
        )

    world.watches._apply(NAME, watch, Resync(3, (state("a", 3),)))
    world.reports.add_instance(NAME, state("b", 5))
    assert world.reports.unseen(NAME) == {"b": 5}
    assert set(world.instances()) == {"a", "b"}
    world.watches._apply(NAME, watch, Resync(4, (state("a", 3),)))  # taken before b
    assert set(world.instances()) == {"a", "b"}
    assert world.kinds() == []
    world.watches._apply(NAME, watch, Resync(6, (state("a", 3),)))  # taken after b: gone
    assert set(world.instances()) == {"a"}
    assert world.kinds() == [("instance_deleted", "b", "vanished")]
    world.reports.add_instance(NAME, state("c", 8))
    world.watches._apply(NAME, watch, Resync(9, (state("a", 3), state("c", 8))))  # seen
    assert world.reports.unseen(NAME) == {}


def test_a_restarted_launcher_loses_its_report_and_notes(tmp_path: Path) -> None:
    port = free_port()

    async def scenario() -> None:
        world = World(tmp_path, port)
        with serving(create_app(new_service(tmp_path), engine_name="fake"), port):
            async with LauncherClient(f"http://127.0.0.1:{port}") as client:
                await client.create(CONFIG, "a")
            world.watches.pod_changed(launcher_pod(), NAME)
            await eventually(lambda: set(world.instances()) == {"a"})
            world.engines.set_phase(NAME, "a", InstanceState.SLEEPING, 1.0)
            world.engines.touch(NAME, "a", 1.0)
            world.changes.clear()
            # The container exits: the instances are gone with it, before any new stream.
            world.watches.pod_changed(launcher_pod(running=False), NAME)
            assert world.reports.report(NAME) is None
            assert world.engines.note(NAME, "a") is None and not world.engines.last_used(NAME)
            assert world.changes == [NAME]
            assert world.watches.watching() == frozenset()
        with serving(create_app(new_service(tmp_path), engine_name="fake"), port):
            world.watches.pod_changed(launcher_pod(restarts=1), NAME)
            await eventually(lambda: world.reports.report(NAME) is not None)
            report = world.reports.report(NAME)
            assert report is not None and report.restarts == 1 and not report.instances
            await world.close()
        assert world.kinds() == [
            ("instance_deleted", "a", "launcher crashed"),
            ("launcher_crashed", None, None),
        ]

    run(scenario)


def test_a_restart_seen_only_as_a_new_count_also_forgets(tmp_path: Path) -> None:
    port = free_port()
    with serving(create_app(new_service(tmp_path), engine_name="fake"), port):

        async def scenario() -> None:
            world = World(tmp_path, port)
            async with LauncherClient(f"http://127.0.0.1:{port}") as client:
                await client.create(CONFIG, "a")
                world.watches.pod_changed(launcher_pod(), NAME)
                await eventually(lambda: set(world.instances()) == {"a"})
                world.engines.set_phase(NAME, "a", InstanceState.AWAKE, 1.0)
                world.watches.pod_changed(launcher_pod(restarts=2), NAME)
                assert world.engines.note(NAME, "a") is None
                # The new stream's report is of the new run (this launcher still lists "a").
                await eventually(lambda: world.reports.report(NAME) is not None)
                report = world.reports.report(NAME)
                assert report is not None and report.restarts == 2
            await world.close()

        run(scenario)


def test_a_deleted_pod_is_forgotten_without_a_crash(tmp_path: Path) -> None:
    with serving(create_app(new_service(tmp_path), engine_name="fake")) as port:

        async def scenario() -> None:
            world = World(tmp_path, port)
            world.watches.pod_changed(launcher_pod(), NAME)
            await eventually(lambda: world.reports.report(NAME) is not None)
            world.engines.set_phase(NAME, "x", InstanceState.AWAKE, 1.0)
            world.watches.pod_changed(None, NAME)
            assert world.reports.report(NAME) is None and not world.engines.notes(NAME)
            assert world.watches.watching() == frozenset()
            await world.close()
            assert world.kinds() == []

        run(scenario)


def test_a_launcher_that_comes_up_late_is_still_watched(tmp_path: Path) -> None:
    port = free_port()

    async def scenario() -> None:
        world = World(tmp_path, port)
        world.watches.pod_changed(launcher_pod(), NAME)
        await asyncio.sleep(0.3)  # refused meanwhile
        assert world.reports.report(NAME) is None
        assert world.watches.watching() == {NAME}
        with serving(create_app(new_service(tmp_path), engine_name="fake"), port):
            await eventually(lambda: world.reports.report(NAME) is not None, "the late launcher")
            await world.close()

    run(scenario)


def test_pods_that_cannot_be_watched_are_not(tmp_path: Path) -> None:
    async def scenario() -> None:
        world = World(tmp_path, free_port())
        world.watches.pod_changed(launcher_pod(ip=None), NAME)
        world.watches.pod_changed(launcher_pod(running=False), NAME)
        other = launcher_pod()
        other["metadata"]["labels"] = {}
        world.watches.pod_changed(other, NAME)
        assert world.watches.watching() == frozenset()
        assert world.changes == []
        await world.close()
        world.watches.pod_changed(launcher_pod(), NAME)  # stopped: ignored
        assert world.watches.watching() == frozenset()

    run(scenario)


# --- failures and back-off -----------------------------------------------------------------------


class FailingClient:
    """A client whose watch fails at once: only the watches' own back-off paces it.
    ``opened`` records each stream asked for."""

    opened: list[float] = []

    def __init__(self, url: str) -> None:
        self.url = url

    async def __aenter__(self) -> "FailingClient":
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    async def watch(self, **_: object) -> AsyncIterator[WatchItem]:
        FailingClient.opened.append(time.monotonic())
        raise RuntimeError("broken")
        yield  # an async generator


def test_failures_back_off_instead_of_spinning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        FailingClient.opened.clear()
        world = World(
            tmp_path, 1, connect=FailingClient, retry_s_min=0.05, retry_s_max=0.1, eager_s=0.0
        )
        world.watches.pod_changed(launcher_pod(), NAME)
        await asyncio.sleep(0.5)
        await world.close()
        # 0.05, then 0.1 each: about 6 attempts in 0.5 s, never hundreds.
        assert 3 <= len(FailingClient.opened) <= 8
        gaps = [b - a for a, b in pairwise(FailingClient.opened)]
        assert min(gaps) >= 0.04

    with caplog.at_level("WARNING", logger="fma.operator"):
        run(scenario)
    assert "watch failed: broken" in caplog.text


def test_a_launcher_that_keeps_failing_is_told_once_per_streak(tmp_path: Path) -> None:
    told: list[tuple[str, str, str]] = []

    async def warn(name: str, uid: str, message: str) -> None:
        told.append((name, uid, message))

    async def scenario() -> None:
        FailingClient.opened.clear()
        world = World(tmp_path, 1, connect=FailingClient, warn=warn, retry_s_min=0.01, eager_s=0.05)
        world.watches.pod_changed(launcher_pod(), NAME)
        await eventually(lambda: len(FailingClient.opened) >= 10, "ten attempts")
        await world.close()

    run(scenario)
    assert len(told) == 1  # after the quiet failures, and not again in the same streak
    name, uid, message = told[0]
    assert (name, uid) == (NAME, launcher_pod()["metadata"]["uid"])
    assert "does not answer at http://" in message and "broken" in message


def test_a_silent_stream_is_reopened(tmp_path: Path) -> None:
    opened: list[str] = []

    class Counting(LauncherClient):
        def watch(self, **kwargs: Any) -> AsyncIterator[WatchItem]:
            opened.append("a stream")
            return super().watch(**kwargs)

    def connect(url: str) -> LauncherClient:
        return Counting(url)

    with serving(create_app(new_service(tmp_path), engine_name="fake")) as port:

        async def scenario() -> None:
            world = World(tmp_path, port, connect=connect, stream_idle_s=0.1)
            world.watches.pod_changed(launcher_pod(), NAME)
            await eventually(lambda: len(opened) >= 3, "reopened streams")
            assert world.changes == [NAME]  # the same list each time: no change
            await world.close()

        run(scenario)


# --- helpers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "annotations", "port"),
    [
        (["--port", "8100"], {"inference-port": "8200"}, 8200),
        (["--port", "8100"], None, 8100),
        (["--port=8300"], None, 8300),
        ([], None, 8000),
        ([], {"inference-port": "nope"}, 8000),
    ],
)
def test_an_instance_port(
    options: list[str], annotations: dict[str, str] | None, port: int
) -> None:
    state = ReportedInstance(
        instance_id="i",
        status=InstanceStatus.RUNNING,
        revision=1,
        options=options,
        annotations=annotations,
    )
    assert instance_port(state) == port
