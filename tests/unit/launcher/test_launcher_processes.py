"""Real processes: instances forked by the launcher, with the stub engine or tiny test engines.

Covers the process model: own session, environment and log, exit detection without polling,
SIGTERM then SIGKILL, the whole process group going, and nothing left behind when an
instance is deleted or the launcher stops (even when it is killed).
"""

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from fma.launcher.api import EventType, InstanceStatus, VllmConfig
from fma.launcher.engines import StubEngine
from fma.launcher.gpus import GpuTranslator
from fma.launcher.service import LauncherService, ServiceSettings
from fma.launcher.spawner import ForkSpawner

ROOT = Path(__file__).parents[3]
STEP_TIMEOUT_S = 20.0
QUICK_STUB_ENV = {"FMA_STUB_START_S": "0", "FMA_STUB_SLEEP_S": "0.05", "FMA_STUB_WAKE_S": "0.05"}

pytestmark = pytest.mark.timeout(120)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def process_running(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie (a zombie runs nothing)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = STEP_TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.02)


async def wait_for_http(url: str, timeout_s: float = STEP_TIMEOUT_S) -> None:
    """Bounded wait until ``url`` answers 200."""
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=1.0) as client:
        while True:
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"{url} never answered 200"
            await asyncio.sleep(0.05)


@dataclass(frozen=True)
class ScriptEngine:
    """A test engine: runs ``body`` in the forked child; its return value is the exit code."""

    body: Callable[[Sequence[str]], int]
    name: str = "script"

    def preload(self) -> None:
        pass

    def validate(self, options: Sequence[str]) -> None:
        pass

    def serve(self, options: Sequence[str]) -> int:
        return self.body(options)


@asynccontextmanager
async def launcher(
    tmp_path: Path, engine: Any = None, *, stop_grace_s: float = 5.0
) -> AsyncIterator[LauncherService]:
    service = LauncherService(
        spawner=ForkSpawner(engine or StubEngine()),
        translator=GpuTranslator({"GPU-a": 0, "GPU-b": 1}, source="test"),
        settings=ServiceSettings(log_dir=tmp_path, stop_grace_s=stop_grace_s),
    )
    try:
        yield service
    finally:
        await service.close()


async def next_event(stream: AsyncIterator[Any]) -> Any:
    return await asyncio.wait_for(anext(stream), STEP_TIMEOUT_S)


def stub_config(port: int) -> VllmConfig:
    return VllmConfig(
        options=["--model", "m", "--port", str(port), "--host", "127.0.0.1"],
        env_vars=QUICK_STUB_ENV,
    )


def test_a_stub_instance_serves_sleeps_wakes_and_is_deleted(tmp_path: Path) -> None:
    async def scenario() -> None:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        async with launcher(tmp_path) as service:
            state = service.create("s1", stub_config(port))
            await wait_for_http(f"{base}/health")
            async with httpx.AsyncClient(base_url=base, timeout=5.0) as engine:
                prompt = {"model": "m", "prompt": "hello", "max_tokens": 3}
                assert (await engine.post("/v1/completions", json=prompt)).status_code == 200
                assert (await engine.post("/sleep", params={"level": 1})).status_code == 200
                assert (await engine.get("/is_sleeping")).json() == {"is_sleeping": True}
                assert (await engine.post("/v1/completions", json=prompt)).status_code == 503
                assert (await engine.post("/wake_up")).status_code == 200
                assert (await engine.get("/is_sleeping")).json() == {"is_sleeping": False}
                reply = await engine.post("/v1/completions", json=prompt)
                assert len(reply.json()["choices"][0]["text"].split()) == 3
            assert state.pid is not None and process_running(state.pid)
            log = service.log_path("s1")
            assert b"stub engine: model 'm'" in log.read_bytes()
            deleted = await service.delete("s1")
            assert deleted.status is InstanceStatus.STOPPED
            assert not process_running(state.pid)
            assert not log.exists()

    asyncio.run(scenario())


def test_a_crash_is_seen_on_the_watch_stream(tmp_path: Path) -> None:
    async def scenario() -> None:
        port = free_port()
        async with launcher(tmp_path) as service:
            state = service.create("c1", stub_config(port))
            await wait_for_http(f"http://127.0.0.1:{port}/health")
            stream = service.open_watch(since=state.revision)
            assert state.pid is not None
            os.kill(state.pid, signal.SIGKILL)
            event = await next_event(stream)
            assert (event.type, event.object.exit_code) == (EventType.STOPPED, -signal.SIGKILL)
            assert service.get("c1").status is InstanceStatus.STOPPED
            assert not process_running(state.pid)
            await stream.aclose()  # type: ignore[attr-defined]

    asyncio.run(scenario())


def _report_environment(options: Sequence[str]) -> int:
    fds = []
    for entry in Path("/proc/self/fd").iterdir():
        with suppress(OSError):
            fds.append(os.readlink(entry))
    report = {
        "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"),
        "extra": os.environ.get("EXTRA"),
        "options": list(options),
        "own_session": os.getsid(0) == os.getpid(),
        "sockets": [fd for fd in fds if fd.startswith("socket:")],
        "stdin": os.readlink("/proc/self/fd/0"),
    }
    print(json.dumps(report), flush=True)
    return 3


def test_the_child_has_its_session_environment_and_log_and_no_inherited_sockets(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        with socket.socket() as listening:  # an fd the child must not keep
            listening.bind(("127.0.0.1", 0))
            listening.listen()
            async with launcher(tmp_path, ScriptEngine(_report_environment)) as service:
                config = VllmConfig(
                    options=["--a", "b c"], gpu_uuids=["GPU-b", "GPU-a"], env_vars={"EXTRA": "1"}
                )
                stream = service.open_watch(since=0)
                service.create("e1", config)
                assert (await next_event(stream)).type is EventType.CREATED
                stopped = await next_event(stream)
                assert (stopped.type, stopped.object.exit_code) == (EventType.STOPPED, 3)
                report = json.loads(service.log_path("e1").read_text().splitlines()[-1])
                await stream.aclose()  # type: ignore[attr-defined]
        assert report == {
            "cuda": "1,0",
            "extra": "1",
            "options": ["--a", "b c"],
            "own_session": True,
            "sockets": [],
            "stdin": "/dev/null",
        }

    asyncio.run(scenario())


def _ignore_sigterm(options: Sequence[str]) -> int:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = subprocess.Popen(["sleep", "300"])  # in the instance's process group
    print(json.dumps({"grandchild": child.pid}), flush=True)
    time.sleep(300)
    return 0


def test_stop_escalates_to_sigkill_and_takes_the_whole_group(tmp_path: Path) -> None:
    async def scenario() -> None:
        engine = ScriptEngine(_ignore_sigterm)
        async with launcher(tmp_path, engine, stop_grace_s=0.5) as service:
            state = service.create("k1", VllmConfig(options=[]))
            log = service.log_path("k1")
            await asyncio.to_thread(
                wait_until, lambda: b"grandchild" in log.read_bytes(), "the child reported"
            )
            grandchild = json.loads(log.read_text().splitlines()[-1])["grandchild"]
            started_s = time.monotonic()
            deleted = await service.delete("k1")
            assert deleted.exit_code == -signal.SIGKILL
            assert time.monotonic() - started_s >= 0.5
            assert state.pid is not None and not process_running(state.pid)
            await asyncio.to_thread(
                wait_until, lambda: not process_running(grandchild), "the grandchild is gone"
            )

    asyncio.run(scenario())


def test_closing_the_launcher_stops_every_instance(tmp_path: Path) -> None:
    async def scenario() -> list[int]:
        ports = [free_port(), free_port()]
        async with launcher(tmp_path) as service:
            states = [service.create(f"i{n}", stub_config(p)) for n, p in enumerate(ports)]
            for port in ports:
                await wait_for_http(f"http://127.0.0.1:{port}/health")
        return [s.pid for s in states if s.pid is not None]

    pids = asyncio.run(scenario())
    assert len(pids) == 2
    assert not any(process_running(pid) for pid in pids)


def _launcher_process(port: int, log_dir: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "fma.launcher",
            "serve",
            "--engine",
            "stub",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-dir",
            str(log_dir),
            "--stop-grace-s",
            "2",
        ],
        cwd=ROOT,
        env={**os.environ, **QUICK_STUB_ENV},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _start_instance_through(port: int, instance_id: str) -> int:
    """PUT an instance into the launcher on ``port``; wait until it serves; its pid."""
    launcher_url = f"http://127.0.0.1:{port}"
    asyncio.run(wait_for_http(f"{launcher_url}/health"))
    engine_port = free_port()
    reply = httpx.put(
        f"{launcher_url}/v2/vllm/instances/{instance_id}",
        json={"options": ["--port", str(engine_port), "--host", "127.0.0.1"]},
        timeout=10,
    )
    assert reply.status_code == 201, reply.text
    asyncio.run(wait_for_http(f"http://127.0.0.1:{engine_port}/health"))
    pid: int = reply.json()["pid"]
    return pid


@pytest.mark.parametrize(
    "stop_signal", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"]
)
def test_no_instance_outlives_the_launcher_process(tmp_path: Path, stop_signal: int) -> None:
    port = free_port()
    process = _launcher_process(port, tmp_path)
    try:
        pid = _start_instance_through(port, "x1")
        assert process_running(pid)
        process.send_signal(stop_signal)
        process.wait(timeout=STEP_TIMEOUT_S)
        if stop_signal == signal.SIGTERM:
            # uvicorn re-raises the signal it handled once shutdown is complete.
            assert process.returncode in (0, -signal.SIGTERM)
        # SIGKILL gives the launcher no chance; the kernel's parent-death signal stops it.
        wait_until(lambda: not process_running(pid), "the instance is gone")
    finally:
        process.kill()
        process.wait()


def test_an_engine_that_fails_to_start_is_stopped_with_its_reason_in_the_log(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        async with launcher(tmp_path) as service:
            stream = service.open_watch(since=0)
            config = VllmConfig(
                options=["--port", str(free_port())], env_vars={"FMA_STUB_WAKE_S": "soon"}
            )
            service.create("f1", config)
            assert (await next_event(stream)).type is EventType.CREATED
            stopped = await next_event(stream)
            assert (stopped.type, stopped.object.exit_code) == (EventType.STOPPED, 1)
            assert "FMA_STUB_WAKE_S" in service.log_path("f1").read_text()
            await stream.aclose()  # type: ignore[attr-defined]

    asyncio.run(scenario())
