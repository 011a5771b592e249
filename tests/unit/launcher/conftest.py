"""Fixtures: the launcher app around a fake spawner, served by Starlette's TestClient."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from fma.launcher.app import create_app
from fma.launcher.gpus import GpuTranslator
from fma.launcher.service import LauncherService, ServiceSettings
from tests.unit.launcher.launcher_fakes import FakeSpawner

GPU_MAP = {"GPU-aaaa": 0, "GPU-bbbb": 1, "GPU-cccc": 3}


@pytest.fixture
def spawner() -> FakeSpawner:
    return FakeSpawner(log_text=b"".join(b"line %03d\n" % n for n in range(100)))


@pytest.fixture
def settings(tmp_path: Path) -> ServiceSettings:
    return ServiceSettings(log_dir=tmp_path, stop_grace_s=0.2, instance_count_max=4)


@pytest.fixture
def service(spawner: FakeSpawner, settings: ServiceSettings) -> LauncherService:
    return LauncherService(
        spawner=spawner, translator=GpuTranslator(GPU_MAP, source="test"), settings=settings
    )


@pytest.fixture
def client(service: LauncherService) -> Iterator[TestClient]:
    with TestClient(create_app(service, engine_name="fake")) as test_client:
        yield test_client
