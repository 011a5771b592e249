"""The requester's two HTTP faces: probes for the kubelet, and the SPI for the controller.

The requester runs no model. It holds GPUs in the scheduler's books, tells the controller
which ones (``GET /v1/dual-pods/accelerators``), and reflects the readiness the controller
relays from the bound server-providing Pod (``POST /v1/become-ready`` / ``become-unready``)
on its own readiness probe, so Services and autoscalers that watch only requesters see it.

Probes: ``GET /health`` is always 200 while the process serves; ``GET /ready`` is 200 after
become-ready and 503 before it and after become-unready.
"""

from typing import Final

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from fma.api.constants import SPI_ACCELERATORS_PATH, SPI_BECOME_READY_PATH, SPI_BECOME_UNREADY_PATH
from fma.asgi.limits import BodySizeLimit

HEALTH_PATH: Final = "/health"
READY_PATH: Final = "/ready"
REQUEST_BODY_BYTES_MAX: Final = 64 * 1024


class Readiness:
    """The relayed readiness: False until the controller says otherwise."""

    def __init__(self) -> None:
        self.ready = False


def create_probes_app(readiness: Readiness) -> FastAPI:
    """The probes server (``PROBES_PORT``)."""
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


def create_spi_app(readiness: Readiness, accelerators: list[str]) -> FastAPI:
    """The SPI server (``SPI_PORT``) the controller calls."""
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

    return app
