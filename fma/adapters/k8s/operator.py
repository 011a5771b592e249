"""The operator process: watches, the shared reconcile shell, and the pieces that ask and apply.

:func:`run_operator` is what ``fma operator run`` runs:

1. connect (in-cluster configuration, else ``$KUBECONFIG``);
2. with leader election (the default), wait for the Lease (:mod:`.leader`); a standby replica
   only waits, answering its health endpoint;
3. list every watched kind once into the :class:`~fma.adapters.k8s.store.ObjectStore`, so the
   first reconcile sees a complete picture (a requester's bound provider is never missed);
4. start Kopf with event handlers only (:meth:`Operator.registry`): each puts the object into
   the store and enqueues the keys it concerns; nothing else happens in a handler;
5. enqueue every node and the configuration status once (the pools are filled at start, as
   in the simulator);
6. run until SIGTERM/SIGINT or until leadership is lost (then exit non-zero, so that the
   Deployment restarts the process as a standby); on the way out stop acting first, then
   release the Lease, so that a standby takes over at once and never while this one acts.

Kopf's own state-keeping is off for everything FMA touches: only ``@kopf.on.event`` handlers
are registered (no finalizers, no ``kopf.zalando.org/*`` annotations), peering is off (the
Lease decides who acts), Kopf posts no Events, watches time out explicitly (a silently dead
watch is re-established instead of starving the operator), and the batch window is small (it
is a latency floor on every change).
"""

import asyncio
import contextlib
import logging
import signal
import socket
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import kopf
from kubernetes import client

from fma.adapters.k8s import kube
from fma.adapters.k8s.accelerators import GpuFetcher
from fma.adapters.k8s.calls import Calls
from fma.adapters.k8s.engines import EngineBook
from fma.adapters.k8s.executor import K8sExecutor
from fma.adapters.k8s.gather import GatherSettings, K8sReader
from fma.adapters.k8s.launchers import REASON_UNREACHABLE, LauncherWatches
from fma.adapters.k8s.leader import LeaseElector, LeaseSettings
from fma.adapters.k8s.metrics import OperatorMetrics
from fma.adapters.k8s.modelservice import ModelServiceController, ModelServiceOptions
from fma.adapters.k8s.observed import GpuBook, Relays, ReportBook
from fma.adapters.k8s.placement import WEIGHT_DEFAULT, SleeperLabels, placement_app
from fma.adapters.k8s.probes import EngineProbes
from fma.adapters.k8s.scheduler import AsyncioScheduler
from fma.adapters.k8s.store import Kind, ObjectStore, name_of, pod_node, uid_of
from fma.adapters.k8s.trace import OperatorTrace
from fma.adapters.k8s.views import PodRole, pod_role
from fma.api.constants import CONTROLLER_METRICS_PORT, GROUP, VERSION
from fma.control.queue import WorkQueue
from fma.control.reconcile import CONFIGS, conclude, decide
from fma.core.actions import SubjectKind
from fma.core.model import GIB_BYTES, NodeSnapshot
from fma.core.outcomes import FollowUp
from fma.core.policy import Policy

log = logging.getLogger("fma.operator")

WATCHED: Mapping[Kind, tuple[str, str, str]] = {
    Kind.POD: ("", "v1", "pods"),
    Kind.NODE: ("", "v1", "nodes"),
    Kind.CONFIGMAP: ("", "v1", "configmaps"),
    Kind.ISC: (GROUP, VERSION, "inferenceserverconfigs"),
    Kind.LAUNCHER_CONFIG: (GROUP, VERSION, "launcherconfigs"),
    Kind.POPULATION_POLICY: (GROUP, VERSION, "launcherpopulationpolicies"),
}
"""What the operator watches: (group, version, plural) per kind. Nodes are cluster-scoped,
everything else is in the operator's namespace."""
SYNC_WAIT_S = 30.0
"""How long a node's reconcile waits for a launcher's first instance list."""
SYNC_RETRY_S = 0.5


@dataclass(frozen=True)
class OperatorOptions:
    namespace: str
    policy: Policy = field(default_factory=Policy)
    workers: int = 2
    """Nodes reconciled at once (upstream runs 2)."""
    leader_election: bool = True
    lease: LeaseSettings = field(default_factory=LeaseSettings)
    identity: str = ""
    """This replica's name in the Lease (default: host name and a random suffix)."""
    health_port: int | None = 8081
    """Port of ``/healthz`` and ``/readyz`` (None: no endpoint)."""
    metrics_port: int | None = CONTROLLER_METRICS_PORT
    """Port of ``/metrics`` (None: no endpoint; :mod:`.metrics`)."""
    proxy_all: bool = False
    """Configure every requester's proxy, not only those with the proxy-port annotation."""
    gpu_memory_bytes_default: int = 80 * GIB_BYTES
    """One GPU's memory where a node does not say (label ``nvidia.com/gpu.memory``)."""
    trace: Path | None = None
    modelservice: ModelServiceOptions = field(default_factory=ModelServiceOptions)
    batch_window_s: float = 0.01
    """Kopf's batching of one object's events: a floor on every reaction."""
    watch_server_timeout_s: int = 300
    """The API server ends each watch after this long; Kopf then resumes it."""
    watch_client_timeout_s: float = 330.0
    watch_inactivity_s: float = 120.0
    """A watch with no event for this long is assumed dead and re-established."""
    sleeper_labels: bool = False
    """Keep the sleeper labels on launcher Pods (:mod:`.placement`)."""
    placement_port: int | None = None
    """Port of the placement webhook, served with ``placement_tls`` (None: none)."""
    placement_tls: tuple[Path, Path] | None = None
    """The webhook's certificate and key files (PEM)."""
    placement_weight: int = WEIGHT_DEFAULT
    """The weight of the preferred pod affinity the webhook adds."""


def _login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    """Kopf connects as the Kubernetes client does: the Pod's ServiceAccount at
    ``$KUBERNETES_SERVICE_HOST`` (Kopf's own in-cluster login names ``kubernetes.default.svc``,
    which needs cluster DNS), else the kubeconfig."""
    return kopf.login_via_client(**kwargs)


def default_identity() -> str:
    return f"{socket.gethostname()}_{uuid.uuid4().hex[:8]}"


class Operator:
    """The pieces of one operator process, wired together. Built after the Lease is held."""

    def __init__(
        self,
        options: OperatorOptions,
        api: client.ApiClient,
        *,
        clock: Callable[[], float] | None = None,
        metrics: OperatorMetrics | None = None,
    ) -> None:
        self.options = options
        self.api = api
        self.scheduler = AsyncioScheduler()
        self.clock = clock or self.scheduler.now_s
        self.store = ObjectStore()
        self.metrics = metrics or OperatorMetrics(options.namespace, runtime=False)
        self.trace = OperatorTrace(options.trace, self.clock, listeners=(self.metrics.record,))
        self.engines = EngineBook(on_change=self._provider_changed)
        self.reports = ReportBook()
        self.gpus = GpuBook()
        self.relays = Relays()
        self.calls = Calls(listener=self.metrics.http_call)
        self.reader = K8sReader(
            self.store,
            self.engines,
            self.reports,
            self.gpus,
            self.relays,
            GatherSettings(gpu_memory_bytes_default=options.gpu_memory_bytes_default),
        )
        self.executor = K8sExecutor(
            api=api,
            namespace=options.namespace,
            store=self.store,
            engines=self.engines,
            relays=self.relays,
            reports=self.reports,
            calls=self.calls,
            trace=self.trace,
            clock=self.clock,
            proxy_all=options.proxy_all,
            on_launcher_create=self.metrics.launcher_created,
        )
        self.launchers = LauncherWatches(
            reports=self.reports,
            engines=self.engines,
            trace=self.trace,
            changed=self._provider_changed,
            warn=partial(self._warn_unreachable, SubjectKind.PROVIDER),
        )
        self.probes = EngineProbes(
            reports=self.reports, engines=self.engines, trace=self.trace, clock=self.clock
        )
        self.fetcher = GpuFetcher(
            gpus=self.gpus,
            trace=self.trace,
            annotate=self._annotate,
            changed=self.enqueue,
            warn=partial(self._warn_unreachable, SubjectKind.REQUESTER),
        )
        self.queue = WorkQueue(
            self.scheduler, self._process, workers=options.workers, record_waits=True
        )
        self.metrics.follow(self.store, self.queue)
        self._tasks: set[asyncio.Task[None]] = set()
        self._unsynced_since: dict[str, float] = {}
        self.synced = False
        self.modelservices = ModelServiceController(
            api, options.namespace, options.modelservice, self.scheduler, clock=self.clock
        )
        self.sleeper_labels = (
            SleeperLabels(api, options.namespace, partial(self.observe, Kind.POD, "MODIFIED"))
            if options.sleeper_labels
            else None
        )

    # --- keys in -------------------------------------------------------------------------------

    def enqueue(self, key: str) -> None:
        self.queue.add(key)

    def _provider_changed(self, provider: str) -> None:
        pod = self.store.get(Kind.POD, provider)
        node = pod_node(pod) if pod is not None else None
        if node:
            self.enqueue(node)
        self.probes.reconsider(provider)

    def observe(self, kind: Kind, event_type: str | None, body: Mapping[str, Any]) -> None:
        """One watch event: into the store, then the keys it concerns into the queue, and a
        Pod to the tasks that ask its processes."""
        keys = self.store.apply(kind, event_type, body)
        if kind is Kind.POD:
            current = None if event_type == "DELETED" else self.store.get(Kind.POD, name_of(body))
            self.launchers.pod_changed(current, name_of(body))
            self.probes.pod_changed(current, name_of(body))
            self.fetcher.pod_changed(current, name_of(body))
            if current is None:
                uid = str((body.get("metadata") or {}).get("uid") or "")
                self.relays.forget(uid)
            if event_type == "DELETED":
                self._record_gone(body)
        for key in keys:
            self.enqueue(key)

    def _record_gone(self, pod: Mapping[str, Any]) -> None:
        """A Pod left the API: the trace says so, as the simulator's does. A provider's
        instances are gone with it (an engine it was stopping no longer holds its GPUs)."""
        role = pod_role(pod)
        if role is PodRole.LAUNCHER or role is PodRole.DIRECT:
            self.trace.record("provider_deleted", provider=name_of(pod), reason="deleted")
        elif role is PodRole.REQUESTER:
            self.trace.record("requester_deleted", requester=uid_of(pod))

    # --- one reconcile ---------------------------------------------------------------------------

    def _process(self, key: str, done: Callable[[FollowUp], None]) -> None:
        task = asyncio.get_running_loop().create_task(self._reconcile(key, done))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _waits_for_launchers(self, key: str) -> bool:
        """Whether the node's reconcile waits for launchers whose instance lists have not
        arrived yet (:meth:`K8sReader.unsynced_launchers`) — at most ``SYNC_WAIT_S`` each: a
        launcher that answers its probe but not its watch stream is then decided about with
        no instances known."""
        if key == CONFIGS:
            return False
        now_s = self.clock()
        waiting = self.reader.unsynced_launchers(key)
        for name in list(self._unsynced_since):
            if name not in waiting and self.store.get(Kind.POD, name) is None:
                del self._unsynced_since[name]
        late = [
            n for n in waiting if now_s - self._unsynced_since.setdefault(n, now_s) < SYNC_WAIT_S
        ]
        if late:
            log.info("node %s waits for the instance lists of %s", key, ", ".join(late))
        return bool(late)

    async def _reconcile(self, key: str, done: Callable[[FollowUp], None]) -> None:
        follow = FollowUp(failed=True)
        started_s = time.monotonic()
        try:
            if self._waits_for_launchers(key):
                follow = FollowUp(requeue_after_s=SYNC_RETRY_S)
                return
            decision = decide(self.reader, key, now_s=self.clock(), policy=self.options.policy)
            outcomes = await self.executor.apply(decision) if decision.plan.actions else []
            follow = conclude(self.reader, decision, outcomes)
            if self.sleeper_labels is not None and isinstance(decision.snapshot, NodeSnapshot):
                await self.sleeper_labels.sync(decision.snapshot)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("reconcile of %s failed", key)
        finally:
            self.metrics.reconciled(follow, time.monotonic() - started_s, self.queue.take_waits())
            done(follow)

    async def _annotate(self, pod_name: str, uid: str, annotations: Mapping[str, str]) -> None:
        """An annotation written on a Pod by an asking task (the GPUs a requester reported)."""
        body = {"metadata": {"uid": uid, "annotations": dict(annotations)}}
        core = client.CoreV1Api(self.api)
        pod = await asyncio.to_thread(
            core.patch_namespaced_pod, pod_name, self.options.namespace, body
        )
        self.observe(Kind.POD, "MODIFIED", kube.as_dict(self.api, pod))

    async def _warn_unreachable(
        self, kind: SubjectKind, pod_name: str, uid: str, message: str
    ) -> None:
        """An asking task's Warning Event on a Pod whose process does not answer."""
        pod = self.store.get(Kind.POD, pod_name)
        if pod is None or uid_of(pod) != uid:
            return  # gone or replaced meanwhile: nobody to tell
        try:
            await self.executor.warn(kind, pod, REASON_UNREACHABLE, message)
        except Exception:
            log.exception("telling about %s failed", pod_name)

    # --- start and stop ------------------------------------------------------------------------

    async def list_all(self) -> None:
        """The first complete picture: every watched kind listed once."""
        core = client.CoreV1Api(self.api)
        custom = client.CustomObjectsApi(self.api)
        ns = self.options.namespace
        listed: dict[Kind, Any] = {
            Kind.NODE: await asyncio.to_thread(core.list_node),
            Kind.POD: await asyncio.to_thread(core.list_namespaced_pod, ns),
            Kind.CONFIGMAP: await asyncio.to_thread(core.list_namespaced_config_map, ns),
        }
        for kind in (Kind.ISC, Kind.LAUNCHER_CONFIG, Kind.POPULATION_POLICY):
            group, version, plural = WATCHED[kind]
            listed[kind] = await asyncio.to_thread(
                custom.list_namespaced_custom_object, group, version, ns, plural
            )
        for kind, answer in listed.items():
            items = answer["items"] if isinstance(answer, dict) else answer.items
            for item in items:
                body = item if isinstance(item, dict) else kube.as_dict(self.api, item)
                self.observe(kind, None, body)
        await self.modelservices.list_all()
        self.synced = True

    def relist(self) -> None:
        """Every node and the configuration status, once (as the simulator's start)."""
        self.trace.record("relist")
        self.enqueue(CONFIGS)
        for node in self.store.node_names():
            self.enqueue(node)

    def registry(self) -> kopf.OperatorRegistry:
        """Kopf's handlers: one event handler per watched kind, nothing else."""
        registry = kopf.OperatorRegistry()
        kopf.on.login(registry=registry)(_login)
        for kind, (group, version, plural) in WATCHED.items():
            # A coroutine, so that Kopf runs it on the loop (a plain function would run in a
            # thread, away from the queue and the tasks it feeds).
            async def handler(event: Mapping[str, Any], _kind: Kind = kind, **_: Any) -> None:
                body = event.get("object")
                if isinstance(body, Mapping):
                    self.observe(_kind, event.get("type"), body)

            kopf.on.event(group, version, plural, registry=registry, id=f"fma-{plural}")(handler)
        self.modelservices.register(registry)
        return registry

    def settings(self) -> kopf.OperatorSettings:
        settings = kopf.OperatorSettings()
        settings.peering.standalone = True
        settings.posting.enabled = False
        settings.scanning.disabled = True
        settings.batching.batch_window = self.options.batch_window_s
        settings.watching.server_timeout = self.options.watch_server_timeout_s
        settings.watching.client_timeout = self.options.watch_client_timeout_s
        settings.watching.connect_timeout = 10
        settings.watching.inactivity_timeout = self.options.watch_inactivity_s
        settings.networking.request_timeout = 60
        settings.networking.connect_timeout = 10
        return settings

    async def close(self) -> None:
        self.metrics.unfollow()
        self.queue.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.modelservices.close()
        for piece in (self.launchers, self.probes, self.fetcher):
            await piece.stop()
        await self.executor.close()
        await self.calls.aclose()
        self.trace.close()


def _stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)


async def run_operator(options: OperatorOptions, stop: asyncio.Event | None = None) -> int:
    """Run until ``stop`` (or SIGTERM/SIGINT); returns the exit code (1: leadership lost)."""
    stop = stop or asyncio.Event()
    _stop_on_signals(stop)
    api = await asyncio.to_thread(kube.connect)
    health = HealthState()
    server = await start_health_server(options.health_port, health)
    metrics = OperatorMetrics(
        options.namespace, lease=options.lease.name, leading=lambda: health.leading
    )
    metrics_server = await serve_http(options.metrics_port, metrics.asgi_app(), "metrics")
    # Every replica answers the webhook, standbys too: it needs no state but the labels.
    placement_server = await serve_http(
        options.placement_port,
        placement_app(options.placement_weight),
        "placement",
        tls=options.placement_tls,
    )
    try:
        elector = None
        if options.leader_election:
            identity = options.identity or default_identity()
            elector = LeaseElector(api, options.namespace, identity, options.lease)
            if not await elector.acquire(stop):
                return 0
        health.leading = True
        return await _lead(options, api, stop, elector, health, metrics)
    finally:
        for running in (server, metrics_server, placement_server):
            if running is not None:
                await running.stop()
        kube.close(api)


async def _lead(
    options: OperatorOptions,
    api: client.ApiClient,
    stop: asyncio.Event,
    elector: LeaseElector | None,
    health: "HealthState",
    metrics: OperatorMetrics,
) -> int:
    operator = Operator(options, api, metrics=metrics)
    kopf_stop = asyncio.Event()
    # Renewing starts at once: listing and starting the watches may take longer than a lease.
    lease = asyncio.create_task(elector.hold(stop), name="lease") if elector else None
    code = 0
    try:
        await operator.list_all()
        if lease is not None and lease.done():
            return 1  # the Lease was lost while listing: act on nothing
        operator.relist()
        kopf_ready = asyncio.Event()
        kopf_task = asyncio.create_task(
            kopf.operator(
                registry=operator.registry(),
                settings=operator.settings(),
                namespaces=[options.namespace],
                standalone=True,
                stop_flag=kopf_stop,
                ready_flag=kopf_ready,
            ),
            name="kopf",
        )
        health.operator = operator
        # Kopf takes SIGTERM for itself once it runs; the operator stops its own way (the
        # Lease released, the queue drained), so take the signals back.
        await kopf_ready.wait()
        _stop_on_signals(stop)
        waiters = [asyncio.create_task(stop.wait(), name="stop"), kopf_task]
        if lease is not None:
            waiters.append(lease)
        finished, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        if kopf_task in finished and not stop.is_set():
            log.error("the watches stopped: %s", kopf_task.exception())
            code = 1
        elif elector is not None and not elector.leading and not stop.is_set():
            code = 1  # leadership lost: another replica may act now
        kopf_stop.set()
        for waiter in waiters:
            if waiter is not kopf_task:
                waiter.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(kopf_task, timeout=10)
    finally:
        health.operator = None
        if lease is not None:
            lease.cancel()
        await operator.close()
        if elector is not None:
            # Only now that nothing acts any more: a standby may take over at once.
            await elector.release()
    return code


# --- health endpoints --------------------------------------------------------------------------


@dataclass
class HealthState:
    leading: bool = False
    operator: Operator | None = None

    @property
    def ready(self) -> bool:
        """Acting: the Lease held and the first complete picture taken."""
        return self.leading and self.operator is not None and self.operator.synced


class _Server:
    def __init__(self, server: Any, task: asyncio.Task[None]) -> None:
        self._server = server
        self._task = task

    async def stop(self) -> None:
        self._server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._task, timeout=5)


async def start_health_server(port: int | None, health: HealthState) -> _Server | None:
    """``/healthz`` (the process answers) and ``/readyz`` (it acts: 503 while standby)."""
    if port is None:
        return None
    from fastapi import FastAPI
    from fastapi.responses import PlainTextResponse

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/healthz", response_class=PlainTextResponse)
    async def healthz() -> str:
        return "ok"

    @app.get("/readyz", response_class=PlainTextResponse)
    async def readyz() -> PlainTextResponse:
        if health.ready:
            return PlainTextResponse("ok")
        return PlainTextResponse("standby" if not health.leading else "syncing", status_code=503)

    return await serve_http(port, app, "health")


async def serve_http(
    port: int | None, app: Any, name: str, *, tls: tuple[Path, Path] | None = None
) -> _Server | None:
    """Serve the ASGI ``app`` on ``port`` of every address, on this loop (None: nothing);
    over HTTPS with ``tls`` (certificate and key files)."""
    if port is None:
        return None
    import uvicorn

    class QuietServer(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield  # the operator handles SIGTERM itself

    certfile, keyfile = tls if tls is not None else (None, None)
    server = QuietServer(
        uvicorn.Config(
            app,
            host="0.0.0.0",  # noqa: S104
            port=port,
            log_level="warning",
            lifespan="off",
            ssl_certfile=certfile,
            ssl_keyfile=keyfile,
        )
    )

    async def serve() -> None:
        try:
            await server.serve()
        except SystemExit:  # uvicorn exits when it cannot listen: say so, and act on
            log.error("the %s endpoint cannot listen on port %d", name, port)

    task = asyncio.create_task(serve(), name=name)
    return _Server(server, task)
