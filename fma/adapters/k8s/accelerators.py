"""Learning each requester's GPUs from its SPI (docs/operator.md, "Asking").

The kubelet's device plugin gives a requester its GPUs; only the requester can say which
(``GET /v1/dual-pods/accelerators`` on its admin port, a JSON list of GPU UUIDs). A
:class:`GpuFetcher` asks once per requester, as soon as it is scheduled, has a Pod IP and its
container runs, and keeps the answer: in the :class:`GpuBook` at once (``changed(node)``
re-queues the requester's node), and on the requester Pod as its
``dual-pods.llm-d.ai/accelerators`` annotation, written through the ``annotate`` callable the
operator supplies. The assignment never changes while the Pod lives, so a requester with the
annotation is never asked again, by this operator or a restarted one.

A failed question is asked again at the pace of :mod:`.pace`: eagerly for ``eager_s`` (the
requester is about to listen: every moment it waits unasked is the controller's latency),
then after ``retry_s_min``, doubling to ``retry_s_max``; after ``ATTEMPTS_QUIET`` of these
patient failures the user is told once (``warn``: a Warning Event ``Unreachable`` on the
requester). An answer
that is not a list of GPU UUIDs (an empty one included) is a fault of the requester that
asking quickly will not mend, so it is asked again only at the slowest rate. A failed write
is retried the same way, the GpuBook keeping the answer meanwhile. One fetch per requester
runs at a time; it is cancelled when the requester is deleted (or begins to be), and the
GpuBook entry is forgotten when the Pod goes.
"""

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Final

import httpx

from fma.adapters.k8s.launchers import (
    Pod,
    Warn,
    annotations_of,
    base_url,
    container_running,
    container_statuses,
    is_deleting,
    pod_ip,
)
from fma.adapters.k8s.observed import GpuBook
from fma.adapters.k8s.pace import ATTEMPTS_QUIET, Asker, Pace, PaceSettings
from fma.adapters.k8s.store import uid_of
from fma.adapters.k8s.trace import OperatorTrace
from fma.api.constants import (
    ANN_ACCELERATORS,
    ANN_ADMIN_PORT,
    ANN_INFERENCE_SERVER_CONFIG,
    ANN_SERVER_PATCH,
    CONTAINER_INFERENCE_SERVER,
    REQUESTER_SPI_PORT,
    SPI_ACCELERATORS_PATH,
)
from fma.launcher.api import GPU_COUNT_MAX, GPU_UUID_PATTERN

_LOG = logging.getLogger("fma.operator")

RETRY_S_MIN: Final = 0.2
RETRY_S_MAX: Final = 10.0
TIMEOUT_S: Final = 10.0
EAGER_S: Final = 5.0
"""How long after its container started a requester is asked eagerly (:mod:`.pace`)."""

_GPU_UUID_RE: Final = re.compile(GPU_UUID_PATTERN)

Annotate = Callable[[str, str, Mapping[str, str]], Awaitable[None]]
"""``annotate(pod_name, uid, annotations)``: merge ``annotations`` into the Pod's, provided it
is still the Pod with that UID; raises on failure."""


def _no_change(node: str) -> None:
    return None


def is_requester(pod: Pod) -> bool:
    annotations = annotations_of(pod)
    return bool(annotations.get(ANN_INFERENCE_SERVER_CONFIG) or annotations.get(ANN_SERVER_PATCH))


def requester_container(pod: Pod) -> str | None:
    """The requester's container: ``inference-server``, else its first."""
    spec = pod.get("spec")
    containers = spec.get("containers") if isinstance(spec, Mapping) else None
    names = [c.get("name") for c in containers or () if isinstance(c, Mapping)]
    if CONTAINER_INFERENCE_SERVER in names:
        return CONTAINER_INFERENCE_SERVER
    if names and isinstance(names[0], str):
        return names[0]
    statuses = container_statuses(pod)
    first = statuses[0].get("name") if statuses else None
    return first if isinstance(first, str) else None


def admin_port(pod: Pod) -> int:
    """The requester's SPI port: its ``admin-port`` annotation, else 8081."""
    text = str(annotations_of(pod).get(ANN_ADMIN_PORT) or "").strip()
    try:
        port = int(text)
    except ValueError:
        return REQUESTER_SPI_PORT
    return port if 1 <= port <= 65535 else REQUESTER_SPI_PORT


def _node_name(pod: Pod) -> str | None:
    spec = pod.get("spec")
    node = spec.get("nodeName") if isinstance(spec, Mapping) else None
    return node if isinstance(node, str) and node else None


def _askable(pod: Pod) -> str | None:
    """The SPI's URL, once the requester can answer: scheduled, with an IP, its container
    running."""
    ip = pod_ip(pod)
    container = requester_container(pod)
    if _node_name(pod) is None or ip is None or container is None:
        return None
    if not container_running(pod, container):
        return None
    return base_url(ip, admin_port(pod))


class AnswerInvalid(Exception):
    """The SPI answered, but not with a list of GPU UUIDs."""


def parse_gpus(body: object) -> tuple[str, ...]:
    """The GPU UUIDs of an SPI answer; raises :class:`AnswerInvalid`."""
    if not isinstance(body, list):
        raise AnswerInvalid(f"not a JSON list: {str(body)[:200]}")
    if not body:
        raise AnswerInvalid("the assigned set of GPUs is empty")
    if len(body) > GPU_COUNT_MAX:
        raise AnswerInvalid(f"more than {GPU_COUNT_MAX} GPUs")
    for gpu in body:
        if not isinstance(gpu, str) or not _GPU_UUID_RE.fullmatch(gpu):
            raise AnswerInvalid(f"not a GPU UUID: {str(gpu)[:200]!r}")
    if len(set(body)) != len(body):
        raise AnswerInvalid(f"a GPU is listed twice: {body}")
    return tuple(body)


class GpuFetcher:
    """One task per requester whose GPUs are not known yet, until they are known and written.

    ``annotate`` writes the annotation; ``changed(node)`` is called when the GpuBook learns a
    requester's GPUs; ``warn`` tells the user of a requester whose SPI keeps failing to
    answer. :meth:`pod_changed` is called for every Pod event, on the event loop
    the tasks run on; :meth:`stop` ends every task, and the events after it are ignored.
    """

    def __init__(
        self,
        *,
        gpus: GpuBook,
        annotate: Annotate,
        trace: OperatorTrace,
        changed: Callable[[str], None] = _no_change,
        warn: Warn | None = None,
        http: httpx.AsyncClient | None = None,
        retry_s_min: float = RETRY_S_MIN,
        retry_s_max: float = RETRY_S_MAX,
        eager_s: float = EAGER_S,
        timeout_s: float = TIMEOUT_S,
    ) -> None:
        self._gpus = gpus
        self._annotate = annotate
        self._trace = trace
        self._changed = changed
        self._warn = warn
        self._own_http = http is None
        self._http = http if http is not None else httpx.AsyncClient()
        self._retry_s_min = retry_s_min
        self._retry_s_max = max(retry_s_min, retry_s_max)
        self._pace = Pace(
            PaceSettings(
                eager_s=eager_s, interval_s_min=retry_s_min, interval_s_max=self._retry_s_max
            )
        )
        self._timeout = httpx.Timeout(timeout_s)
        self._pods: dict[str, Pod] = {}
        """Requester name -> its latest version."""
        self._fetches: dict[str, asyncio.Task[None]] = {}
        """Requester name -> its one fetch (or write) under way."""
        self._live: set[asyncio.Task[None]] = set()
        """Every task not yet ended, cancelled ones included (``stop`` waits for them)."""
        self._written: set[str] = set()
        """UIDs whose annotation this object wrote (its Pod event may not have come yet)."""
        self._open = True

    # --- life ------------------------------------------------------------------------------------

    async def stop(self) -> None:
        """Cancel every fetch (and close the HTTP client if it is this object's own)."""
        self._open = False
        self._fetches.clear()
        tasks = list(self._live)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._own_http:
            await self._http.aclose()

    def fetching(self) -> frozenset[str]:
        """The requesters (by name) whose GPUs are being asked for or written now."""
        return frozenset(self._fetches)

    # --- Pod events ------------------------------------------------------------------------------

    def pod_changed(self, pod: Pod | None, name: str) -> None:
        """The Pod called ``name`` is now ``pod`` (None: it was deleted)."""
        if not self._open:
            return
        known = self._pods.get(name)
        if known is not None and (
            pod is None or uid_of(pod) != uid_of(known) or not is_requester(pod)
        ):
            self._cancel(name)
            del self._pods[name]
            self._gpus.forget(uid_of(known))
            self._written.discard(uid_of(known))
        if pod is None or not is_requester(pod):
            return
        self._pods[name] = pod
        uid = uid_of(pod)
        if is_deleting(pod) or annotations_of(pod).get(ANN_ACCELERATORS):
            self._cancel(name)  # going, or known for good
            return
        if name in self._fetches or uid in self._written:
            return
        if self._gpus.gpus(uid) is None and _askable(pod) is None:
            return
        task = asyncio.get_running_loop().create_task(
            self._learn(name, uid), name=f"accelerators/{name}"
        )
        self._live.add(task)
        task.add_done_callback(partial(self._ended, name))
        self._fetches[name] = task

    def _cancel(self, name: str) -> None:
        task = self._fetches.pop(name, None)
        if task is not None:
            task.cancel()

    def _ended(self, name: str, task: "asyncio.Task[None]") -> None:
        self._live.discard(task)
        if self._fetches.get(name) is task:
            del self._fetches[name]
        if not task.cancelled() and task.exception() is not None:
            _LOG.error("%s ended", task.get_name(), exc_info=task.exception())

    # --- one requester ---------------------------------------------------------------------------

    async def _learn(self, name: str, uid: str) -> None:
        gpus = self._gpus.gpus(uid)
        if gpus is None:
            gpus = await self._fetch(name, uid)
            self._gpus.set(uid, gpus)
            _LOG.info("requester %s: GPUs %s", name, ",".join(gpus))
            try:
                self._trace.record("accelerators", requester=uid, gpus=list(gpus))
                node = _node_name(self._pods.get(name) or {})
                if node is not None:
                    self._changed(node)
            except Exception:  # the answer is kept: the write below must still happen
                _LOG.exception("requester %s: recording its GPUs failed", name)
        await self._write(name, uid, gpus)
        self._written.add(uid)

    async def _fetch(self, name: str, uid: str) -> tuple[str, ...]:
        """Ask the SPI until it answers with a list of GPU UUIDs, at the pace's rhythm."""
        with self._pace.asker() as asker:
            while True:
                pod = self._pods.get(name)
                url = _askable(pod) if pod is not None else None
                wait_s: float | None = None
                if url is not None:
                    try:
                        return await self._ask(url)
                    except AnswerInvalid as invalid:
                        wait_s = self._retry_s_max
                        _LOG.warning(
                            "requester %s: %s answered badly: %s; again in %.1f s",
                            name,
                            SPI_ACCELERATORS_PATH,
                            invalid,
                            wait_s,
                        )
                    except Exception as error:
                        asker.asked()
                        wait_s = asker.wait_s()
                        await self._failed(name, uid, url, error, asker, wait_s)
                await asyncio.sleep(asker.wait_s() if wait_s is None else wait_s)

    async def _failed(
        self, name: str, uid: str, url: str, error: Exception, asker: Asker, wait_s: float
    ) -> None:
        """Log a failed question (quietly while the requester is young) and, after
        ``ATTEMPTS_QUIET`` patient ones, tell the user once."""
        patient = asker.attempts_patient
        level = logging.DEBUG if asker.eager else logging.INFO
        if patient > ATTEMPTS_QUIET:
            level = logging.WARNING
        reason = str(error) or type(error).__name__
        _LOG.log(
            level,
            "requester %s: asking %s%s failed: %s; again in %.2f s",
            name,
            url,
            SPI_ACCELERATORS_PATH,
            reason,
            wait_s,
            exc_info=not isinstance(error, httpx.HTTPError),
        )
        if patient == ATTEMPTS_QUIET + 1 and self._warn is not None:
            await self._warn(
                name,
                uid,
                f"the requester's SPI does not answer at {url}{SPI_ACCELERATORS_PATH}: "
                f"{reason}; asked again with back-off (at most {self._retry_s_max:g} s apart)",
            )

    async def _ask(self, url: str) -> tuple[str, ...]:
        response = await self._http.get(url + SPI_ACCELERATORS_PATH, timeout=self._timeout)
        if response.status_code != 200:
            raise httpx.HTTPStatusError(
                f"answered {response.status_code}: {response.text[:200]}",
                request=response.request,
                response=response,
            )
        try:
            body = response.json()
        except ValueError as error:
            raise AnswerInvalid(f"not JSON: {response.text[:200]!r}") from error
        return parse_gpus(body)

    async def _write(self, name: str, uid: str, gpus: tuple[str, ...]) -> None:
        """Put the GPUs on the requester Pod, until the write succeeds."""
        delay_s = self._retry_s_min
        while True:
            try:
                await self._annotate(name, uid, {ANN_ACCELERATORS: ",".join(gpus)})
                return
            except Exception as error:
                _LOG.warning(
                    "requester %s: writing %s failed: %s; again in %.1f s",
                    name,
                    ANN_ACCELERATORS,
                    str(error) or type(error).__name__,
                    delay_s,
                )
            await asyncio.sleep(delay_s)
            delay_s = min(self._retry_s_max, delay_s * 2)
