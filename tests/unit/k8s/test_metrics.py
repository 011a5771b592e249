"""The operator's Prometheus metrics: what the trace, the reconciles, the queue and the informer
cache make of them, read back from the text exposition as Prometheus would."""

import asyncio
import socket
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from fma.adapters.k8s.calls import CallError, Calls
from fma.adapters.k8s.metrics import OperatorMetrics
from fma.adapters.k8s.operator import Operator, OperatorOptions, serve_http
from fma.adapters.k8s.store import Kind, ObjectStore
from fma.control.queue import WorkQueue
from fma.core.outcomes import FollowUp
from fma.core.reasons import OBSOLETE, RECLAIMED
from tests.unit.k8s.conftest import NS, isc_obj, launcher_pod, requester_pod

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def samples(metrics: OperatorMetrics) -> Samples:
    """Every sample: (name, sorted labels) -> value."""
    text = metrics.exposition().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(found: Samples, metric: str, **labels: str) -> float | None:
    return found.get((metric, tuple(sorted(labels.items()))))


def named(found: Samples, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {labels: v for (n, labels), v in found.items() if n == name}


@pytest.fixture
def metrics() -> OperatorMetrics:
    return OperatorMetrics(NS, lease="fma-controller", runtime=False)


# --- fed by the trace ---------------------------------------------------------------------------


def test_an_actuation_is_observed_per_path_and_isc(metrics: OperatorMetrics) -> None:
    metrics.record("actuation", {"path": "hot", "latency_s": 0.4, "isc": "isc-a", "model": "m"})
    metrics.record("actuation", {"path": "hot", "latency_s": 2.5, "isc": "isc-a", "model": "m"})
    metrics.record("actuation", {"path": "cold_launcher", "latency_s": 20.0, "isc": "isc-b"})
    found = samples(metrics)
    hot = {"exported_namespace": NS, "path": "hot", "isc_name": "isc-a", "instancesDeleted": "0"}
    assert value(found, "fma_actuation_seconds_count", **hot) == 2
    assert value(found, "fma_actuation_seconds_sum", **hot) == pytest.approx(2.9)
    assert value(found, "fma_actuation_seconds_bucket", **hot, le="0.5") == 1
    assert value(found, "fma_actuation_seconds_bucket", **hot, le="3.0") == 2
    cold = {"exported_namespace": NS, "path": "cold_launcher", "isc_name": "isc-b"}
    cold |= {"instancesDeleted": "0"}
    assert value(found, "fma_actuation_seconds_bucket", **cold, le="15.0") == 0
    assert value(found, "fma_actuation_seconds_bucket", **cold, le="30.0") == 1


def test_events_are_counted_by_reason_and_type(metrics: OperatorMetrics) -> None:
    for reason, warning in (("Bound", False), ("Bound", False), ("LauncherStuck", True)):
        metrics.record("k8s_event", {"reason": reason, "warning": warning, "subject": "x"})
    found = samples(metrics)
    assert value(found, "fma_k8s_events_total", reason="Bound", type="Normal") == 2
    assert value(found, "fma_k8s_events_total", reason="LauncherStuck", type="Warning") == 1


def test_an_actuation_counts_the_sleepers_reclaimed_to_make_room_for_it(
    metrics: OperatorMetrics,
) -> None:
    for victim in ("i1", "i2"):  # a plan deletes the victims, then binds the launcher
        metrics.record(
            "instance_deleted", {"provider": "l1", "instance": victim, "reason": RECLAIMED}
        )
    metrics.record("instance_deleted", {"provider": "l1", "instance": "i3", "reason": OBSOLETE})
    metrics.record("instance_deleted", {"provider": "l2", "instance": "i4", "reason": RECLAIMED})
    metrics.record("bind", {"provider": "l1", "requester": "r1", "path": "warm"})
    metrics.record("bind", {"provider": "l3", "requester": "r2", "path": "hot"})
    metrics.record("actuation", {"requester": "r1", "path": "warm", "latency_s": 1, "isc": "a"})
    metrics.record("actuation", {"requester": "r2", "path": "hot", "latency_s": 1, "isc": "a"})
    metrics.record("bind", {"provider": "l1", "requester": "r3", "path": "hot"})  # counted once
    metrics.record("actuation", {"requester": "r3", "path": "hot", "latency_s": 1, "isc": "a"})
    counts = named(samples(metrics), "fma_actuation_seconds_count")
    by = {
        dict(labels)["path"] + "/" + dict(labels)["instancesDeleted"]: n
        for labels, n in counts.items()
    }
    assert by == {"warm/2": 1, "hot/0": 2}


def test_http_calls_are_observed_by_purpose_method_status_and_requesters_isc() -> None:
    metrics = OperatorMetrics(NS, runtime=False)
    store = ObjectStore()
    store.put(Kind.POD, requester_pod("req-a", isc="isc-a"))
    metrics.follow(store, WorkQueue(Scheduler(), lambda _key: None))

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/wake_up":
            return httpx.Response(200)
        raise httpx.ConnectError("refused", request=request)

    async def call() -> None:
        calls = Calls(transport=httpx.MockTransport(answer), listener=metrics.http_call)
        await calls.wake("10.0.0.9", 8005, "req-a")
        with pytest.raises(CallError):
            await calls.sleep("10.0.0.9", 8005, "gone-requester")
        await calls.aclose()

    asyncio.run(call())
    found = samples(metrics)
    wake = {"purpose": "wake", "method": "POST", "exported_namespace": NS, "isc_name": "isc-a"}
    assert value(found, "fma_http_latency_seconds_count", **wake, status_code="200") == 1
    sleep = {"purpose": "sleep", "method": "POST", "exported_namespace": NS, "isc_name": ""}
    assert value(found, "fma_http_latency_seconds_count", **sleep, status_code="0") == 1


def test_a_launcher_pods_create_call_is_observed_by_success(metrics: OperatorMetrics) -> None:
    metrics.launcher_created("lc-a", 0.05, True)
    metrics.launcher_created("lc-a", 2.5, False)
    found = samples(metrics)
    ok = {"exported_namespace": NS, "lcfg_name": "lc-a", "success": "true"}
    failed = {"exported_namespace": NS, "lcfg_name": "lc-a", "success": "false"}
    assert value(found, "fma_launcher_create_seconds_bucket", **ok, le="0.1") == 1
    assert value(found, "fma_launcher_create_seconds_bucket", **failed, le="2.0") == 0
    assert value(found, "fma_launcher_create_seconds_bucket", **failed, le="3.0") == 1


def test_other_trace_records_are_not_metered(metrics: OperatorMetrics) -> None:
    before = samples(metrics)
    metrics.record("bind", {"provider": "p", "requester": "r", "path": "hot"})
    assert samples(metrics) == before


# --- fed by the reconciles and the queue --------------------------------------------------------


@pytest.mark.parametrize(
    ("follow", "result"),
    [
        (FollowUp(), "success"),
        (FollowUp(requeue_after_s=0.5), "requeue"),
        (FollowUp(failed=True), "error"),
    ],
)
def test_a_reconcile_is_observed_by_result(
    metrics: OperatorMetrics, follow: FollowUp, result: str
) -> None:
    metrics.reconciled(follow, 0.02, [0.001, 0.3])
    found = samples(metrics)
    counts = named(found, "fma_reconcile_duration_seconds_count")
    assert counts == {(("result", result),): 1}
    waits = {"name": "nodes"}
    assert value(found, "workqueue_queue_duration_seconds_count", **waits) == 2
    assert value(found, "workqueue_queue_duration_seconds_bucket", **waits, le="0.015625") == 1


class Scheduler:
    def now_s(self) -> float:
        return 0.0

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None:
        fn()


def test_the_queue_and_the_lease_are_read_when_scraped() -> None:
    leading = [False]
    metrics = OperatorMetrics(NS, lease="fma-controller", leading=lambda: leading[0])
    done: list[Callable[[FollowUp], None]] = []
    queue = WorkQueue(Scheduler(), lambda key, finish: done.append(finish), workers=1)
    metrics.follow(ObjectStore(), queue)
    for key in ("node-a", "node-b", "node-c", "node-a"):
        queue.add(key)
    found = samples(metrics)
    assert value(found, "workqueue_depth", name="nodes") == 2  # one is being processed
    assert value(found, "workqueue_adds_total", name="nodes") == 3
    assert value(found, "leader_election_master_status", name="fma-controller") == 0
    done[0](FollowUp(failed=True))
    leading[0] = True
    found = samples(metrics)
    assert value(found, "workqueue_retries_total", name="nodes") == 1
    assert value(found, "leader_election_master_status", name="fma-controller") == 1
    assert any(name.startswith("process_") for name, _ in found)  # the runtime collectors
    metrics.unfollow()
    assert named(samples(metrics), "workqueue_depth") == {}


# --- read from the informer cache ---------------------------------------------------------------


def test_the_cache_gauges(metrics: OperatorMetrics) -> None:
    store = ObjectStore()
    accelerators = "dual-pods.llm-d.ai/accelerators"
    bound = requester_pod(
        "req-1",
        "uid-1",
        isc="opt",
        annotations={accelerators: "GPU-0,GPU-1"},
        labels={"dual-pods.llm-d.ai/dual": "launcher-1", "dual-pods.llm-d.ai/instance": "i-1"},
    )
    waiting = requester_pod("req-2", "uid-2", isc="opt")
    going = requester_pod("req-3", "uid-3", isc="opt", deleting=True)
    direct = requester_pod("req-4", "uid-4")
    pending = launcher_pod("launcher-2", "l-uid-2", lc="lc-big")
    pending["status"] = {}
    for pod in (bound, waiting, going, direct, launcher_pod("launcher-1", "l-uid-1"), pending):
        store.put(Kind.POD, pod)
    for isc in (isc_obj("opt"), isc_obj("qwen"), isc_obj("tiny", lc="lc-big")):
        store.put(Kind.ISC, isc)
    metrics.follow(store, WorkQueue(Scheduler(), lambda key, finish: None))
    found = samples(metrics)
    assert named(found, "fma_requester_count") == {(("isc_name", "opt"),): 2}
    assert named(found, "fma_isc_count") == {
        (("launcher_config_name", "lc-big"),): 1,
        (("launcher_config_name", "lc-small"),): 2,
    }
    assert named(found, "fma_launcher_pod_count") == {
        (("lcfg_name", "lc-big"), ("phase", "Pending")): 1,
        (("lcfg_name", "lc-small"), ("phase", "Running")): 1,
    }
    duality = named(found, "fma_duality")
    assert sorted(dict(labels)["UUID"] for labels in duality) == ["GPU-0", "GPU-1"]
    first: dict[str, Any] = dict(next(iter(duality)))
    assert first | {"UUID": ""} == {
        "exported_namespace": NS,
        "requester_name": "req-1",
        "exported_pod": "launcher-1",
        "exported_container": "inference-server",
        "instance_id": "i-1",
        "UUID": "",
        "node": "node-a",
    }
    assert set(duality.values()) == {1.0}


# --- served ----------------------------------------------------------------------------------


def test_metrics_are_served_as_prometheus_text(metrics: OperatorMetrics) -> None:
    metrics.record("actuation", {"path": "warm", "latency_s": 1.0, "isc": "i"})
    with TestClient(metrics.asgi_app()) as http:
        answer = http.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    assert (
        'fma_actuation_seconds_count{exported_namespace="team-a",instancesDeleted="0",'
        'isc_name="i",path="warm"} 1.0' in (answer.text)
    )


def test_the_operator_meters_its_trace_and_cache() -> None:
    metrics = OperatorMetrics(NS, runtime=False)
    operator = Operator(OperatorOptions(namespace=NS), client.ApiClient(), metrics=metrics)
    operator.trace.record("actuation", path="hot", latency_s=0.3, isc="opt", requester="u")
    operator.store.put(Kind.ISC, isc_obj("opt"))
    found = samples(metrics)
    labels = {"exported_namespace": NS, "path": "hot", "isc_name": "opt", "instancesDeleted": "0"}
    assert value(found, "fma_actuation_seconds_count", **labels) == 1
    assert value(found, "fma_isc_count", launcher_config_name="lc-small") == 1


def test_a_port_already_taken_is_told_and_not_fatal(caplog: pytest.LogCaptureFixture) -> None:
    async def serve_on_a_taken_port() -> None:
        with socket.socket() as taken:
            taken.bind(("0.0.0.0", 0))
            taken.listen()
            port = taken.getsockname()[1]
            metrics = OperatorMetrics(NS, runtime=False)
            server = await serve_http(port, metrics.asgi_app(), "metrics")
            assert server is not None
            await asyncio.wait_for(server.stop(), timeout=10)

    asyncio.run(serve_on_a_taken_port())  # no SystemExit out of uvicorn
    assert "the metrics endpoint cannot listen on port" in caplog.text
