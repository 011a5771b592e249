"""The launcher's HTTP routes (FastAPI): wire in, service call, wire out.

Routes stay thin: validation is the pydantic models of :mod:`fma.launcher.api`, behaviour
is :class:`fma.launcher.service.LauncherService`, and each domain error maps to exactly one
status code here. ``create_app`` is the only constructor; nothing is built at import time.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, Final

from fastapi import FastAPI, Header, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST
from starlette.concurrency import run_in_threadpool

import fma
from fma.asgi.limits import BodySizeLimit
from fma.launcher import logrange
from fma.launcher.api import (
    HEALTH_PATH,
    INSTANCE_ID_CHARS_MAX,
    INSTANCE_ID_PATTERN,
    INSTANCE_LOG_PATH,
    INSTANCE_PATH,
    INSTANCES_PATH,
    LOG_CHUNK_BYTES_MAX,
    LOG_MEDIA_TYPE,
    METRICS_PATH,
    NDJSON_MEDIA_TYPE,
    REQUEST_BODY_BYTES_MAX,
    RESERVED_INSTANCE_IDS,
    ROOT_PATH,
    WATCH_PATH,
    DeleteAllResult,
    ErrorResponse,
    HealthResponse,
    InstanceIdList,
    InstanceList,
    InstanceState,
    ServiceInfo,
    VllmConfig,
    WatchEvent,
)
from fma.launcher.errors import (
    CapacityExhausted,
    DuplicateInstance,
    InvalidRequest,
    LauncherError,
    RevisionGone,
    SpawnFailed,
    UnknownInstance,
)
from fma.launcher.metrics import LauncherMetrics
from fma.launcher.service import LauncherService

WATCH_TIMEOUT_S_MAX: Final = 86400.0

_STATUS_OF_ERROR: Final[list[tuple[type[LauncherError], int]]] = [
    (UnknownInstance, 404),
    (DuplicateInstance, 409),
    (RevisionGone, 410),
    (InvalidRequest, 422),
    (CapacityExhausted, 503),
    (SpawnFailed, 500),
]

InstanceIdParam = Annotated[
    str,
    PathParam(min_length=1, max_length=INSTANCE_ID_CHARS_MAX, pattern=INSTANCE_ID_PATTERN),
]
_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    400: {"model": ErrorResponse},
    404: {"model": ErrorResponse},
    409: {"model": ErrorResponse},
    410: {"model": ErrorResponse},
    416: {"model": ErrorResponse},
    422: {"description": "Invalid input"},
    503: {"model": ErrorResponse},
}


def create_app(
    service: LauncherService,
    *,
    engine_name: str,
    on_shutdown: Callable[[], Awaitable[None]] | None = None,
    metrics: LauncherMetrics | None = None,
) -> FastAPI:
    """The launcher's ASGI app around ``service``; at shutdown it stops every instance,
    then runs ``on_shutdown``. ``metrics`` samples the instances for ``GET /metrics``
    (default: ``service``'s, their engines and NVML)."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await service.close()
            if on_shutdown is not None:
                await on_shutdown()

    app = FastAPI(
        title="FMA launcher",
        summary="Multi-Instance vLLM Management API",
        version=fma.__version__,
        lifespan=lifespan,
    )
    app.add_middleware(BodySizeLimit, limit_bytes=REQUEST_BODY_BYTES_MAX)

    for error_type, status in _STATUS_OF_ERROR:
        app.add_exception_handler(error_type, _error_handler(status))

    _add_service_routes(app, engine_name)
    _add_instance_routes(app, service)
    _add_log_route(app, service)
    _add_metrics_route(app, metrics or LauncherMetrics(lambda: service.list_detail().instances))
    return app


def _error_handler(status: int) -> Callable[[Request, Exception], Awaitable[Response]]:
    async def handle(_: Request, error: Exception) -> Response:
        return JSONResponse(status_code=status, content={"detail": str(error)})

    return handle


def _add_service_routes(app: FastAPI, engine_name: str) -> None:
    @app.get(ROOT_PATH)
    async def root() -> ServiceInfo:
        paths = sorted({getattr(r, "path", "") for r in app.routes} - {""})
        return ServiceInfo(
            name="FMA launcher", version=fma.__version__, engine=engine_name, endpoints=paths
        )

    @app.get(HEALTH_PATH)
    async def health() -> HealthResponse:
        return HealthResponse()


def _add_metrics_route(app: FastAPI, metrics: LauncherMetrics) -> None:
    @app.get(METRICS_PATH, response_class=Response)
    async def scrape() -> Response:
        return Response(await metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


def _add_instance_routes(app: FastAPI, service: LauncherService) -> None:
    @app.post(INSTANCES_PATH, status_code=201, response_model_exclude_none=True, responses=_ERRORS)
    async def create_instance(config: VllmConfig) -> InstanceState:
        return service.create(str(uuid.uuid4()), config)

    # Declared before INSTANCE_PATH, or "watch" would be taken for an instance id.
    @app.get(WATCH_PATH, responses=_ERRORS)
    async def watch(
        since: Annotated[int | None, Query(ge=0)] = None,
        timeout_s: Annotated[float | None, Query(gt=0, le=WATCH_TIMEOUT_S_MAX)] = None,
    ) -> StreamingResponse:
        stream = service.open_watch(since)
        return StreamingResponse(_ndjson(stream, timeout_s), media_type=NDJSON_MEDIA_TYPE)

    @app.put(INSTANCE_PATH, status_code=201, response_model_exclude_none=True, responses=_ERRORS)
    async def put_instance(instance_id: InstanceIdParam, config: VllmConfig) -> InstanceState:
        if instance_id in RESERVED_INSTANCE_IDS:
            raise InvalidRequest(f"instance id {instance_id!r} is reserved")
        return service.create(instance_id, config)

    @app.get(INSTANCES_PATH, response_model_exclude_none=True)
    async def list_instances(detail: bool = True) -> InstanceList | InstanceIdList:
        return service.list_detail() if detail else service.list_ids()

    @app.get(INSTANCE_PATH, response_model_exclude_none=True, responses=_ERRORS)
    async def get_instance(instance_id: InstanceIdParam) -> InstanceState:
        return service.get(instance_id)

    @app.delete(INSTANCE_PATH, response_model_exclude_none=True, responses=_ERRORS)
    async def delete_instance(instance_id: InstanceIdParam) -> InstanceState:
        return await service.delete(instance_id)

    @app.delete(INSTANCES_PATH)
    async def delete_all() -> DeleteAllResult:
        ids = await service.delete_all()
        return DeleteAllResult(stopped_instances=ids, total_stopped=len(ids))


async def _ndjson(
    stream: AsyncIterator[WatchEvent], timeout_s: float | None
) -> AsyncIterator[bytes]:
    """The watch stream as NDJSON lines, ended after ``timeout_s`` when given."""
    loop = asyncio.get_running_loop()
    deadline = None if timeout_s is None else loop.time() + timeout_s
    try:
        while True:
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return
            try:
                event = await asyncio.wait_for(anext(stream), remaining)
            except (StopAsyncIteration, TimeoutError):
                return
            yield (event.model_dump_json(exclude_none=True) + "\n").encode()
    finally:
        await _aclose(stream)


async def _aclose(stream: AsyncIterator[WatchEvent]) -> None:
    close = getattr(stream, "aclose", None)
    if close is not None:
        await close()


def _add_log_route(app: FastAPI, service: LauncherService) -> None:
    @app.get(
        INSTANCE_LOG_PATH,
        response_class=Response,
        responses={
            200: {"content": {LOG_MEDIA_TYPE: {}}},
            206: {"content": {LOG_MEDIA_TYPE: {}}},
            **_ERRORS,
        },
    )
    async def read_log(
        instance_id: InstanceIdParam,
        range_header: Annotated[str | None, Header(alias="Range", max_length=200)] = None,
    ) -> Response:
        path = service.log_path(instance_id)
        try:
            size = path.stat().st_size
        except OSError:
            size = 0
        try:
            span = logrange.select(range_header, size=size, chunk_bytes_max=LOG_CHUNK_BYTES_MAX)
        except logrange.BadRange as error:
            return JSONResponse(status_code=400, content={"detail": str(error)})
        except logrange.UnsatisfiableRange as error:
            return JSONResponse(
                status_code=416,
                content={"detail": str(error)},
                headers={"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"},
            )
        status = 200 if range_header is None else 206
        if span is None:
            headers = {"Accept-Ranges": "bytes", "Content-Range": f"bytes */{size}"}
            return Response(b"", status_code=status, media_type=LOG_MEDIA_TYPE, headers=headers)
        data = await run_in_threadpool(_read_span, path, span.start, span.length)
        if not data:
            return JSONResponse(
                status_code=416,
                content={"detail": "the log shrank while it was read"},
                headers={"Content-Range": f"bytes */{size}", "Accept-Ranges": "bytes"},
            )
        sent = logrange.ByteSpan(span.start, span.start + len(data) - 1, span.size)
        headers = {"Accept-Ranges": "bytes", "Content-Range": sent.content_range()}
        return Response(data, status_code=status, media_type=LOG_MEDIA_TYPE, headers=headers)


def _read_span(path: Path, start: int, length: int) -> bytes:
    try:
        with path.open("rb") as handle:
            handle.seek(start)
            return handle.read(length)
    except OSError:
        return b""
