"""The launcher's composition root: settings in, a running server out.

Everything the launcher is made of is constructed here, once per process, in order: the GPU
map, the engine (pre-imported now, so every instance forks with it loaded), the log
directory, the spawner, the service and the ASGI app. Nothing is built at import time.
"""

import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from fastapi import FastAPI

from fma.launcher.app import create_app
from fma.launcher.engines import engine_by_name
from fma.launcher.gpus import build_translator
from fma.launcher.service import LauncherService, ServiceSettings
from fma.launcher.spawner import ForkSpawner

_LOG = logging.getLogger("fma.launcher")
GRACEFUL_SHUTDOWN_S: Final = 3
"""How long the HTTP server waits for open responses (watch streams never end by
themselves) before it cancels them and stops the instances."""


@dataclass(frozen=True, slots=True)
class LauncherOptions:
    """What ``fma launcher serve`` is asked for."""

    host: str = "0.0.0.0"  # noqa: S104 (a launcher Pod is called at its Pod IP)
    port: int = 8001
    engine: str = "vllm"
    mock_gpus: int | None = None
    gpu_map: Path | None = None
    log_dir: Path | None = None
    stop_grace_s: float = 10.0
    instance_count_max: int = 64


def build_app(options: LauncherOptions) -> FastAPI:
    """Construct the launcher; raises ``ValueError``/``OSError`` for bad options."""
    translator = build_translator(
        mock_gpus=options.mock_gpus, gpu_map_file=options.gpu_map, environ=os.environ
    )
    _LOG.info("GPU map from %s: %d GPUs", translator.source, len(translator.uuids))
    engine = engine_by_name(options.engine)
    started_s = time.monotonic()
    engine.preload()
    _LOG.info("engine %s loaded in %.1f s", engine.name, time.monotonic() - started_s)
    owned_log_dir = options.log_dir is None
    log_dir = (
        Path(tempfile.mkdtemp(prefix=f"fma-launcher-{os.getpid()}-"))
        if options.log_dir is None
        else options.log_dir
    )
    log_dir.mkdir(parents=True, exist_ok=True)
    service = LauncherService(
        spawner=ForkSpawner(engine),
        translator=translator,
        settings=ServiceSettings(
            log_dir=log_dir,
            stop_grace_s=options.stop_grace_s,
            instance_count_max=options.instance_count_max,
        ),
    )

    async def remove_owned_log_dir() -> None:
        if owned_log_dir:
            shutil.rmtree(log_dir, ignore_errors=True)

    return create_app(service, engine_name=engine.name, on_shutdown=remove_owned_log_dir)


def run(options: LauncherOptions) -> None:
    """Serve until SIGTERM/SIGINT; then stop every instance."""
    import uvicorn

    app = build_app(options)
    uvicorn.run(
        app,
        host=options.host,
        port=options.port,
        log_level="info",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
