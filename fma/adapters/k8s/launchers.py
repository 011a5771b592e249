"""Following each launcher's instance list into the :class:`ReportBook` (docs/operator.md,
"Asking").

One task per launcher Pod whose ``inference-server`` container runs and that has a Pod IP
follows the launcher's watch stream (:meth:`LauncherClient.watch`: a ``Resync`` with the
complete state after every (re)list, then the events after it) and keeps the Pod's
:class:`LauncherReport` complete. After each change it calls ``changed(provider)``, which the
operator turns into a re-queue of the Pod's node.

A report belongs to one run of one launcher container: the Pod's UID and its containers'
restart count when the stream was opened. When the Pod goes, changes UID, or its container
stops or restarts, the stream is closed; a launcher whose container stopped has lost its
instances, so the report and the :class:`EngineBook` notes of the Pod are forgotten at once,
not when a new stream says so. A launcher that is not up yet, or that stops answering, is
asked again at the pace of :mod:`.pace` — eagerly while it starts, then with a capped
exponential back-off — through one client per container run; after ``ATTEMPTS_QUIET``
patient failures the user is told once (``warn``: a Warning Event ``Unreachable`` on the
launcher Pod), and again only after a stream delivered in between.
A stream silent for ``stream_idle_s`` is reopened (a fresh list), so a connection that died
without a word is not trusted forever.

The report decides what the engines' notes still mean: an instance that leaves it is gone (a
``STOPPING`` note is then finished, and ``instance_deleted`` recorded); one that shows
``stopped`` for the first time exited (``instance_stopped``).

The Pod-reading helpers at the top are shared with the engine probes and the GPU fetcher.
"""

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Protocol, Self

import httpx

from fma.adapters.k8s.engines import EngineBook
from fma.adapters.k8s.observed import LauncherReport, ReportBook
from fma.adapters.k8s.pace import ATTEMPTS_QUIET, Asker, Pace, PaceSettings
from fma.adapters.k8s.store import pod_node, uid_of
from fma.adapters.k8s.trace import OperatorTrace
from fma.api.constants import (
    CONTAINER_INFERENCE_SERVER,
    LABEL_LAUNCHER_CONFIG_NAME,
    LAUNCHER_PORT,
    STUB_ENGINE_PORT,
    VLLM_CONFIG_INFERENCE_PORT,
)
from fma.core.model import InstanceState
from fma.launcher.api import EventType, InstanceStatus
from fma.launcher.api import InstanceState as ReportedInstance
from fma.launcher.client import LauncherClient, LauncherClientError, Resync, WatchItem

_LOG = logging.getLogger("fma.operator")

RETRY_S_MIN: Final = 0.1
RETRY_S_MAX: Final = 5.0
EAGER_S: Final = 5.0
"""How long after its container started a launcher is asked eagerly (:mod:`.pace`): until its
instance list has arrived, its node's reconciles wait."""
STREAM_IDLE_S: Final = 300.0
"""A stream that delivered nothing for this long is reopened (the launcher sends no
heartbeats, so a dead connection is otherwise silent)."""
ENGINE_PORT_DEFAULT: Final = STUB_ENGINE_PORT
"""vLLM's default ``--port``, for an instance whose config names no port."""
REASON_UNREACHABLE: Final = "Unreachable"

Pod = Mapping[str, Any]
Warn = Callable[[str, str, str], Awaitable[None]]
"""``warn(pod_name, uid, message)``: tell the user, with a Warning Event ``Unreachable`` on the
Pod (if it is still the Pod with that UID), that its process does not answer; never raises."""

# --- reading Pods (shared by the asking tasks) ---------------------------------------------------


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def labels_of(pod: Pod) -> Mapping[str, Any]:
    return _mapping(_mapping(pod.get("metadata")).get("labels"))


def annotations_of(pod: Pod) -> Mapping[str, Any]:
    return _mapping(_mapping(pod.get("metadata")).get("annotations"))


def is_launcher(pod: Pod) -> bool:
    return LABEL_LAUNCHER_CONFIG_NAME in labels_of(pod)


def is_deleting(pod: Pod) -> bool:
    return bool(_mapping(pod.get("metadata")).get("deletionTimestamp"))


def pod_ip(pod: Pod) -> str | None:
    ip = _mapping(pod.get("status")).get("podIP")
    return ip if isinstance(ip, str) and ip else None


def container_statuses(pod: Pod) -> list[Mapping[str, Any]]:
    statuses = _mapping(pod.get("status")).get("containerStatuses")
    return [s for s in statuses if isinstance(s, Mapping)] if isinstance(statuses, list) else []


def container_running(pod: Pod, container: str) -> bool:
    """Whether the Pod shows ``container`` running."""
    for status in container_statuses(pod):
        if status.get("name") == container:
            return "running" in _mapping(status.get("state"))
    return False


def restart_count(pod: Pod) -> int:
    """The sum of the Pod's container restart counts."""
    total = 0
    for status in container_statuses(pod):
        count = status.get("restartCount")
        total += count if isinstance(count, int) and not isinstance(count, bool) else 0
    return total


def base_url(ip: str, port: int) -> str:
    """``http://<ip>:<port>``, with an IPv6 address in brackets."""
    host = f"[{ip}]" if ":" in ip else ip
    return f"http://{host}:{port}"


def instance_port(state: ReportedInstance) -> int:
    """The port a launcher's instance serves on: its config's ``inference-port`` annotation
    (what the operator puts there), else its ``--port`` option, else vLLM's default."""
    text = (state.annotations or {}).get(VLLM_CONFIG_INFERENCE_PORT)
    if text is None:
        options = state.options
        for index, option in enumerate(options):
            if option == "--port" and index + 1 < len(options):
                text = options[index + 1]
            elif option.startswith("--port="):
                text = option.removeprefix("--port=")
    try:
        port = int(text) if text is not None else ENGINE_PORT_DEFAULT
    except ValueError:
        return ENGINE_PORT_DEFAULT
    return port if 1 <= port <= 65535 else ENGINE_PORT_DEFAULT


def _no_change(provider: str) -> None:
    return None


class WatchClient(Protocol):
    """What a watch needs of a launcher client (:class:`LauncherClient` is one)."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def watch(self, *, failure_count_max: int = ...) -> AsyncIterator[WatchItem]: ...


# --- the watches ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Target:
    """What a stream is opened for: one run of one launcher container, at one address."""

    uid: str
    ip: str
    restarts: int


def _target(pod: Pod | None) -> _Target | None:
    if pod is None or not is_launcher(pod):
        return None
    ip = pod_ip(pod)
    if ip is None or not container_running(pod, CONTAINER_INFERENCE_SERVER):
        return None
    return _Target(uid_of(pod), ip, restart_count(pod))


@dataclass(slots=True)
class _Watch:
    target: _Target
    task: "asyncio.Task[None] | None" = None


class LauncherWatches:
    """One watch-stream task per running launcher Pod, keeping ``reports`` up to date.

    ``connect(base_url)`` makes the client of one stream (closed with it);
    ``changed(provider)`` is called after every change of a report, including its removal;
    ``warn`` tells the user of a launcher that keeps failing to answer.
    :meth:`pod_changed` is called for every Pod event, on the event loop the tasks run on;
    :meth:`stop` ends every task, and the events after it are ignored.
    """

    def __init__(
        self,
        *,
        reports: ReportBook,
        engines: EngineBook,
        trace: OperatorTrace,
        changed: Callable[[str], None] = _no_change,
        warn: Warn | None = None,
        connect: Callable[[str], WatchClient] = LauncherClient,
        port: int = LAUNCHER_PORT,
        retry_s_min: float = RETRY_S_MIN,
        retry_s_max: float = RETRY_S_MAX,
        eager_s: float = EAGER_S,
        stream_idle_s: float = STREAM_IDLE_S,
    ) -> None:
        self._reports = reports
        self._engines = engines
        self._trace = trace
        self._changed = changed
        self._warn = warn
        self._connect = connect
        self._port = port
        self._pace = Pace(
            PaceSettings(
                eager_s=eager_s,
                interval_s_min=retry_s_min,
                interval_s_max=max(retry_s_min, retry_s_max),
            )
        )
        self._stream_idle_s = stream_idle_s
        self._watches: dict[str, _Watch] = {}
        self._runs: dict[str, tuple[str, int]] = {}
        """Launcher Pod name -> (UID, restarts) of the container run last watched."""
        self._nodes: dict[str, str] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        """Every task not yet ended, cancelled ones included (``stop`` waits for them)."""
        self._open = True

    # --- life ------------------------------------------------------------------------------------

    async def stop(self) -> None:
        """Close every stream; what the reports say is kept."""
        self._open = False
        self._watches.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def watching(self) -> frozenset[str]:
        """The launcher Pods whose streams are followed now."""
        return frozenset(self._watches)

    # --- Pod events ------------------------------------------------------------------------------

    def pod_changed(self, pod: Pod | None, name: str) -> None:
        """The Pod called ``name`` is now ``pod`` (None: it was deleted)."""
        if not self._open:
            return
        target = _target(pod)
        node = pod_node(pod) if pod is not None else None
        if node:
            self._nodes[name] = node
        watch = self._watches.get(name)
        if watch is not None and watch.target == target:
            return
        if watch is not None:
            del self._watches[name]
            if watch.task is not None:
                watch.task.cancel()
        run = self._runs.get(name)
        if run is not None and (target is None or (target.uid, target.restarts) != run):
            self._lose(name, pod, run)
        if pod is None:
            self._nodes.pop(name, None)
        if target is not None:
            self._runs[name] = (target.uid, target.restarts)
            watch = _Watch(target)
            self._watches[name] = watch
            watch.task = asyncio.get_running_loop().create_task(
                self._follow(name, watch), name=f"launcher-watch/{name}"
            )
            self._tasks.add(watch.task)
            watch.task.add_done_callback(self._ended)

    def _ended(self, task: "asyncio.Task[None]") -> None:
        """A watch ends only when cancelled; anything else is a fault worth a log line."""
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _LOG.error("%s ended", task.get_name(), exc_info=task.exception())

    def _lose(self, name: str, pod: Pod | None, run: tuple[str, int]) -> None:
        """The launcher container run ``run`` is over: its instances are gone with it."""
        del self._runs[name]
        report = self._reports.report(name)
        self._reports.forget(name)
        crashed = pod is not None and uid_of(pod) == run[0] and not is_deleting(pod)
        if crashed:
            instances = report.instances if report is not None else {}
            for instance_id, state in sorted(instances.items()):
                self._record(
                    "instance_deleted", name, instance_id, state, reason="launcher crashed"
                )
            self._trace.record("launcher_crashed", provider=name)
            _LOG.info("launcher %s: its container stopped or restarted; instances forgotten", name)
        self._engines.forget(name)
        self._changed(name)

    # --- one stream ------------------------------------------------------------------------------

    async def _follow(self, name: str, watch: _Watch) -> None:
        """Follow the launcher's stream until cancelled, with one client for the container
        run, reconnecting at the pace of :mod:`.pace` after a failure."""
        url = base_url(watch.target.ip, self._port)
        loop = asyncio.get_running_loop()
        streak: Asker | None = None
        """The pace of the failures since the stream last delivered."""
        try:
            async with self._connect(url) as client:
                while True:
                    try:
                        items = client.watch(failure_count_max=1)
                        try:
                            async with asyncio.timeout(self._stream_idle_s) as deadline:
                                async for item in items:
                                    deadline.reschedule(loop.time() + self._stream_idle_s)
                                    self._apply(name, watch, item)
                                    if streak is not None:
                                        streak.__exit__(None, None, None)
                                        streak = None
                        finally:
                            await _close(items)
                    except TimeoutError:
                        _LOG.debug(
                            "launcher %s: nothing for %.0f s: relisting", name, self._stream_idle_s
                        )
                        continue
                    except Exception as error:
                        if streak is None:
                            streak = self._pace.asker().__enter__()
                        streak.asked()
                        wait_s = streak.wait_s()
                        await self._failed(name, watch, url, error, streak, wait_s)
                        await asyncio.sleep(wait_s)
        finally:
            if streak is not None:
                streak.__exit__(None, None, None)

    async def _failed(
        self, name: str, watch: _Watch, url: str, error: Exception, streak: Asker, wait_s: float
    ) -> None:
        """Log a failure (quietly while the launcher is young) and, after ``ATTEMPTS_QUIET``
        patient ones, tell the user once per streak."""
        patient = streak.attempts_patient
        level = logging.DEBUG if streak.eager else logging.INFO
        if patient > ATTEMPTS_QUIET:
            level = logging.WARNING
        _LOG.log(
            level,
            "launcher %s (%s): watch failed: %s; again in %.2f s",
            name,
            url,
            _describe(error),
            wait_s,
            exc_info=not _expected(error),
        )
        if patient == ATTEMPTS_QUIET + 1 and self._warn is not None:
            await self._warn(
                name,
                watch.target.uid,
                f"the launcher does not answer at {url}: {_describe(error)}; asked again with "
                f"back-off (at most {self._pace.settings.interval_s_max:g} s apart)",
            )

    def _apply(self, name: str, watch: _Watch, item: WatchItem) -> None:
        if self._watches.get(name) is not watch:
            return  # superseded: a later Pod event closed this stream
        old = self._reports.report(name)
        target = watch.target
        if old is not None and (old.pod_uid, old.restarts) != (target.uid, target.restarts):
            old = None
        if isinstance(item, Resync):
            instances = {state.instance_id: state for state in item.instances}
            self._reports.seen(name, instances)
            # An instance the operator created after the picture was taken (the launcher's
            # answer, ReportBook.add_instance) is not gone: the stream will show it next. A
            # picture older than the report is of a restarted launcher: nothing is kept.
            kept = old.instances if old is not None and item.revision >= old.revision else {}
            for instance_id, revision in list(self._reports.unseen(name).items()):
                if instance_id in kept and revision > item.revision:
                    instances[instance_id] = kept[instance_id]
                else:
                    self._reports.seen(name, (instance_id,))  # the picture says it is gone
            revision = item.revision
        else:
            instances = dict(old.instances) if old is not None else {}
            state = item.object
            self._reports.seen(name, (state.instance_id,))
            if item.type is EventType.DELETED:
                instances.pop(state.instance_id, None)
            else:
                instances[state.instance_id] = state
            revision = state.revision
        new = LauncherReport(target.uid, target.restarts, revision, instances)
        if new == old:
            return
        self._reports.set(name, new)
        self._observe(name, old, new)
        self._changed(name)

    def _observe(self, name: str, old: LauncherReport | None, new: LauncherReport) -> None:
        """What the change says of the engines: the notes of instances gone are forgotten (a
        stop under way is finished); a first ``stopped`` is an exit."""
        before = old.instances if old is not None else {}
        for instance_id in sorted(set(before) - set(new.instances)):
            note = self._engines.note(name, instance_id)
            self._engines.forget(name, instance_id)
            stopping = note is not None and note.phase is InstanceState.STOPPING
            reason = "deleted" if stopping else "vanished"
            self._record("instance_deleted", name, instance_id, before[instance_id], reason=reason)
        if old is None:
            return  # first sight: what happened before is not known
        for instance_id, state in sorted(new.instances.items()):
            if state.status is not InstanceStatus.STOPPED:
                continue
            previous = before.get(instance_id)
            if previous is not None and previous.status is InstanceStatus.STOPPED:
                continue
            note = self._engines.note(name, instance_id)
            if note is not None and note.phase is InstanceState.STOPPING:
                continue  # the controller's own stop, not an exit
            self._record("instance_stopped", name, instance_id, state)

    def _record(
        self, kind: str, name: str, instance_id: str, state: ReportedInstance, **extra: Any
    ) -> None:
        self._trace.record(
            kind,
            provider=name,
            instance=instance_id,
            node=self._nodes.get(name),
            gpus=list(state.gpu_uuids or ()),
            port=instance_port(state),
            **extra,
        )


async def _close(items: AsyncIterator[WatchItem]) -> None:
    if isinstance(items, AsyncGenerator):
        await items.aclose()


def _expected(error: Exception) -> bool:
    """Failures of the network or of the launcher, as opposed to a fault of ours."""
    return isinstance(error, httpx.HTTPError | LauncherClientError)


def _describe(error: Exception) -> str:
    return str(error) or type(error).__name__
