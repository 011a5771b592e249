"""The operator's HTTP calls to requesters, engines and launchers: timed, logged, classified.

Every call has an explicit, short timeout (:class:`CallTimeouts`) and logs one line on the
``fma.operator`` logger when it ends, in the form a benchmark harness parses (upstream's
``HTTP call done``, double-quoted ``key="value"`` pairs)::

    HTTP call done requesterName="my-req" purpose="wake" method="POST"
    url="http://10.0.0.7:8000/wake_up" httpCallStartTime="2026-01-02T03:04:05.678901234Z"
    latencySecs="3.012345" statusCode="200" err=""

``statusCode`` is ``0`` when no answer came. A call that does not succeed raises
:class:`CallError`, classified in the outcome taxonomy (:mod:`fma.core.outcomes`):

- no connection (refused, unreachable, a connect timeout: the request was never sent) —
  ``TRANSIENT``;
- a timeout after the request was sent, or a connection lost mid-answer — ``UNKNOWN`` (it
  may have been applied);
- 404 (and 410) ``NOT_FOUND``; 409 ``CONFLICT``; 429 and 5xx ``TRANSIENT``; 400, 422 and any
  other 4xx ``INVALID``; an answer that is not what the endpoint promises — ``INVALID``.

The requester's SPI (``/v1/dual-pods/accelerators``, ``/v1/become-ready``,
``/v1/become-unready``, ``/v1/proxy/config``) and vLLM's endpoints (``/health``,
``POST /sleep?level=1``, ``POST /wake_up``, ``GET /is_sleeping``) are called here directly;
the launcher through :class:`~fma.launcher.client.LauncherClient`. Nothing here knows of
Kubernetes objects: callers pass addresses.
"""

import datetime as dt
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, TypeVar

import httpx
from pydantic import ValidationError

from fma.api.constants import (
    SPI_ACCELERATORS_PATH,
    SPI_BECOME_READY_PATH,
    SPI_BECOME_UNREADY_PATH,
    SPI_PROXY_CONFIG_PATH,
)
from fma.core.outcomes import OutcomeKind
from fma.launcher.api import INSTANCES_PATH, InstanceList, InstanceState, VllmConfig
from fma.launcher.client import LauncherClient, LauncherClientError

log = logging.getLogger("fma.operator")

T = TypeVar("T")

ENGINE_HEALTH_PATH: Final = "/health"
ENGINE_SLEEP_PATH: Final = "/sleep"
ENGINE_WAKE_PATH: Final = "/wake_up"
ENGINE_IS_SLEEPING_PATH: Final = "/is_sleeping"
SLEEP_LEVEL: Final = 1
"""Level-1 sleep: weights to host memory, the KV cache dropped."""
DETAIL_CHARS_MAX: Final = 500
"""An error answer's text is cut to this many characters in messages and logs."""


class Purpose(StrEnum):
    """What a call is for: upstream's ``purpose`` values (logs and metrics)."""

    GET_GPU_UUIDS = "get_gpu_uuids"
    RELAY_READY = "relay_ready"
    RELAY_UNREADY = "relay_unready"
    CONFIGURE_PROXY = "configure_proxy"
    SLEEP = "sleep"
    WAKE = "wake"
    QUERY_SLEEPING = "query_sleeping"
    GET_HEALTH = "get_health"
    CREATE_INSTANCE = "create_instance"
    DELETE_INSTANCE = "delete_instance"
    LIST_INSTANCES = "list_instances"


@dataclass(frozen=True, slots=True)
class CallTimeouts:
    """Seconds each call may take. ``move_s`` is the read timeout of a sleep or a wake (vLLM
    answers only once the weights have moved); ``stop_s`` that of a launcher DELETE of an
    engine still on its GPUs (the launcher answers once the process has exited: SIGTERM, its
    grace period, then SIGKILL). The launcher client takes one timeout for connecting and
    reading alike."""

    connect_s: float = 2.0
    read_s: float = 5.0
    move_s: float = 30.0
    stop_s: float = 45.0


class CallError(Exception):
    """A call that did not succeed: its ``kind`` in the outcome taxonomy, a one-line
    ``message``, and the answer's ``status`` (0: no answer)."""

    def __init__(self, kind: OutcomeKind, message: str, *, status: int = 0) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.status = status


def rfc3339(t_s: float) -> str:
    """Unix seconds as RFC 3339 in UTC with microseconds: ``2026-01-02T03:04:05.678901Z``."""
    return dt.datetime.fromtimestamp(t_s, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def rfc3339_nano(t_s: float) -> str:
    """Unix seconds as RFC 3339 in UTC with nanoseconds, Go's ``RFC3339Nano`` as the logs of
    upstream's controller carry it: ``2026-01-02T03:04:05.678901234Z`` (nine digits, as fine
    as the float gives them)."""
    whole = int(t_s // 1)
    nanos = round((t_s - whole) * 1e9)
    if nanos >= 1_000_000_000:
        whole, nanos = whole + 1, nanos - 1_000_000_000
    stamp = dt.datetime.fromtimestamp(whole, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{nanos:09d}Z"


def base_url(ip: str, port: int) -> str:
    """``http://<ip>:<port>``, an IPv6 address in brackets."""
    host = f"[{ip}]" if ":" in ip else ip
    return f"http://{host}:{port}"


def log_fields(**fields: object) -> str:
    """``key="value"`` pairs, each value quoted as JSON quotes a string."""
    return " ".join(f"{key}={json.dumps(str(value))}" for key, value in fields.items())


def status_kind(status: int) -> OutcomeKind:
    """The outcome kind of an error answer."""
    if status in (404, 410):
        return OutcomeKind.NOT_FOUND
    if status == 409:
        return OutcomeKind.CONFLICT
    if status == 429 or status >= 500:
        return OutcomeKind.TRANSIENT
    if 400 <= status < 500:
        return OutcomeKind.INVALID
    return OutcomeKind.UNKNOWN


def transport_kind(error: httpx.HTTPError) -> OutcomeKind:
    """The outcome kind of a call that got no (complete) answer: not sent is ``TRANSIENT``,
    perhaps applied is ``UNKNOWN``."""
    if isinstance(error, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return OutcomeKind.TRANSIENT
    return OutcomeKind.UNKNOWN


def _detail(response: httpx.Response) -> str:
    """The error text of an answer: its JSON ``detail`` (FastAPI) or ``error.message``
    (vLLM), else its text."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        body = None
    if isinstance(body, dict):
        detail = body.get("detail")
        error = body.get("error")
        if detail is None and isinstance(error, dict):
            detail = error.get("message")
        if detail is not None:
            text = detail if isinstance(detail, str) else json.dumps(detail)
            return text[:DETAIL_CHARS_MAX]
    return response.text[:DETAIL_CHARS_MAX]


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class _StatusRecorder(httpx.AsyncBaseTransport):
    """Passes requests on and remembers the last answer's status (for the launcher client,
    whose results do not carry it)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner
        self.status = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        self.status = response.status_code
        return response

    async def aclose(self) -> None:
        return None  # the inner transport is shared: its owner closes it


class Calls:
    """The operator's calls. One connection pool for requesters and engines, another for the
    launchers (a launcher client per call over it: a transport of its own per call would cost
    a TLS context, milliseconds, on every instance's creation). ``wall_clock`` gives the
    logged start times; ``transport`` replaces the network (tests); ``listener`` hears of
    every call that ended: ``(purpose, method, status, seconds, requester name)``, ``status``
    0 when no answer came (the metrics)."""

    def __init__(
        self,
        *,
        timeouts: CallTimeouts = CallTimeouts(),
        transport: httpx.AsyncBaseTransport | None = None,
        wall_clock: Callable[[], float] = time.time,
        listener: Callable[[str, str, int, float, str], None] | None = None,
    ) -> None:
        self.timeouts = timeouts
        self._listener = listener
        self._transport = transport
        self._wall_clock = wall_clock
        self._http = httpx.AsyncClient(transport=transport, follow_redirects=False)
        self._launchers = transport if transport is not None else httpx.AsyncHTTPTransport()

    async def aclose(self) -> None:
        await self._http.aclose()
        if self._transport is None:
            await self._launchers.aclose()

    # --- the requester's SPI ---------------------------------------------------------------

    async def accelerators(self, ip: str, port: int, requester_name: str) -> tuple[str, ...]:
        """The GPU UUIDs the requester holds (its SPI's JSON list of strings)."""
        url = base_url(ip, port) + SPI_ACCELERATORS_PATH
        response = await self._request(Purpose.GET_GPU_UUIDS, "GET", url, requester_name)
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        if not isinstance(body, list) or not all(isinstance(u, str) and u for u in body):
            raise CallError(
                OutcomeKind.INVALID,
                f"GET {url}: the answer is not a JSON list of GPU UUIDs: "
                f"{response.text[:DETAIL_CHARS_MAX]}",
                status=response.status_code,
            )
        return tuple(body)

    async def relay(self, ip: str, port: int, ready: bool, requester_name: str) -> None:
        """Make the requester's readiness ``ready`` (``become-ready`` / ``become-unready``)."""
        path = SPI_BECOME_READY_PATH if ready else SPI_BECOME_UNREADY_PATH
        purpose = Purpose.RELAY_READY if ready else Purpose.RELAY_UNREADY
        await self._request(purpose, "POST", base_url(ip, port) + path, requester_name)

    async def configure_proxy(
        self, ip: str, port: int, address: str, engine_port: int, requester_name: str
    ) -> None:
        """Point the requester's proxy at ``address:engine_port``. Done (200) also when it
        already forwards there. The proxy forwarding elsewhere (409), or unable to listen
        (500, for good: the requester must be restarted), is ``INVALID``: a requester's
        target never changes, so retrying cannot help."""
        url = base_url(ip, port) + SPI_PROXY_CONFIG_PATH
        body = {"address": address, "port": engine_port}
        try:
            await self._request(Purpose.CONFIGURE_PROXY, "PUT", url, requester_name, body=body)
        except CallError as error:
            if error.status == 409:
                raise CallError(
                    OutcomeKind.INVALID,
                    f"the requester's proxy serves another target, not {address}:"
                    f"{engine_port}: {error.message}",
                    status=409,
                ) from None
            if error.status == 500:
                raise CallError(
                    OutcomeKind.INVALID,
                    f"the requester's proxy cannot forward: {error.message}",
                    status=500,
                ) from None
            raise

    # --- the engine (vLLM) ---------------------------------------------------------------------

    async def sleep(self, ip: str, port: int, requester_name: str = "") -> None:
        """A level-1 sleep; returns once the weights are in host memory."""
        url = f"{base_url(ip, port)}{ENGINE_SLEEP_PATH}?level={SLEEP_LEVEL}"
        await self._request(Purpose.SLEEP, "POST", url, requester_name, read_s=self.timeouts.move_s)

    async def wake(self, ip: str, port: int, requester_name: str = "") -> None:
        """A wake; returns once the weights are back on the GPUs."""
        url = base_url(ip, port) + ENGINE_WAKE_PATH
        await self._request(Purpose.WAKE, "POST", url, requester_name, read_s=self.timeouts.move_s)

    async def is_sleeping(self, ip: str, port: int, requester_name: str = "") -> bool:
        """Whether the engine is asleep (``{"is_sleeping": bool}``)."""
        url = base_url(ip, port) + ENGINE_IS_SLEEPING_PATH
        response = await self._request(Purpose.QUERY_SLEEPING, "GET", url, requester_name)
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = None
        value = body.get("is_sleeping") if isinstance(body, dict) else None
        if not isinstance(value, bool):
            raise CallError(
                OutcomeKind.INVALID,
                f"GET {url}: the answer has no boolean is_sleeping: "
                f"{response.text[:DETAIL_CHARS_MAX]}",
                status=response.status_code,
            )
        return value

    async def health(self, ip: str, port: int, requester_name: str = "") -> bool:
        """True when ``/health`` answers 200, False for any other answer (vLLM answers 503
        while it cannot serve); a :class:`CallError` when no answer came (nothing listens
        yet, or it hangs)."""
        url = base_url(ip, port) + ENGINE_HEALTH_PATH
        try:
            await self._request(Purpose.GET_HEALTH, "GET", url, requester_name)
        except CallError as error:
            if error.status:
                return False
            raise
        return True

    # --- the launcher ------------------------------------------------------------------------

    async def create_instance(
        self, ip: str, port: int, instance_id: str, config: VllmConfig, requester_name: str = ""
    ) -> InstanceState:
        """Start ``instance_id`` (the launcher answers 201 once the process is spawned); an
        existing id is ``CONFLICT``."""
        return await self._launcher(
            Purpose.CREATE_INSTANCE,
            "PUT",
            base_url(ip, port),
            f"{INSTANCES_PATH}/{instance_id}",
            requester_name,
            self.timeouts.read_s,
            lambda client: client.create(config, instance_id),
        )

    async def delete_instance(
        self,
        ip: str,
        port: int,
        instance_id: str,
        requester_name: str = "",
        *,
        stopping: bool = False,
    ) -> InstanceState:
        """Stop and forget ``instance_id``; an unknown one is ``NOT_FOUND``. ``stopping``: the
        engine is on its GPUs, so the launcher answers only once it has stopped (the longer
        ``stop_s`` applies)."""
        read_s = self.timeouts.stop_s if stopping else self.timeouts.read_s
        return await self._launcher(
            Purpose.DELETE_INSTANCE,
            "DELETE",
            base_url(ip, port),
            f"{INSTANCES_PATH}/{instance_id}",
            requester_name,
            read_s,
            lambda client: client.delete(instance_id),
        )

    async def list_instances(self, ip: str, port: int, requester_name: str = "") -> InstanceList:
        """Every instance of the launcher, with its revision."""
        return await self._launcher(
            Purpose.LIST_INSTANCES,
            "GET",
            base_url(ip, port),
            f"{INSTANCES_PATH}?detail=true",
            requester_name,
            self.timeouts.read_s,
            lambda client: client.list(),
        )

    # --- internals -----------------------------------------------------------------------------

    async def _request(
        self,
        purpose: Purpose,
        method: str,
        url: str,
        requester_name: str,
        *,
        read_s: float | None = None,
        body: Any = None,
    ) -> httpx.Response:
        """One call; the answer when it succeeded (2xx), else a :class:`CallError`."""
        timeout = httpx.Timeout(
            self.timeouts.read_s if read_s is None else read_s, connect=self.timeouts.connect_s
        )
        started_wall_s, started_s = self._wall_clock(), time.perf_counter()
        status, err = 0, ""
        try:
            try:
                response = await self._http.request(method, url, json=body, timeout=timeout)
            except httpx.HTTPError as error:
                err = _describe(error)
                raise CallError(transport_kind(error), f"{method} {url}: {err}") from None
            status = response.status_code
            if not response.is_success:
                err = f"answered {status}: {_detail(response)}"
                raise CallError(status_kind(status), f"{method} {url}: {err}", status=status)
            return response
        finally:
            self._log(purpose, method, url, requester_name, started_wall_s, started_s, status, err)

    async def _launcher(
        self,
        purpose: Purpose,
        method: str,
        base: str,
        path: str,
        requester_name: str,
        timeout_s: float,
        call: Callable[[LauncherClient], Awaitable[T]],
    ) -> T:
        """One launcher call (``method`` ``path``, for the log) through a
        :class:`LauncherClient` of the launcher at ``base``."""
        recorder = _StatusRecorder(self._launchers)
        url = base + path
        started_wall_s, started_s = self._wall_clock(), time.perf_counter()
        err = ""
        try:
            async with LauncherClient(base, timeout_s=timeout_s, transport=recorder) as client:
                return await call(client)
        except LauncherClientError as error:
            err = f"answered {error.status}: {error.detail[:DETAIL_CHARS_MAX]}"
            raise CallError(
                status_kind(error.status), f"{method} {url}: {err}", status=error.status
            ) from None
        except httpx.HTTPError as error:
            err = _describe(error)
            raise CallError(transport_kind(error), f"{method} {url}: {err}") from None
        except (ValidationError, json.JSONDecodeError, UnicodeDecodeError) as error:
            err = f"an answer that is not the launcher's: {' '.join(str(error).split())}"
            raise CallError(
                OutcomeKind.INVALID, f"{method} {url}: {err}"[:DETAIL_CHARS_MAX], status=0
            ) from None
        finally:
            self._log(
                purpose,
                method,
                url,
                requester_name,
                started_wall_s,
                started_s,
                recorder.status,
                err,
            )

    def _log(
        self,
        purpose: Purpose,
        method: str,
        url: str,
        requester_name: str,
        started_wall_s: float,
        started_s: float,
        status: int,
        err: str,
    ) -> None:
        seconds = time.perf_counter() - started_s
        log.info(
            "HTTP call done %s",
            log_fields(
                requesterName=requester_name,
                purpose=purpose.value,
                method=method,
                url=url,
                httpCallStartTime=rfc3339_nano(started_wall_s),
                latencySecs=f"{seconds:.6f}",
                statusCode=status,
                err=err,
            ),
        )
        if self._listener is not None:
            self._listener(purpose.value, method, status, seconds, requester_name)
