"""The launcher client against a live launcher (fake processes): calls, errors, and the
resumable watch that re-lists when the launcher answers 410."""

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn

from fma.launcher.api import EventType, VllmConfig, WatchEvent
from fma.launcher.app import create_app
from fma.launcher.client import (
    InstanceExists,
    InstanceNotFound,
    LauncherClient,
    LauncherClientError,
    Resync,
    WatchItem,
)
from fma.launcher.gpus import GpuTranslator
from fma.launcher.service import LauncherService, ServiceSettings
from tests.unit.launcher.launcher_fakes import FakeSpawner

CONFIG = VllmConfig(options=["--port", "8100"], gpu_uuids=["GPU-1"])
STEP_TIMEOUT_S = 10.0


@contextmanager
def live_launcher(service: LauncherService) -> Iterator[str]:
    """Serve the launcher on a free loopback port in a thread; yields its base URL."""
    config = uvicorn.Config(
        create_app(service, engine_name="fake"),
        host="127.0.0.1",
        port=0,
        log_level="warning",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + STEP_TIMEOUT_S
    while not server.started:
        assert time.monotonic() < deadline, "the launcher did not start"
        assert thread.is_alive(), "the launcher thread died"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(STEP_TIMEOUT_S)


@pytest.fixture
def spawner() -> FakeSpawner:
    return FakeSpawner(log_text=b"0123456789")


@pytest.fixture
def base_url(spawner: FakeSpawner, tmp_path: Path) -> Iterator[str]:
    service = LauncherService(
        spawner=spawner,
        translator=GpuTranslator({"GPU-0": 0, "GPU-1": 1}, source="test"),
        settings=ServiceSettings(log_dir=tmp_path, stop_grace_s=0.2, event_buffer_max=4),
    )
    with live_launcher(service) as url:
        yield url


async def next_item(items: AsyncIterator[WatchItem]) -> WatchItem:
    return await asyncio.wait_for(anext(items), STEP_TIMEOUT_S)


def test_calls_and_their_errors(base_url: str) -> None:
    async def scenario() -> None:
        async with LauncherClient(base_url) as client:
            assert await client.healthy()
            created = await client.create(CONFIG, "a")
            assert created.env_vars == {"CUDA_VISIBLE_DEVICES": "1"}
            assert (await client.get("a")) == created
            generated = await client.create(VllmConfig(options=[]))
            assert (await client.list()).total_instances == 2
            assert set((await client.list_ids()).instance_ids) == {"a", generated.instance_id}
            assert await client.read_log("a", 2, 4) == b"234"
            assert await client.read_log("a", 100) == b""
            with pytest.raises(InstanceExists):
                await client.create(CONFIG, "a")
            with pytest.raises(LauncherClientError) as unknown_gpu:
                await client.create(VllmConfig(options=[], gpu_uuids=["GPU-9"]), "b")
            assert unknown_gpu.value.status == 422
            assert (await client.delete("a")).status == "stopped"
            with pytest.raises(InstanceNotFound):
                await client.get("a")
            assert (await client.delete_all()).total_stopped == 1

    asyncio.run(scenario())


def test_watch_lists_then_streams_changes(base_url: str, spawner: FakeSpawner) -> None:
    async def scenario() -> None:
        async with LauncherClient(base_url) as client, LauncherClient(base_url) as other:
            await other.create(CONFIG, "a")
            items = client.watch()
            first = await next_item(items)
            assert isinstance(first, Resync)
            assert [s.instance_id for s in first.instances] == ["a"]
            await other.create(CONFIG, "b")
            created = await next_item(items)
            assert isinstance(created, WatchEvent)
            assert (created.type, created.object.instance_id) == (EventType.CREATED, "b")
            spawner.processes["b"].crash(-11)
            stopped = await next_item(items)
            assert isinstance(stopped, WatchEvent)
            assert (stopped.type, stopped.object.exit_code) == (EventType.STOPPED, -11)
            await items.aclose()  # type: ignore[attr-defined]

    asyncio.run(scenario())


def test_watch_relists_when_its_position_left_the_buffer(base_url: str) -> None:
    async def scenario() -> None:
        async with LauncherClient(base_url) as client, LauncherClient(base_url) as other:
            items = client.watch()
            first = await next_item(items)
            assert isinstance(first, Resync) and first.revision == 0
            for n in range(3):  # 9 events (created, stopped, deleted): more than 4
                await other.create(CONFIG, f"i{n}")
                await other.delete(f"i{n}")
            await other.create(CONFIG, "kept")
            resync = await next_item(items)
            assert isinstance(resync, Resync)
            assert resync.revision == 10
            assert [s.instance_id for s in resync.instances] == ["kept"]
            await items.aclose()  # type: ignore[attr-defined]

    asyncio.run(scenario())


def test_watch_gives_up_after_repeated_connection_failures() -> None:
    async def scenario() -> None:
        # Nothing listens on port 9 of the loopback (discard): every attempt is refused.
        async with LauncherClient("http://127.0.0.1:9", timeout_s=1) as client:
            assert not await client.healthy()
            with pytest.raises(Exception, match=r"(?i)connect"):
                async for _ in client.watch(failure_count_max=2):
                    pass

    asyncio.run(scenario())
