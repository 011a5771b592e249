"""Asking engines what phase they are in, when the operator has no note of it (docs/operator.md,
"Asking").

A launcher reports an instance ``running`` whether vLLM is loading, serving or asleep, and a
direct provider's Pod only that its container runs. When the :class:`EngineBook` has no note
of such an engine (one just created, or found after the operator restarted; for a direct
provider, none for its container's current run), or notes it ``STARTING``, an
:class:`EngineProbes` task asks the engine itself: ``GET /health``, then ``GET /is_sleeping``.

- An answer is the phase: ``AWAKE`` or ``SLEEPING`` (an engine that serves ``/health`` but
  has no ``/is_sleeping``, which vLLM has only with ``VLLM_SERVER_DEV_MODE=1``, cannot have
  been put to sleep: ``AWAKE``). A starting engine that begins to answer, and an engine
  found for the first time, are recorded in the trace (``instance_awake`` or
  ``instance_sleeping``): after a restart, the trace learns how what was in flight ended.
- No answer yet (loading): ``STARTING`` is noted once, and the engine is asked again at the
  pace of :mod:`.pace`: eagerly for ``eager_s`` (a stub or a small model is about to serve,
  and every moment it serves unasked is the controller's latency), then after
  ``interval_s_min``, doubling to ``interval_s_max``.

A probe never overwrites what the executor noted meanwhile (a wake, a sleep or a stop under
way, or its end): the note is read again after each answer, before anything is written. A
probe ends when its engine answers, or when its Pod, its report or its instance is gone; at
most ``probes_max`` ask at once.

The operator calls :meth:`EngineProbes.pod_changed` for every Pod event and
:meth:`EngineProbes.reconsider` after every change of a launcher's report (and of an engine
note), so a new engine is asked at once.
"""

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Final

import httpx

from fma.adapters.k8s.engines import EngineBook, EngineNote
from fma.adapters.k8s.launchers import (
    Pod,
    annotations_of,
    base_url,
    container_running,
    instance_port,
    is_launcher,
    pod_ip,
    restart_count,
)
from fma.adapters.k8s.observed import ReportBook, container_run
from fma.adapters.k8s.pace import Pace, PaceSettings
from fma.adapters.k8s.render.direct import direct_engine_port
from fma.adapters.k8s.render.errors import RenderError
from fma.adapters.k8s.store import name_of, pod_node, uid_of
from fma.adapters.k8s.trace import OperatorTrace
from fma.adapters.k8s.views import provider_facts
from fma.api.constants import (
    ANN_ACCELERATORS,
    ANN_NOMINAL,
    CONTAINER_INFERENCE_SERVER,
)
from fma.core.model import InstanceState
from fma.launcher.api import InstanceStatus

_LOG = logging.getLogger("fma.operator")

INTERVAL_S_MIN: Final = 0.25
INTERVAL_S_MAX: Final = 2.0
EAGER_S: Final = 5.0
TIMEOUT_S: Final = 5.0
"""Per call; a loading engine refuses connections, so this bounds only a hung one."""
PROBES_MAX: Final = 16
HEALTH_PATH: Final = "/health"
IS_SLEEPING_PATH: Final = "/is_sleeping"


def is_direct_provider(pod: Pod) -> bool:
    return bool(annotations_of(pod).get(ANN_NOMINAL))


def direct_instance_id(pod: Pod) -> str:
    """The one instance of a direct provider, as the gather names it (its notes must be
    found under the same ID)."""
    facts = provider_facts(dict(pod)).direct
    return facts.instance_id if facts is not None else ""


def _applies(note: EngineNote | None, run: str | None) -> EngineNote | None:
    """The note, if it is about the engine's current run."""
    return note if note is not None and note.run == run else None


@dataclass(frozen=True, slots=True)
class _Ask:
    """Where to ask one engine, and what to record with its answer."""

    url: str
    run: str | None
    node: str | None
    gpus: tuple[str, ...]
    port: int


class EngineProbes:
    """One probing task per engine whose phase is unknown or ``STARTING``.

    :meth:`pod_changed` and :meth:`reconsider` are called on the event loop the tasks run on;
    :meth:`stop` ends every task, and the calls after it are ignored.
    """

    def __init__(
        self,
        *,
        reports: ReportBook,
        engines: EngineBook,
        trace: OperatorTrace,
        clock: Callable[[], float],
        http: httpx.AsyncClient | None = None,
        probes_max: int = PROBES_MAX,
        interval_s_min: float = INTERVAL_S_MIN,
        interval_s_max: float = INTERVAL_S_MAX,
        eager_s: float = EAGER_S,
        timeout_s: float = TIMEOUT_S,
    ) -> None:
        self._reports = reports
        self._engines = engines
        self._trace = trace
        self._clock = clock
        self._own_http = http is None
        self._http = http if http is not None else httpx.AsyncClient()
        self._slots = asyncio.Semaphore(max(1, probes_max))
        self._pace = Pace(
            PaceSettings(
                eager_s=eager_s,
                interval_s_min=interval_s_min,
                interval_s_max=max(interval_s_min, interval_s_max),
            )
        )
        self._timeout = httpx.Timeout(timeout_s)
        self._pods: dict[str, Pod] = {}
        """Provider Pod name -> its latest version (launchers and direct providers only)."""
        self._tasks: dict[str, dict[str, asyncio.Task[None]]] = {}
        self._live: set[asyncio.Task[None]] = set()
        """Every task not yet ended, cancelled ones included (``stop`` waits for them)."""
        self._bad_ports: set[str] = set()
        self._open = True

    # --- life ------------------------------------------------------------------------------------

    async def stop(self) -> None:
        """Cancel every probe (and close the HTTP client if it is this object's own)."""
        self._open = False
        self._tasks.clear()
        tasks = list(self._live)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._own_http:
            await self._http.aclose()

    def probing(self) -> frozenset[tuple[str, str]]:
        """(provider, instance) of every probe under way."""
        return frozenset((p, i) for p, tasks in self._tasks.items() for i in tasks)

    # --- entry points ----------------------------------------------------------------------------

    def pod_changed(self, pod: Pod | None, name: str) -> None:
        """The Pod called ``name`` is now ``pod`` (None: it was deleted). The notes of a
        deleted direct provider are forgotten with it (a launcher's go with its report)."""
        if not self._open:
            return
        if pod is not None and (is_launcher(pod) or is_direct_provider(pod)):
            self._pods[name] = pod
        else:
            old = self._pods.pop(name, None)
            self._bad_ports.discard(name)
            if pod is None and old is not None and not is_launcher(old):
                self._engines.forget(name)
        self.reconsider(name)

    def reconsider(self, provider: str) -> None:
        """Probe what ``provider``'s engines now need: start the probes missing, cancel those
        no longer needed."""
        if not self._open:
            return
        asks = self._asks(provider)
        tasks = self._tasks.get(provider, {})
        for instance_id in [i for i in tasks if i not in asks]:
            tasks.pop(instance_id).cancel()
        for instance_id in asks:
            if instance_id in tasks:
                continue
            task = asyncio.get_running_loop().create_task(
                self._probe(provider, instance_id), name=f"engine-probe/{provider}/{instance_id}"
            )
            self._live.add(task)
            task.add_done_callback(partial(self._ended, provider, instance_id))
            tasks[instance_id] = task
        if tasks:
            self._tasks[provider] = tasks
        else:
            self._tasks.pop(provider, None)

    def _ended(self, provider: str, instance_id: str, task: "asyncio.Task[None]") -> None:
        self._live.discard(task)
        tasks = self._tasks.get(provider, {})
        if tasks.get(instance_id) is task:
            del tasks[instance_id]
            if not tasks:
                self._tasks.pop(provider, None)
        if not task.cancelled() and task.exception() is not None:
            _LOG.error("%s ended", task.get_name(), exc_info=task.exception())

    # --- what needs asking -----------------------------------------------------------------------

    def _asks(self, provider: str) -> dict[str, _Ask]:
        """Instance ID -> how to ask, for each of ``provider``'s engines that needs a probe."""
        pod = self._pods.get(provider)
        ip = pod_ip(pod) if pod is not None else None
        if pod is None or ip is None or not container_running(pod, CONTAINER_INFERENCE_SERVER):
            return {}
        if is_launcher(pod):
            return self._launcher_asks(provider, pod, ip)
        return self._direct_asks(provider, pod, ip)

    def _launcher_asks(self, provider: str, pod: Pod, ip: str) -> dict[str, _Ask]:
        report = self._reports.report(provider)
        if report is None or (report.pod_uid, report.restarts) != (uid_of(pod), restart_count(pod)):
            return {}  # none yet, or of an earlier run of the launcher
        asks = {}
        for instance_id, state in report.instances.items():
            note = self._engines.note(provider, instance_id)
            if state.status is not InstanceStatus.RUNNING or not _unknown(note, None):
                continue
            port = instance_port(state)
            gpus = tuple(state.gpu_uuids or ())
            asks[instance_id] = _Ask(base_url(ip, port), None, pod_node(pod), gpus, port)
        return asks

    def _direct_asks(self, provider: str, pod: Pod, ip: str) -> dict[str, _Ask]:
        run = container_run(pod, CONTAINER_INFERENCE_SERVER)
        instance_id = direct_instance_id(pod)
        if not _unknown(self._engines.note(provider, instance_id), run):
            return {}
        port = self._direct_port(provider, pod)
        if port is None:
            return {}
        accelerators = str(annotations_of(pod).get(ANN_ACCELERATORS) or "")
        gpus = tuple(gpu for gpu in accelerators.split(",") if gpu)
        return {instance_id: _Ask(base_url(ip, port), run, pod_node(pod), gpus, port)}

    def _direct_port(self, provider: str, pod: Pod) -> int | None:
        try:
            return direct_engine_port(dict(pod))
        except RenderError as error:
            if provider not in self._bad_ports:  # once per Pod, not once per event
                self._bad_ports.add(provider)
                _LOG.warning("direct provider %s: cannot ask its engine: %s", name_of(pod), error)
            return None

    # --- one probe -------------------------------------------------------------------------------

    async def _probe(self, provider: str, instance_id: str) -> None:
        """Ask until the engine answers or needs no asking; note ``STARTING`` meanwhile."""
        with self._pace.asker() as asker:
            while True:
                try:
                    ask = self._asks(provider).get(instance_id)
                    if ask is None:
                        return
                    async with self._slots:
                        phase = await self._ask(ask.url)
                    if self._settle(provider, instance_id, phase):
                        return
                except Exception:
                    _LOG.exception("engine probe %s/%s failed", provider, instance_id)
                asker.asked()
                await asyncio.sleep(asker.wait_s())

    def _settle(self, provider: str, instance_id: str, phase: InstanceState | None) -> bool:
        """Record an answer (or its absence); whether the probe is over. Runs without awaiting,
        so what it reads of the note is what it overwrites."""
        ask = self._asks(provider).get(instance_id)
        if ask is None:
            return True  # gone, or noted by someone else meanwhile: theirs stands
        note = _applies(self._engines.note(provider, instance_id), ask.run)
        now_s = self._clock()
        if phase is None:
            if note is None:
                self._engines.set_phase(
                    provider, instance_id, InstanceState.STARTING, now_s, run=ask.run
                )
            return False
        self._engines.set_phase(provider, instance_id, phase, now_s, run=ask.run)
        # Seen starting, or seen for the first time (the operator restarted, or the engine is
        # a new container run): the trace learns where the engine is, e.g. that a wake in
        # flight when the operator was killed has ended.
        if note is None or note.phase is InstanceState.STARTING:
            self._trace.record(
                f"instance_{phase.value}",
                provider=provider,
                instance=instance_id,
                node=ask.node,
                gpus=list(ask.gpus),
                port=ask.port,
            )
        return True

    async def _ask(self, url: str) -> InstanceState | None:
        """The engine's phase, or None while it does not answer."""
        try:
            health = await self._http.get(url + HEALTH_PATH, timeout=self._timeout)
            if health.status_code != 200:
                return None
            reply = await self._http.get(url + IS_SLEEPING_PATH, timeout=self._timeout)
        except httpx.HTTPError as error:
            _LOG.debug("engine %s does not answer: %s", url, error)
            return None
        if reply.status_code == 404:
            return InstanceState.AWAKE  # no sleep endpoints: it was never put to sleep
        if reply.status_code != 200:
            return None
        try:
            body = reply.json()
        except ValueError:
            body = None
        sleeping = body.get("is_sleeping") if isinstance(body, Mapping) else None
        if not isinstance(sleeping, bool):
            _LOG.warning("engine %s: %s answered %r", url, IS_SLEEPING_PATH, reply.text[:200])
            return None
        return InstanceState.SLEEPING if sleeping else InstanceState.AWAKE


def _unknown(note: EngineNote | None, run: str | None) -> bool:
    """Whether an engine with this note needs asking: no note of its current run, or one that
    says it is still starting."""
    applying = _applies(note, run)
    return applying is None or applying.phase is InstanceState.STARTING
