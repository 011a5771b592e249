"""Runs the requester's probes and SPI servers, and its proxy once configured, in one process
and one event loop.

uvicorn's own signal capture is per server; with two servers it would stop one and then
re-raise the signal into the other's default handler. Here one handler stops both, and then
the proxy (its relayed connections are cut: the requester is going away).

uvicorn's lines (``Uvicorn running on ...`` when a server listens, and one access line per
SPI call; the kubelet's probes are not logged) go through the root handler, timestamped like
the requester's own: the log then says when the requester could first be asked and when the
controller called it.
"""

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Generator

import uvicorn

from fma.requester.app import (
    HEALTH_PATH,
    READY_PATH,
    Readiness,
    create_probes_app,
    create_spi_app,
)
from fma.requester.options import RequesterOptions, build_options
from fma.requester.proxy_config import ProxyConfigurator

_LOG = logging.getLogger("fma.requester")
PROBE_PATHS = frozenset({HEALTH_PATH, READY_PATH})


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # signals are handled once, for both servers, by ``serve``


def _not_a_probe(record: logging.LogRecord) -> bool:
    """Drops the access lines of the kubelet's probes (uvicorn's access logger is shared by
    both servers; its lines carry the path third)."""
    args = record.args
    return not (isinstance(args, tuple) and len(args) > 2 and args[2] in PROBE_PATHS)


async def serve(options: RequesterOptions) -> None:
    """Serve probes and SPI until SIGTERM or SIGINT; then close the proxy."""
    _LOG.info(
        "requester: host %s, probes port %d, SPI port %d, proxy port %d (opened once "
        "configured), proxy dial timeout %g s, GPUs %s",
        options.host,
        options.probes_port,
        options.spi_port,
        options.proxy_port,
        options.proxy_dial_timeout_s,
        ", ".join(options.accelerators) or "none",
    )
    readiness = Readiness()
    proxy = ProxyConfigurator(
        listen_host=options.host,
        listen_port=options.proxy_port,
        dial_timeout_s=options.proxy_dial_timeout_s,
    )
    servers = [
        _Server(
            uvicorn.Config(
                create_probes_app(readiness),
                host=options.host,
                port=options.probes_port,
                log_level="info",
                lifespan="off",
            )
        ),
        _Server(
            uvicorn.Config(
                create_spi_app(readiness, list(options.accelerators), proxy),
                host=options.host,
                port=options.spi_port,
                log_level="info",
                lifespan="off",
            )
        ),
    ]

    for name in ("uvicorn", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers = []  # uvicorn's own, without timestamps
        uvicorn_logger.propagate = True
    logging.getLogger("uvicorn.access").addFilter(_not_a_probe)

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
        await proxy.close()


def run(
    *,
    host: str,
    probes_port: str | None,
    spi_port: str | None,
    proxy_port: str | None,
    proxy_dial_timeout: str | None,
    mock_gpus: str | None,
) -> None:
    """Build options from the flags and the environment (raises ``ValueError``), and serve."""
    options = build_options(
        host=host,
        probes_port=probes_port,
        spi_port=spi_port,
        proxy_port=proxy_port,
        proxy_dial_timeout=proxy_dial_timeout,
        mock_gpus=mock_gpus,
        environ=os.environ,
    )
    asyncio.run(serve(options))
