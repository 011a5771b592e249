"""The launcher service: the manager's instances, run as processes through the spawner.

This is the one place that combines the pure table (:mod:`fma.launcher.manager`), the
process port (:mod:`fma.launcher.spawner`) and GPU translation, and that owns the
asynchronous parts: one exit-watching task per process, stopping (SIGTERM, a grace
period, then SIGKILL to the process group), and waking watch streams on every change.

Everything runs on one asyncio event loop; a request's checks and the state change they
guard happen without an ``await`` in between, so two requests for one id cannot both pass.
"""

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from fma.api.constants import ENV_CUDA_VISIBLE_DEVICES
from fma.launcher.activity import ActivityScanner
from fma.launcher.api import (
    WATCH_BUFFER_EVENTS_MAX,
    InstanceIdList,
    InstanceList,
    InstanceState,
    InstanceStatus,
    VllmConfig,
    WatchEvent,
)
from fma.launcher.errors import CapacityExhausted, RevisionGone, UnknownInstance
from fma.launcher.gpus import GpuTranslator
from fma.launcher.manager import InstanceManager
from fma.launcher.spawner import LaunchSpec, Process, Spawner

_LOG = logging.getLogger(__name__)
KILL_WAIT_S_MAX: Final = 30.0
"""After SIGKILL, how long to wait for the exit before forgetting the process anyway
(a process stuck in uninterruptible sleep must not hang a DELETE forever)."""


@dataclass(frozen=True, slots=True)
class ServiceSettings:
    """Limits and timings of one launcher."""

    log_dir: Path
    stop_grace_s: float = 10.0
    instance_count_max: int = 64
    watcher_count_max: int = 64
    event_buffer_max: int = WATCH_BUFFER_EVENTS_MAX


@dataclass(slots=True)
class _Running:
    process: Process
    exit_task: "asyncio.Task[None]"


class LauncherService:
    """Creates, reports, stops and deletes instances; streams their changes."""

    def __init__(
        self,
        *,
        spawner: Spawner,
        translator: GpuTranslator,
        settings: ServiceSettings,
    ) -> None:
        self._spawner = spawner
        self._translator = translator
        self._settings = settings
        self._changed = asyncio.Event()
        self._manager = InstanceManager(
            instance_count_max=settings.instance_count_max,
            event_buffer_max=settings.event_buffer_max,
            on_change=self._wake_watchers,
        )
        self._processes: dict[str, _Running] = {}
        self._activity = ActivityScanner()
        self._deletions: dict[str, asyncio.Task[InstanceState]] = {}
        self._watcher_count = 0

    # --- reads -----------------------------------------------------------------------------

    def get(self, instance_id: str) -> InstanceState:
        """The instance's state; raises ``UnknownInstance``."""
        return self._manager.get(instance_id)

    def list_detail(self) -> InstanceList:
        """Every instance with its state, the most recently created or woken last."""
        self._notice_wakes()
        instances = self._manager.instances()
        running = sum(1 for s in instances if s.status is InstanceStatus.RUNNING)
        return InstanceList(
            revision=self._manager.revision,
            total_instances=len(instances),
            running_instances=running,
            instances=instances,
        )

    def list_ids(self) -> InstanceIdList:
        """Every instance's id, the most recently created or woken last."""
        self._notice_wakes()
        ids = [s.instance_id for s in self._manager.instances()]
        return InstanceIdList(revision=self._manager.revision, instance_ids=ids, count=len(ids))

    def log_path(self, instance_id: str) -> Path:
        """The instance's log file; raises ``UnknownInstance``."""
        self._manager.get(instance_id)
        return self._settings.log_dir / f"{instance_id}.log"

    # --- writes ----------------------------------------------------------------------------

    def create(self, instance_id: str, config: VllmConfig) -> InstanceState:
        """Validate, start the process and record it; raises ``DuplicateInstance``,
        ``CapacityExhausted``, ``UnknownGpu``, ``InvalidOptions`` or ``SpawnFailed``.

        Synchronous on purpose: nothing can interleave between the checks and the record.
        """
        self._manager.check_can_add(instance_id)
        env = dict(config.env_vars or {})
        if config.gpu_uuids is not None:
            env[ENV_CUDA_VISIBLE_DEVICES] = self._translator.cuda_visible_devices(config.gpu_uuids)
        self._spawner.validate(config.options)
        spec = LaunchSpec(
            instance_id=instance_id,
            options=tuple(config.options),
            env=env,
            log_path=self._settings.log_dir / f"{instance_id}.log",
        )
        process = self._spawner.spawn(spec)
        state = self._manager.add(instance_id, config, env_vars=env or None, pid=process.pid)
        task = asyncio.get_running_loop().create_task(self._watch_exit(instance_id, process))
        self._processes[instance_id] = _Running(process=process, exit_task=task)
        _LOG.info("instance %s started: pid %d", instance_id, process.pid)
        return state

    async def delete(self, instance_id: str) -> InstanceState:
        """Stop the instance if running, remove its log, forget it (DELETED); its final
        state. Concurrent deletes of one id share the work; a client that goes away does
        not interrupt it."""
        self._manager.get(instance_id)
        task = self._deletions.get(instance_id)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._delete(instance_id))
            self._deletions[instance_id] = task
            task.add_done_callback(lambda _: self._deletions.pop(instance_id, None))
        return await asyncio.shield(task)

    async def delete_all(self) -> list[str]:
        """Delete every instance, concurrently; their ids."""
        ids = [s.instance_id for s in self._manager.instances()]
        results = await asyncio.gather(*(self.delete(i) for i in ids), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, UnknownInstance):
                raise result
        return ids

    async def close(self) -> None:
        """Stop and forget every instance (the launcher is shutting down)."""
        await self.delete_all()
        for running in list(self._processes.values()):
            running.exit_task.cancel()

    # --- watch -----------------------------------------------------------------------------

    def open_watch(self, since: int | None) -> AsyncIterator[WatchEvent]:
        """A stream of changes: after revision ``since``, or (None) synthetic CREATED events
        for the existing instances, then every later change. Raises ``RevisionGone`` or
        ``CapacityExhausted`` now, before the stream begins. The stream ends silently if the
        reader falls more than the buffer behind; it resumes with ``since`` or re-lists."""
        if self._watcher_count >= self._settings.watcher_count_max:
            raise CapacityExhausted(
                f"watcher limit {self._settings.watcher_count_max} reached; retry later"
            )
        if since is None:
            position, initial = self._manager.snapshot()
        else:
            position, initial = since, self._manager.events_since(since)
        return self._stream(position, initial)

    async def _stream(self, position: int, initial: list[WatchEvent]) -> AsyncIterator[WatchEvent]:
        self._watcher_count += 1
        try:
            for event in initial:
                yield event
            if initial:
                position = max(position, initial[-1].object.revision)
            while True:
                changed = self._changed
                try:
                    events = self._manager.events_since(position)
                except RevisionGone:
                    return  # fell behind the buffer: end; the client resumes or re-lists
                if not events:
                    await changed.wait()
                    continue
                for event in events:
                    yield event
                position = events[-1].object.revision
        finally:
            self._watcher_count -= 1

    # --- internals -------------------------------------------------------------------------

    def _notice_wakes(self) -> None:
        """List last the instances whose logs show a wake since the last look, in the order
        of their wakes (:mod:`fma.launcher.activity`)."""
        woken = []
        for state in self._manager.instances():
            path = self._settings.log_dir / f"{state.instance_id}.log"
            stamp = self._activity.woke(state.instance_id, path)
            if stamp is not None:
                woken.append((stamp, state.instance_id))
        for _, instance_id in sorted(woken):
            self._manager.activate(instance_id)

    def _wake_watchers(self) -> None:
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()

    async def _watch_exit(self, instance_id: str, process: Process) -> None:
        exit_code = await process.wait()
        state = self._manager.mark_stopped(instance_id, exit_code)
        if state is not None:
            _LOG.info("instance %s stopped: exit code %d", instance_id, exit_code)

    async def _delete(self, instance_id: str) -> InstanceState:
        running = self._processes.get(instance_id)
        if running is not None:
            await self._stop(instance_id, running)
            del self._processes[instance_id]
        with contextlib.suppress(OSError):
            (self._settings.log_dir / f"{instance_id}.log").unlink(missing_ok=True)
        self._activity.forget(instance_id)
        state = self._manager.remove(instance_id)
        _LOG.info("instance %s deleted", instance_id)
        return state

    async def _stop(self, instance_id: str, running: _Running) -> None:
        if running.exit_task.done():
            return
        running.process.signal_group(signal.SIGTERM)
        try:
            await asyncio.wait_for(asyncio.shield(running.exit_task), self._settings.stop_grace_s)
            return
        except TimeoutError:
            _LOG.warning("instance %s ignored SIGTERM; sending SIGKILL", instance_id)
        running.process.signal_group(signal.SIGKILL)
        try:
            await asyncio.wait_for(asyncio.shield(running.exit_task), KILL_WAIT_S_MAX)
        except TimeoutError:
            _LOG.error("instance %s survived SIGKILL for %.0f s", instance_id, KILL_WAIT_S_MAX)
