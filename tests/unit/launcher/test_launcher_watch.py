"""``GET /v2/vllm/instances/watch``: NDJSON events, revisions, resumption and 410 Gone."""

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fma.launcher.api import INSTANCES_PATH, WATCH_BUFFER_EVENTS_MAX, WATCH_PATH, VllmConfig
from fma.launcher.app import create_app
from fma.launcher.errors import CapacityExhausted
from fma.launcher.gpus import GpuTranslator
from fma.launcher.service import LauncherService, ServiceSettings
from tests.unit.launcher.launcher_fakes import FakeSpawner

BODY = {"options": ["--port", "8100"]}


def events(client: TestClient, **params: object) -> list[dict[str, Any]]:
    """The whole stream of a watch that the launcher ends after a short ``timeout_s``."""
    response = client.get(WATCH_PATH, params={"timeout_s": 0.3, **params})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-ndjson"
    return [json.loads(line) for line in response.text.splitlines()]


def summary(stream: list[dict[str, Any]]) -> list[tuple[object, object, object]]:
    return [(e["type"], e["object"]["instance_id"], e["object"]["revision"]) for e in stream]


def test_without_since_the_stream_starts_with_a_created_per_existing_instance(
    client: TestClient, spawner: FakeSpawner
) -> None:
    client.put(f"{INSTANCES_PATH}/a", json=BODY)
    client.put(f"{INSTANCES_PATH}/b", json=BODY)
    client.delete(f"{INSTANCES_PATH}/a")
    stream = events(client)
    assert [(e["type"], e["object"]["instance_id"]) for e in stream] == [("CREATED", "b")]


def test_since_replays_every_change_in_order(client: TestClient, spawner: FakeSpawner) -> None:
    client.put(f"{INSTANCES_PATH}/a", json=BODY)
    client.put(f"{INSTANCES_PATH}/b", json=BODY)
    client.delete(f"{INSTANCES_PATH}/a")
    stream = events(client, since=0)
    assert summary(stream) == [
        ("CREATED", "a", 1),
        ("CREATED", "b", 2),
        ("STOPPED", "a", 3),
        ("DELETED", "a", 4),
    ]
    assert stream[2]["object"]["exit_code"] == -15
    assert summary(events(client, since=2)) == summary(stream)[2:]


def test_since_equal_to_the_revision_waits_for_news(client: TestClient) -> None:
    client.put(f"{INSTANCES_PATH}/a", json=BODY)
    assert events(client, since=1) == []


def test_a_revision_ahead_of_the_launcher_is_gone(client: TestClient) -> None:
    # What a client sees after the launcher restarted and its counter began again.
    client.put(f"{INSTANCES_PATH}/a", json=BODY)
    response = client.get(WATCH_PATH, params={"since": 5})
    assert response.status_code == 410
    assert "list again" in response.json()["detail"]


@pytest.mark.parametrize("params", [{"since": -1}, {"since": "x"}, {"timeout_s": 0}])
def test_bad_watch_parameters_are_422(client: TestClient, params: dict[str, Any]) -> None:
    assert client.get(WATCH_PATH, params=params).status_code == 422


def test_the_default_buffer_keeps_the_last_thousand_events(tmp_path: Path) -> None:
    assert WATCH_BUFFER_EVENTS_MAX == 1000
    assert ServiceSettings(log_dir=tmp_path).event_buffer_max == 1000


def test_a_revision_older_than_the_buffer_is_gone_and_a_newer_one_resumes(
    tmp_path: Path,
) -> None:
    service = LauncherService(
        spawner=FakeSpawner(),
        translator=GpuTranslator({}, source="test"),
        settings=ServiceSettings(log_dir=tmp_path, stop_grace_s=0.1, event_buffer_max=5),
    )
    with TestClient(create_app(service, engine_name="fake")) as client:
        for n in range(3):  # 3 x (CREATED, STOPPED, DELETED) = revisions 1..9
            client.put(f"{INSTANCES_PATH}/i{n}", json=BODY)
            client.delete(f"{INSTANCES_PATH}/i{n}")
        assert client.get(WATCH_PATH, params={"since": 3}).status_code == 410
        resumed = events(client, since=4)  # 9 - 5: the oldest position still complete
        assert [e["object"]["revision"] for e in resumed] == [5, 6, 7, 8, 9]


def test_the_stream_delivers_changes_as_they_happen(
    client: TestClient, spawner: FakeSpawner
) -> None:
    client.put(f"{INSTANCES_PATH}/a", json=BODY)
    with client.stream("GET", WATCH_PATH, params={"timeout_s": 10}) as response:
        lines = response.iter_lines()
        first = json.loads(next(lines))
        assert (first["type"], first["object"]["instance_id"]) == ("CREATED", "a")
        client.put(f"{INSTANCES_PATH}/b", json=BODY)
        assert json.loads(next(lines))["object"]["instance_id"] == "b"
        spawner.processes["a"].crash(-9)
        stopped = json.loads(next(lines))
        assert (stopped["type"], stopped["object"]["exit_code"]) == ("STOPPED", -9)
        client.delete(f"{INSTANCES_PATH}/a")
        deleted = json.loads(next(lines))
        assert (deleted["type"], deleted["object"]["instance_id"]) == ("DELETED", "a")


def test_the_number_of_watchers_is_bounded(tmp_path: Path) -> None:
    async def scenario() -> None:
        service = LauncherService(
            spawner=FakeSpawner(),
            translator=GpuTranslator({}, source="test"),
            settings=ServiceSettings(log_dir=tmp_path, watcher_count_max=2),
        )
        service.create("a", VllmConfig(options=[]))
        streams = [service.open_watch(None) for _ in range(2)]
        for stream in streams:
            await anext(stream)  # a stream counts once it has started
        with pytest.raises(CapacityExhausted):
            service.open_watch(None)
        await streams[0].aclose()
        third = service.open_watch(None)
        assert (await anext(third)).object.instance_id == "a"
        await service.close()

    asyncio.run(scenario())
