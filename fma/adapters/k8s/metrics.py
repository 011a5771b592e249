"""The operator's Prometheus metrics, served at ``/metrics`` on the metrics port (8002).

Names are upstream's controller's where they mean the same thing, and
client-go's library names for the work queue and the Lease, which upstream exports too; the
table of every metric and its labels is in ``docs/chart.md``. Paths are FMA's four (``hot``,
``warm``, ``cold_launcher``, ``cold``).

Gauges are computed from the operator's informer cache when scraped, so they cost nothing
between scrapes. Histograms and counters are fed by hooks: the event trace's records
(:meth:`OperatorMetrics.record`, a listener of :class:`~fma.adapters.k8s.trace.OperatorTrace`),
each finished reconcile (:meth:`OperatorMetrics.reconciled`), each HTTP call to a requester,
engine or launcher (:meth:`OperatorMetrics.http_call`, a listener of
:class:`~fma.adapters.k8s.calls.Calls`) and each launcher Pod's creation
(:meth:`OperatorMetrics.launcher_created`). Everything runs on the operator's event loop, the
scrape included, so the cache is read between changes, never during one.
"""

from collections import Counter as Tally
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Final

from fastapi import FastAPI, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from fma.adapters.k8s.store import Kind, ObjectStore, name_of
from fma.adapters.k8s.views import PodRole, annotations_of, labels_of, pod_role
from fma.api.constants import (
    ANN_ACCELERATORS,
    ANN_INFERENCE_SERVER_CONFIG,
    CONTAINER_INFERENCE_SERVER,
    LABEL_DUAL,
    LABEL_INSTANCE,
    LABEL_LAUNCHER_CONFIG_NAME,
)
from fma.control.queue import WorkQueue
from fma.core.outcomes import FollowUp
from fma.core.reasons import RECLAIMED

ACTUATION_BUCKETS_S: Final = (
    0.1,
    0.25,
    0.5,
    1.0,
    2.0,
    3.0,
    5.0,
    7.5,
    10.0,
    15.0,
    30.0,
    60.0,
    120.0,
    240.0,
    480.0,
    960.0,
    1920.0,
)
"""Upstream's buckets (1 s … 1920 s) with finer ones below a second, where hot paths land."""
RECONCILE_BUCKETS_S: Final = tuple(4.0**k / 64 for k in range(7))
"""Upstream's work-queue buckets: 1/64 s times 4^k, seven of them (15.6 ms … 64 s)."""
HTTP_BUCKETS_S: Final = (
    0.001,
    0.003,
    0.01,
    0.03,
    0.1,
    0.3,
    1.0,
    3.0,
    10.0,
    30.0,
    90.0,
    270.0,
    810.0,
)
"""Upstream's range for HTTP calls, 1 ms … 810 s."""
LAUNCHER_CREATE_BUCKETS_S: Final = (0.001, 0.01, 0.1, 1.0, 2.0, 3.0, 4.0, 5.0)
"""Upstream's buckets for a launcher Pod's create call."""
QUEUE_NAME: Final = "nodes"
FOLLOWED_MAX: Final = 4096
"""Providers and requesters whose reclaimed instances are followed at once (oldest forgotten)."""


def reconcile_result(follow: FollowUp) -> str:
    """``error`` (it failed: back-off), ``requeue`` (look again later), else ``success``."""
    if follow.failed:
        return "error"
    return "requeue" if follow.requeue_after_s is not None else "success"


class OperatorMetrics:
    """The operator's metrics in a registry of their own (see the module docstring).

    ``namespace`` is the one the operator serves (``exported_namespace``); ``lease`` the name
    of its Lease; ``leading`` says whether this replica holds it. ``runtime`` adds the
    ``process_*`` and ``python_*`` collectors (off in tests that compare expositions)."""

    def __init__(
        self,
        namespace: str,
        *,
        lease: str = "",
        leading: Callable[[], bool] = lambda: False,
        runtime: bool = True,
    ) -> None:
        self.namespace = namespace
        self.registry = CollectorRegistry()
        self._actuation = Histogram(
            "fma_actuation_seconds",
            "Seconds from a requester's container start to its first ready relay, by path "
            "and the number of sleeping instances deleted to make room for it.",
            ["exported_namespace", "path", "instancesDeleted", "isc_name"],
            buckets=ACTUATION_BUCKETS_S,
            registry=self.registry,
        )
        self._http = Histogram(
            "fma_http_latency_seconds",
            "Seconds of the operator's HTTP calls to requesters, engines and launchers.",
            ["purpose", "method", "exported_namespace", "isc_name", "status_code"],
            buckets=HTTP_BUCKETS_S,
            registry=self.registry,
        )
        self._launcher_create = Histogram(
            "fma_launcher_create_seconds",
            "Seconds of the API call that creates a launcher Pod.",
            ["exported_namespace", "lcfg_name", "success"],
            buckets=LAUNCHER_CREATE_BUCKETS_S,
            registry=self.registry,
        )
        self._reclaimed: dict[str, int] = {}
        """Provider -> sleeping instances reclaimed on it since its last binding."""
        self._reclaimed_for: dict[str, int] = {}
        """Requester UID -> instances reclaimed for its actuation, until it is recorded."""
        self._reconcile = Histogram(
            "fma_reconcile_duration_seconds",
            "Seconds one key's gather, decide and apply took, by result.",
            ["result"],
            buckets=RECONCILE_BUCKETS_S,
            registry=self.registry,
        )
        self._queue_wait = Histogram(
            "workqueue_queue_duration_seconds",
            "Seconds a key waited in the work queue before it was processed.",
            ["name"],
            buckets=RECONCILE_BUCKETS_S,
            registry=self.registry,
        )
        self._events = Counter(
            "fma_k8s_events",
            "Kubernetes Events the operator created, by reason and type.",
            ["reason", "type"],
            registry=self.registry,
        )
        self._state = _StateCollector(namespace, lease, leading)
        self.registry.register(self._state)
        if runtime:
            for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
                self.registry.register(collector)

    # --- what the operator tells ---------------------------------------------------------------

    def follow(self, store: ObjectStore, queue: WorkQueue) -> None:
        """Compute the gauges from this cache and queue (the acting operator's)."""
        self._state.store, self._state.queue = store, queue

    def unfollow(self) -> None:
        self._state.store, self._state.queue = None, None

    def record(self, kind: str, fields: Mapping[str, Any]) -> None:
        """One record of the event trace (``docs/events.md``): ``actuation`` and
        ``k8s_event`` feed a histogram and a counter. The instances reclaimed on a launcher
        (``instance_deleted`` for :data:`~fma.core.reasons.RECLAIMED`, which comes before
        the binding it makes room for) are counted to the requester next bound to it
        (``bind``), and labelled on its actuation (``instancesDeleted``)."""
        if kind == "actuation":
            requester = str(fields.get("requester") or "")
            deleted = self._reclaimed_for.pop(requester, 0)
            self._actuation.labels(
                self.namespace,
                str(fields.get("path") or ""),
                str(deleted),
                str(fields.get("isc") or ""),
            ).observe(float(fields.get("latency_s") or 0.0))
        elif kind == "k8s_event":
            kind_of_event = "Warning" if fields.get("warning") else "Normal"
            self._events.labels(str(fields.get("reason") or ""), kind_of_event).inc()
        elif kind == "instance_deleted" and fields.get("reason") == RECLAIMED:
            provider = str(fields.get("provider") or "")
            _bounded_put(self._reclaimed, provider, self._reclaimed.pop(provider, 0) + 1)
        elif kind == "bind" and fields.get("requester"):
            reclaimed = self._reclaimed.pop(str(fields.get("provider") or ""), 0)
            _bounded_put(self._reclaimed_for, str(fields["requester"]), reclaimed)

    def http_call(
        self, purpose: str, method: str, status: int, seconds: float, requester_name: str
    ) -> None:
        """One HTTP call ended (``status`` 0: no answer). Its ``isc_name`` is the
        InferenceServerConfig of the requester it was made for, where there is one."""
        isc = ""
        if requester_name and self._state.store is not None:
            pod = self._state.store.get(Kind.POD, requester_name)
            if pod is not None:
                isc = annotations_of(pod).get(ANN_INFERENCE_SERVER_CONFIG, "")
        self._http.labels(purpose, method, self.namespace, isc, str(status)).observe(
            max(0.0, seconds)
        )

    def launcher_created(self, launcher_config: str, seconds: float, success: bool) -> None:
        """The API call creating a launcher Pod of ``launcher_config`` ended."""
        self._launcher_create.labels(
            self.namespace, launcher_config, "true" if success else "false"
        ).observe(max(0.0, seconds))

    def reconciled(self, follow: FollowUp, seconds: float, waits_s: Iterable[float]) -> None:
        """A processed key: how it ended, how long it took, and the queue waits since the
        last one (:meth:`~fma.control.queue.WorkQueue.take_waits`)."""
        self._reconcile.labels(reconcile_result(follow)).observe(max(0.0, seconds))
        waited = self._queue_wait.labels(QUEUE_NAME)
        for wait_s in waits_s:
            waited.observe(max(0.0, wait_s))

    # --- serving -------------------------------------------------------------------------------

    def exposition(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)

    def asgi_app(self) -> FastAPI:
        """An ASGI app answering ``GET /metrics`` with :meth:`exposition`."""
        app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

        @app.get("/metrics")
        async def metrics() -> Response:
            return Response(self.exposition(), media_type=CONTENT_TYPE_LATEST)

        return app


class _StateCollector(Collector):
    """Gauges and counters read, at each scrape, from the cache, the queue and the Lease."""

    def __init__(self, namespace: str, lease: str, leading: Callable[[], bool]) -> None:
        self.namespace = namespace
        self.lease = lease
        self.leading = leading
        self.store: ObjectStore | None = None
        self.queue: WorkQueue | None = None

    def collect(self) -> Iterator[Metric]:
        leader = GaugeMetricFamily(
            "leader_election_master_status",
            "1 while this replica holds the Lease and acts.",
            labels=["name"],
        )
        leader.add_metric([self.lease], 1.0 if self.leading() else 0.0)
        yield leader
        if self.queue is not None:
            yield from _queue_metrics(self.queue)
        if self.store is not None:
            yield from _cache_metrics(self.store, self.namespace)


def _queue_metrics(queue: WorkQueue) -> Iterator[Metric]:
    depth = GaugeMetricFamily("workqueue_depth", "Keys waiting for a worker.", labels=["name"])
    depth.add_metric([QUEUE_NAME], float(queue.depth))
    adds = CounterMetricFamily(
        "workqueue_adds",
        "Keys added to the work queue (once per key while queued).",
        labels=["name"],
    )
    adds.add_metric([QUEUE_NAME], float(queue.stats.adds))
    retries = CounterMetricFamily(
        "workqueue_retries", "Keys re-added after a failed processing.", labels=["name"]
    )
    retries.add_metric([QUEUE_NAME], float(queue.stats.retries))
    return iter((depth, adds, retries))


def _live_pods(store: ObjectStore) -> Iterator[Mapping[str, Any]]:
    for pod in store.all(Kind.POD).values():
        if not (pod.get("metadata") or {}).get("deletionTimestamp"):
            yield pod


def _cache_metrics(store: ObjectStore, namespace: str) -> Iterator[Metric]:
    iscs: Tally[str] = Tally(
        str((isc.get("spec") or {}).get("launcherConfigName") or "")
        for isc in store.all(Kind.ISC).values()
    )
    requesters: Tally[str] = Tally()
    launchers: Tally[tuple[str, ...]] = Tally()
    duality = GaugeMetricFamily(
        "fma_duality",
        "1 per GPU of each requester bound to a provider (join DCGM's series on UUID).",
        labels=[
            "exported_namespace",
            "requester_name",
            "exported_pod",
            "exported_container",
            "instance_id",
            "UUID",
            "node",
        ],
    )
    for pod in _live_pods(store):
        role = pod_role(pod)
        labels = labels_of(pod)
        if role is PodRole.REQUESTER:
            isc = annotations_of(pod).get(ANN_INFERENCE_SERVER_CONFIG)
            if isc:
                requesters[isc] += 1
            provider = labels.get(LABEL_DUAL)
            if provider:
                node = str((pod.get("spec") or {}).get("nodeName") or "")
                accelerators = annotations_of(pod).get(ANN_ACCELERATORS, "")
                for uuid in filter(None, accelerators.split(",")):
                    duality.add_metric(
                        [
                            namespace,
                            name_of(pod),
                            provider,
                            CONTAINER_INFERENCE_SERVER,
                            labels.get(LABEL_INSTANCE, ""),
                            uuid,
                            node,
                        ],
                        1.0,
                    )
        elif role is PodRole.LAUNCHER:
            phase = str((pod.get("status") or {}).get("phase") or "Pending")
            launchers[(labels.get(LABEL_LAUNCHER_CONFIG_NAME, ""), phase)] += 1
    yield _gauge(
        "fma_isc_count",
        "InferenceServerConfigs by LauncherConfig.",
        ["launcher_config_name"],
        {(k,): v for k, v in iscs.items()},
    )
    yield _gauge(
        "fma_requester_count",
        "Live requesters of the launcher path, by InferenceServerConfig.",
        ["isc_name"],
        {(k,): v for k, v in requesters.items()},
    )
    yield _gauge(
        "fma_launcher_pod_count",
        "Launcher Pods by LauncherConfig and phase.",
        ["lcfg_name", "phase"],
        dict(launchers),
    )
    yield duality


def _bounded_put(book: dict[str, int], key: str, value: int) -> None:
    """Set ``book[key]`` as its newest entry, forgetting the oldest beyond FOLLOWED_MAX."""
    book.pop(key, None)
    book[key] = value
    while len(book) > FOLLOWED_MAX:
        book.pop(next(iter(book)))


def _gauge(
    name: str, help_text: str, labels: list[str], values: Mapping[tuple[str, ...], int]
) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(name, help_text, labels=labels)
    for key, value in sorted(values.items()):
        gauge.add_metric(list(key), float(value))
    return gauge
