"""Runs the requester's probes and SPI servers in one process, one event loop.

uvicorn's own signal capture is per server; with two servers it would stop one and then
re-raise the signal into the other's default handler. Here one handler stops both.
"""

import asyncio
import contextlib
import os
import signal
from collections.abc import Generator, Mapping
from dataclasses import dataclass

import uvicorn

from fma.api.constants import (
    ENV_PROBES_PORT,
    ENV_SPI_PORT,
    REQUESTER_PROBES_PORT,
    REQUESTER_SPI_PORT,
)
from fma.requester.accelerators import discover
from fma.requester.app import Readiness, create_probes_app, create_spi_app


@dataclass(frozen=True, slots=True)
class RequesterOptions:
    """Where to listen and which GPUs to report."""

    host: str
    probes_port: int
    spi_port: int
    accelerators: tuple[str, ...]


def _port_from_env(environ: Mapping[str, str], name: str, default: int) -> int:
    text = environ.get(name)
    if text is None or not text.strip():
        return default
    if not text.strip().isdigit() or not 1 <= int(text) <= 65535:
        raise ValueError(f"{name}={text!r} is not a TCP port number")
    return int(text)


def options_from_env(
    *, host: str, mock_gpus: str | None, environ: Mapping[str, str]
) -> RequesterOptions:
    """Ports from ``PROBES_PORT``/``SPI_PORT`` (defaults 8080/8081); raises ``ValueError``."""
    probes_port = _port_from_env(environ, ENV_PROBES_PORT, REQUESTER_PROBES_PORT)
    spi_port = _port_from_env(environ, ENV_SPI_PORT, REQUESTER_SPI_PORT)
    if probes_port == spi_port:
        raise ValueError(f"{ENV_PROBES_PORT} and {ENV_SPI_PORT} must differ ({probes_port})")
    accelerators = tuple(discover(mock=mock_gpus, environ=environ))
    return RequesterOptions(host, probes_port, spi_port, accelerators)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # signals are handled once, for both servers, by ``serve``


async def serve(options: RequesterOptions) -> None:
    """Serve probes and SPI until SIGTERM or SIGINT."""
    readiness = Readiness()
    servers = [
        _Server(
            uvicorn.Config(
                create_probes_app(readiness),
                host=options.host,
                port=options.probes_port,
                log_level="info",
                access_log=False,  # the kubelet probes every few seconds
                lifespan="off",
            )
        ),
        _Server(
            uvicorn.Config(
                create_spi_app(readiness, list(options.accelerators)),
                host=options.host,
                port=options.spi_port,
                log_level="info",
                lifespan="off",
            )
        ),
    ]

    def stop() -> None:
        for server in servers:
            server.should_exit = True

    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop)
    try:
        await asyncio.gather(*(server.serve() for server in servers))
    finally:
        stop()


def run(*, host: str, mock_gpus: str | None) -> None:
    """Build options from the environment and serve."""
    asyncio.run(serve(options_from_env(host=host, mock_gpus=mock_gpus, environ=os.environ)))
