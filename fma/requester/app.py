"""The requester's two HTTP faces: probes for the kubelet, and the SPI for the controller.

The requester runs no model. It holds GPUs in the scheduler's books, tells the controller
which ones (``GET /v1/dual-pods/accelerators``), and reflects the readiness the controller
relays from the bound server-providing Pod (``POST /v1/become-ready`` / ``become-unready``)
on its own readiness probe, so Services and autoscalers that watch only requesters see it.
The controller also points the requester's TCP proxy at the bound provider
(``PUT /v1/proxy/config``; :mod:`fma.requester.proxy_config`).

Probes: ``GET /health`` is always 200 while the process serves; ``GET /ready`` is 200 after
become-ready and 503 before it and after become-unready.
"""

from typing import Final

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from fma.api.constants import (
    SPI_ACCELERATORS_PATH,
    SPI_BECOME_READY_PATH,
    SPI_BECOME_UNREADY_PATH,
    SPI_PROXY_CONFIG_PATH,
)
from fma.asgi.limits import BodySizeLimit
from fma.requester.proxy_config import (
    ProxyConfigurator,
    ProxyConflict,
    ProxyFailed,
    TargetInvalid,
    parse_target,
)

HEALTH_PATH: Final = "/health"
READY_PATH: Final = "/ready"
REQUEST_BODY_BYTES_MAX: Final = 64 * 1024


class Readiness:
    """The relayed readiness: False until the controller says otherwise."""

    def __init__(self) -> None:
        self.ready = False


def create_probes_app(readiness: Readiness) -> FastAPI:
    """The probes server (``--probes-port``)."""
    app = FastAPI(title="FMA requester probes", openapi_url=None)

    @app.get(HEALTH_PATH)
    async def health() -> dict[str, str]:
        return {"status": "OK"}

    @app.get(READY_PATH)
    async def ready() -> JSONResponse:
        return JSONResponse(
            status_code=200 if readiness.ready else 503, content={"ready": readiness.ready}
        )

    return app


def _error(status: int, detail: str) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": detail})


def create_spi_app(
    readiness: Readiness, accelerators: list[str], proxy: ProxyConfigurator
) -> FastAPI:
    """The SPI server (``--spi-port``) the controller calls."""
    app = FastAPI(title="FMA requester SPI")
    app.add_middleware(BodySizeLimit, limit_bytes=REQUEST_BODY_BYTES_MAX)
    held = list(accelerators)

    @app.get(SPI_ACCELERATORS_PATH)
    async def get_accelerators() -> list[str]:
        return held

    @app.post(SPI_BECOME_READY_PATH)
    async def become_ready() -> dict[str, bool]:
        readiness.ready = True
        return {"ready": True}

    @app.post(SPI_BECOME_UNREADY_PATH)
    async def become_unready() -> dict[str, bool]:
        readiness.ready = False
        return {"ready": False}

    @app.get(SPI_PROXY_CONFIG_PATH)
    async def get_proxy_config() -> JSONResponse:
        """200 with the target once the proxy listens; 404 before; 500 if it cannot."""
        if proxy.target is not None:
            return JSONResponse(proxy.target.model_dump())
        if proxy.failure is not None:
            return _error(500, proxy.failure)
        return _error(404, "the proxy is not configured")

    @app.put(SPI_PROXY_CONFIG_PATH)
    async def put_proxy_config(request: Request) -> JSONResponse:
        """200 once the proxy listens (again for the same target); 409 for another target;
        500 when the listener cannot start; 400/422 for a bad body."""
        try:
            target = parse_target(await request.body())
        except TargetInvalid as invalid:
            return _error(invalid.status, invalid.detail)
        try:
            configured = await proxy.configure(target)
        except ProxyConflict as conflict:
            return _error(409, str(conflict))
        except ProxyFailed as failed:
            return _error(500, str(failed))
        return JSONResponse(configured.model_dump())

    return app
