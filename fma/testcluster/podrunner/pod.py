"""One Pod's life on the runner, as a kubelet's pod worker lives it.

:class:`PodWorker` admits the Pod (GPUs), creates its sandbox (network namespace and Pod IP)
and volumes, publishes its kubelet API configuration (:mod:`.kubelet_api`), runs its init
containers one after another and then its containers side by side, each with its probes and
restarts, and keeps the status subresource up to date. On deletion it stops the processes
(SIGTERM, the grace period, SIGKILL), releases GPUs and sandbox, writes the final status and
finishes the deletion with grace 0 and a UID precondition; finalizers keep the object (not
the processes) until others remove them.

Times, chosen for tests (see docs/testcluster.md): a deletion's grace period is the Pod's,
at most :data:`DELETE_GRACE_MAX_S`; a Pod removed from the API without one (force
deletion) gets :data:`VANISHED_GRACE_S`, the kubelet's minimum; restarts back off
0.5 s, 1 s, 2 s, 4 s, then every :data:`BACKOFF_MAX_S`, starting over after a run of
:data:`BACKOFF_RESET_S`.
"""

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from fma.api.constants import ENV_NVIDIA_VISIBLE_DEVICES
from fma.testcluster.podrunner import gpus, kubelet_api, netns, prober, probes, status
from fma.testcluster.podrunner.context import Context
from fma.testcluster.podrunner.env import ConfigError, EnvSources, resolve, service_env
from fma.testcluster.podrunner.hosts import write_hosts_file
from fma.testcluster.podrunner.images import (
    NotRunnable,
    container_argv,
    image_program,
    is_project_image,
)
from fma.testcluster.podrunner.network import NetworkError
from fma.testcluster.podrunner.processes import ContainerProcess, Launch
from fma.testcluster.podrunner.status import ContainerView, PodView
from fma.testcluster.podrunner.volumes import VolumeSources, binds

_LOG = logging.getLogger(__name__)

DELETE_GRACE_MAX_S: Final = 10.0
VANISHED_GRACE_S: Final = 2.0
BACKOFF_START_S: Final = 0.5
BACKOFF_MAX_S: Final = 5.0
BACKOFF_RESET_S: Final = 10.0
RETRY_S: Final = 1.0
"""Between attempts at something that may work later (a ConfigMap that does not exist yet)."""
GPU_WAIT_S: Final = 10.0
"""How long admission waits for GPUs still held by Pods being torn down."""

Pod = dict[str, Any]


class _BackOff:
    """Delays between restarts (see the module docstring)."""

    def __init__(self) -> None:
        self._next = BACKOFF_START_S

    def delay(self, ran_for: float) -> float:
        if ran_for >= BACKOFF_RESET_S:
            self._next = BACKOFF_START_S
        delay, self._next = self._next, min(self._next * 2, BACKOFF_MAX_S)
        return delay


def _grace_of(pod: Mapping[str, Any]) -> float:
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    seconds = meta.get("deletionGracePeriodSeconds")
    if seconds is None:
        seconds = spec.get("terminationGracePeriodSeconds", 30)
    return min(float(seconds), DELETE_GRACE_MAX_S)


class PodWorker:
    """Runs one Pod (see the module docstring). Created and driven on the event loop."""

    def __init__(self, ctx: Context, pod: Pod) -> None:
        self.ctx = ctx
        self.pod = pod
        meta, spec = pod["metadata"], pod["spec"]
        self.uid, self.namespace, self.name = meta["uid"], meta["namespace"], meta["name"]
        self.dir = ctx.config.pods_dir / f"{self.namespace}_{self.name}_{self.uid}"
        self.node = str(spec["nodeName"])
        self.hostname = str(spec.get("hostname") or self.name)[:63]
        self._specs = {c["name"]: c for c in [*spec.get("initContainers", []), *spec["containers"]]}
        self.view = PodView(
            restart_policy=str(spec.get("restartPolicy") or "Always"),
            init=[
                ContainerView(c["name"], c.get("image", ""))
                for c in spec.get("initContainers") or []
            ],
            containers=[ContainerView(c["name"], c.get("image", "")) for c in spec["containers"]],
            readiness_gates=[str(g["conditionType"]) for g in spec.get("readinessGates") or []],
        )
        self._terminate = asyncio.Event()
        self._dirty = asyncio.Event()
        self._write_lock = asyncio.Lock()
        self._written: dict[str, Any] | None = None
        self._grace = DELETE_GRACE_MAX_S
        self.gone = False
        self._sandbox: netns.Sandbox | None = None
        self._hosts: Path | None = None
        self._node_gpus: list[str] = []
        self._gpus: dict[str, list[str]] = {}
        self._binds: dict[str, list[tuple[Path, str]]] = {}
        self._procs: dict[str, ContainerProcess] = {}
        self.finished = asyncio.Event()
        """Set once the processes are stopped and the deletion is finished (or abandoned)."""
        self._tasks = [
            asyncio.create_task(self._live(), name=f"pod {self.namespace}/{self.name}"),
            asyncio.create_task(self._write_statuses()),
        ]
        self.update(pod)

    # --- events from the watch -------------------------------------------------------------

    def update(self, pod: Pod) -> None:
        """The API's latest version of the Pod."""
        self.pod = pod
        if self.view.readiness_gates:
            self._mark_dirty()  # a gate's condition may have changed
        if (pod.get("metadata") or {}).get("deletionTimestamp") and not self._terminate.is_set():
            self._grace = _grace_of(pod)
            _LOG.info(
                "pod %s/%s deleted: stopping (grace %.0f s)", self.namespace, self.name, self._grace
            )
            self._begin_termination()

    def removed(self) -> None:
        """The Pod is gone from the API (deleted with grace 0, or its finalizers removed)."""
        self.gone = True
        if not self._terminate.is_set():
            self._grace = VANISHED_GRACE_S
            self._begin_termination()

    def shut_down(self, grace: float) -> None:
        """The runner is stopping: stop the processes within ``grace`` seconds, write nothing."""
        self._grace = min(self._grace, grace)
        self._begin_termination()

    def _begin_termination(self) -> None:
        self.view.terminating = True
        self._terminate.set()

    # --- the Pod's life --------------------------------------------------------------------

    async def _live(self) -> None:
        try:
            if await self._admit():
                await self._run_containers()
        except Exception:
            _LOG.exception("pod %s/%s failed in the runner", self.namespace, self.name)
        finally:
            await self._stop_all()
            await self._release()
        await self._terminate.wait()
        if not self.ctx.shutting_down:  # a finished Pod's logs stay readable until deletion
            await self._kubelet_api(publish=False)
        with contextlib.suppress(Exception):
            await self._write_status()
        if not self.gone and not self.ctx.shutting_down:
            try:
                await self.ctx.call(
                    self.ctx.kube.finish_deletion, self.namespace, self.name, self.uid
                )
                _LOG.info("pod %s/%s: deletion finished", self.namespace, self.name)
            except Exception as error:
                _LOG.warning(
                    "pod %s/%s: could not finish deletion: %s", self.namespace, self.name, error
                )
        self.finished.set()
        for task in self._tasks[1:]:
            task.cancel()

    async def _sleep(self, seconds: float) -> bool:
        """Sleep ``seconds`` unless termination begins first; True if it did."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._terminate.wait(), seconds)
        return self._terminate.is_set()

    async def _admit(self) -> bool:
        """GPUs, sandbox and volumes; False if the Pod failed admission or is being deleted."""
        node = await self.ctx.node(self.node)
        addresses = (node.get("status") or {}).get("addresses") or []
        self.view.host_ip = next(
            (a["address"] for a in addresses if a.get("type") == "InternalIP"), ""
        )
        self.view.start_time = status.now()
        self._mark_dirty()
        if not await self._allocate_gpus():
            return False
        ip = self.ctx.ips.allocate(str(node["spec"]["podCIDR"]), self.uid)
        while self._sandbox is None:
            netns_name, host_if = netns.sandbox_names(
                self.ctx.net, self.uid, self.ctx.next_serial()
            )
            try:
                self._sandbox = await self.ctx.call(
                    netns.create, self.ctx.net, netns_name, host_if, ip
                )
            except NetworkError as error:  # as a kubelet's FailedCreatePodSandBox: retry
                _LOG.warning("pod %s/%s: no sandbox: %s", self.namespace, self.name, error)
                for view in [*self.view.init, *self.view.containers]:
                    view.state = status.waiting("ContainerCreating", str(error))
                self._mark_dirty()
                if await self._sleep(RETRY_S):
                    return False
        _LOG.info("pod %s/%s: sandbox %s, IP %s", self.namespace, self.name, netns_name, ip)
        self._hosts = await self.ctx.call(
            write_hosts_file, self.dir / "etc-hosts", self.pod, ip, self.hostname
        )
        self.view.pod_ip, self.view.sandbox_ready = ip, True
        self._mark_dirty()
        await self._kubelet_api(publish=True)
        while not self._terminate.is_set():
            try:
                await self.ctx.call(self._mount_volumes)
                return True
            except ConfigError as error:
                _LOG.info("pod %s/%s: volumes not ready: %s", self.namespace, self.name, error)
                for view in [*self.view.init, *self.view.containers]:
                    view.state = status.waiting("ContainerCreating", str(error))
                self._mark_dirty()
                await self._sleep(RETRY_S)
        return False

    async def _allocate_gpus(self) -> bool:
        wanted = {name: gpus.requested(spec) for name, spec in self._specs.items()}
        env_all = any(
            e.get("name") == ENV_NVIDIA_VISIBLE_DEVICES and e.get("value") == gpus.ALL
            for spec in self._specs.values()
            for e in spec.get("env") or []
        )
        if not any(wanted.values()) and not env_all:
            return True
        self._node_gpus = await self.ctx.node_gpus(self.node)
        deadline = time.monotonic() + GPU_WAIT_S
        while True:
            try:
                for name, count in wanted.items():
                    if count:
                        owner = f"{self.uid}/{name}"
                        self._gpus[name] = self.ctx.gpus.allocate(
                            self.node, owner, count, self._node_gpus
                        )
                if self._gpus:
                    _LOG.info("pod %s/%s: GPUs %s", self.namespace, self.name, self._gpus)
                return True
            except gpus.NotEnoughGpus as error:
                self.ctx.gpus.release(self.uid + "/")
                self._gpus.clear()
                if time.monotonic() >= deadline or self._terminate.is_set():
                    _LOG.warning("pod %s/%s rejected: %s", self.namespace, self.name, error)
                    self.view.phase_override = "Failed"
                    self.view.reason = "UnexpectedAdmissionError"
                    self.view.message = str(error)
                    self._mark_dirty()
                    return False
                await self._sleep(0.2)

    def _volume_sources(self) -> VolumeSources:
        kube = self.ctx.kube
        return VolumeSources(kube.read_config_map, kube.read_secret, kube.request_token)

    def _pod_with_addresses(self) -> Pod:
        """The Pod as the downward API sees it: with the IPs the runner gave it."""
        pod_status = dict(self.pod.get("status") or {})
        pod_status |= {
            "podIP": self.view.pod_ip,
            "podIPs": [{"ip": self.view.pod_ip}],
            "hostIP": self.view.host_ip,
            "hostIPs": [{"ip": self.view.host_ip}],
        }
        return {**self.pod, "status": pod_status}

    def _mount_volumes(self) -> None:
        """Write every container's volumes (blocking; in a thread). Raises ConfigError."""
        materialized: dict[str, Path] = {}
        pod = self._pod_with_addresses()
        for name, spec in self._specs.items():
            self._binds[name] = binds(pod, spec, self.dir, self._volume_sources(), materialized)

    async def _run_containers(self) -> None:
        for spec_view in self.view.init:
            code = await self._run_container(spec_view, init=True)
            if self._terminate.is_set():
                return
            if code != 0:
                self.view.init_failed = True
                self._mark_dirty()
                return
            spec_view.ready = True
            self._mark_dirty()
        await asyncio.gather(*(self._run_container(v, init=False) for v in self.view.containers))

    def _launch(self, view: ContainerView) -> Launch:
        """The command line, environment and files of the next run (blocking; in a thread).

        Raises NotRunnable (another image or command) or ConfigError (a missing reference).
        """
        spec = self._specs[view.name]
        if not is_project_image(view.image):
            container_argv(spec, self.ctx.config.fma, {})  # raises the ErrImageNeverPull
        node = self.ctx.cached_node(self.node)
        sources = EnvSources(
            self.ctx.kube.read_config_map,
            self.ctx.kube.read_secret,
            (node.get("status") or {}).get("allocatable") or {},
        )
        config = self.ctx.config
        services = service_env(self.ctx.net.gateway, config.apiserver_port)
        env = resolve(self._pod_with_addresses(), spec, sources=sources, services=services)
        if env.get(ENV_NVIDIA_VISIBLE_DEVICES) == gpus.ALL and not self._node_gpus:
            # "all" came from a ConfigMap or Secret, unseen at admission: look the node up now.
            self._node_gpus = gpus.in_index_order(self.ctx.kube.gpu_map().get(self.node, {}))
        visible = gpus.visible_devices(env, self._gpus.get(view.name, []), self._node_gpus)
        if visible is not None:
            env[ENV_NVIDIA_VISIBLE_DEVICES] = visible
        program = image_program(view.image, config.fma)
        argv = container_argv(spec, program, env)
        run = view.restart_count
        cgroup = None
        if self.ctx.cgroup_root is not None:
            cgroup = self.ctx.cgroup_root / self.uid / f"{view.name}-{run}"
        assert self._sandbox is not None
        return Launch(
            argv=argv,
            env={**self.ctx.image_env(self.hostname, program), **env},
            log=self.dir / view.name / f"{run}.log",
            pid_file=self.dir / view.name / "pid",
            netns_path=self._sandbox.netns_path,
            hostname=self.hostname,
            binds=self._binds.get(view.name, []),
            hosts=self._hosts,
            cgroup=cgroup,
            workdir=str(spec.get("workingDir") or "/"),
        )

    def _restarts(self, code: int, init: bool) -> bool:
        policy = self.view.restart_policy
        if init:
            return policy != "Never" and code != 0
        return policy == "Always" or (policy == "OnFailure" and code != 0)

    async def _run_container(self, view: ContainerView, *, init: bool) -> int | None:
        """Run, probe and restart one container until it is done for good; its exit code."""
        backoff = _BackOff()
        while not self._terminate.is_set():
            started_at, message, reason, ran_for = status.now(), "", "", 0.0
            try:
                launch = await self.ctx.call(self._launch, view)
                process = ContainerProcess(launch, asyncio.get_running_loop())
            except NotRunnable as error:
                if error.reason == "ErrImageNeverPull":
                    view.state = status.waiting(error.reason, str(error))
                    self._mark_dirty()
                    await self._terminate.wait()
                    return None
                code, message, reason = 128, str(error), error.reason
            except ConfigError as error:
                view.state = status.waiting("CreateContainerConfigError", str(error))
                self._mark_dirty()
                await self._sleep(RETRY_S)
                continue
            except OSError as error:
                code, message, reason = 128, f"starting the process failed: {error}", "StartError"
            else:
                code, ran_for = await self._supervise(view, launch, process, init=init)
            view.ready = view.started = False
            ended = status.terminated(code, started_at, status.now(), message, reason)
            if self._terminate.is_set() or not self._restarts(code, init):
                view.state = ended
                self._mark_dirty()
                return code
            delay = backoff.delay(ran_for)
            view.last_state = ended
            view.state = status.waiting(
                "CrashLoopBackOff",
                f"back-off {delay:g}s restarting failed container={view.name} "
                f"pod={self.name}_{self.namespace}({self.uid})",
            )
            self._mark_dirty()
            if await self._sleep(delay):
                view.state = ended
                self._mark_dirty()
                return code
            view.restart_count += 1
        return None

    async def _supervise(
        self, view: ContainerView, launch: Launch, process: ContainerProcess, *, init: bool
    ) -> tuple[int, float]:
        """Run probes until the process exits or termination stops it: (exit code, seconds)."""
        began = time.monotonic()
        self._procs[view.name] = process
        spec = self._specs[view.name]
        run_id = f"{self.uid}/{view.name}/{view.restart_count}"
        view.container_id = "fma://" + hashlib.sha256(run_id.encode()).hexdigest()
        view.state = status.running(status.now())
        view.started = "startupProbe" not in spec
        view.ready = not init and view.started and "readinessProbe" not in spec
        self._mark_dirty()
        _LOG.info(
            "pod %s/%s container %s run %d: pid %d, log %s",
            self.namespace, self.name, view.name, view.restart_count, process.pid, launch.log,
        )  # fmt: skip
        target = prober.Target(process, launch, self.view.pod_ip, self.ctx.http, began)
        describe = f"pod {self.namespace}/{self.name} container {view.name}"
        probing = asyncio.create_task(
            prober.supervise(
                {} if init else spec,  # init containers have no probes
                view,
                target,
                changed=self._mark_dirty,
                kill_grace=self._kill_grace,
                describe=describe,
            )
        )
        ending: asyncio.Future[Any] = asyncio.ensure_future(self._terminate.wait())
        exited: asyncio.Future[Any] = process.exited
        await asyncio.wait({exited, ending}, return_when=asyncio.FIRST_COMPLETED)
        ending.cancel()
        probing.cancel()
        code = await process.stop(self._grace)
        ran_for = time.monotonic() - began
        _LOG.info(
            "pod %s/%s container %s exited with %d after %.1f s",
            self.namespace, self.name, view.name, code, ran_for,
        )  # fmt: skip
        return code, ran_for

    def _kill_grace(self, probe: probes.Probe) -> float:
        """A failed probe's grace period: its own, else the Pod's, capped."""
        if probe.termination_grace is None:
            return _grace_of(self.pod)
        return min(probe.termination_grace, DELETE_GRACE_MAX_S)

    # --- tear-down -------------------------------------------------------------------------

    async def _stop_all(self) -> None:
        running = [p for p in self._procs.values() if p.running]
        await asyncio.gather(*(p.stop(self._grace) for p in running))

    async def _kubelet_api(self, *, publish: bool) -> None:
        """Publish (or withdraw) the Pod's logs, exec and port-forward configuration."""

        async def one(resource: dict[str, Any]) -> None:
            plural = kubelet_api.KINDS[resource["kind"]]
            try:
                if publish:
                    await self.ctx.call(self.ctx.kube.apply_custom, resource, plural)
                else:
                    await self.ctx.call(
                        self.ctx.kube.delete_custom,
                        resource["apiVersion"], plural, self.namespace, self.name,
                    )  # fmt: skip
            except Exception as error:  # the Pod runs without it, as without a kubelet API
                _LOG.warning(
                    "pod %s/%s: %s %s: %s", self.namespace, self.name,
                    "publishing" if publish else "withdrawing", resource["kind"], error,
                )  # fmt: skip

        resources = kubelet_api.pod_resources(self.pod, self.dir, self.view.pod_ip)
        await asyncio.gather(*(one(resource) for resource in resources))

    async def _release(self) -> None:
        self.ctx.gpus.release(self.uid + "/")
        if self._sandbox is not None:
            await self.ctx.call(netns.delete, self._sandbox)
            self._sandbox = None
            self.view.sandbox_ready = False
        self.ctx.ips.release(self.uid)
        if self.ctx.cgroup_root is not None:
            with contextlib.suppress(OSError):
                (self.ctx.cgroup_root / self.uid).rmdir()
        self._mark_dirty()

    # --- status ----------------------------------------------------------------------------

    def _mark_dirty(self) -> None:
        self._dirty.set()

    async def _write_statuses(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                await self._write_status()
            except Exception as error:
                _LOG.warning("pod %s/%s: status not written: %s", self.namespace, self.name, error)
                await asyncio.sleep(0.5)
                self._dirty.set()

    async def _write_status(self) -> None:
        """Patch the status if it changed since the last write (one write at a time)."""
        async with self._write_lock:
            if self.gone or self.ctx.shutting_down:
                return
            # Transition times from what the runner wrote last; readiness gates (conditions
            # others own) from what the API shows.
            observed = list((self.pod.get("status") or {}).get("conditions") or [])
            mine = list((self._written or {}).get("conditions") or [])
            new = status.pod_status(self.view, {"conditions": [*observed, *mine]})
            if new == self._written:
                return
            if not await self.ctx.call(self.ctx.kube.patch_status, self.namespace, self.name, new):
                self.gone = True
                return
            self._written = new
