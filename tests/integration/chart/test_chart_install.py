"""``helm install charts/fma`` on the test control plane, and a requester served through it.

Nothing is done outside the chart and the cluster: the chart's CRDs, RBAC, admission policies
and Deployment are installed by helm, and the pod runner runs the operator's Pod itself, as the
chart's ServiceAccount (its token is all the operator has). A requester is then served warm
(from the population's launcher) and, after it went and came back, hot (its instance woken) —
so every API call the operator makes on those paths goes through the chart's Roles: a verb
missing from them fails this test (the operator's log must show no denial, and the requester
would not be served). The admission policies are judged too: the operator may write FMA's
records, the cluster admin may not.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException
from prometheus_client.parser import text_string_to_metric_families

from fma.api.constants import (
    ANN_INFERENCE_SERVER_CONFIG,
    ANN_REQUESTER,
    CONFIGMAP_GPU_MAP,
    LABEL_COMPONENT,
    LABEL_DUAL,
    LABEL_SLEEPING,
)
from fma.core.admission import PodMeta, update_denial
from fma.testcluster.cluster import kubectl
from fma.testcluster.state import LocalCluster
from fma.testcluster.wait import wait_until
from tests.integration.conftest import GPU_MAP_NAMESPACE, helm_in
from tests.integration.operator.harness import Obj, World, is_ready, labels

pytestmark = pytest.mark.integration

CHART = Path(__file__).resolve().parents[3] / "charts" / "fma"
RELEASE = "fma"
NODE = "gpu-node-0"
LAUNCHER_SA = "fma-launcher"
DENIALS = ("Forbidden", "forbidden", "(403)", 'statusCode="403"')
"""How a denied API call shows in the operator's log (a bare "403" would also match the
random UIDs and durations the log is full of)."""
ADMIN = "kubernetes-admin"  # the test control plane's admin: no FMA controller


@dataclass
class Release:
    """The installed chart: its namespace and the operator's Pod."""

    cluster: LocalCluster
    namespace: str
    core: client.CoreV1Api
    world: World
    """The test's namespace: what it makes there, and what it reads back."""

    def operator_pods(self) -> list[Any]:
        selector = f"{LABEL_COMPONENT}=dual-pods-controller"
        return list(self.core.list_namespaced_pod(self.namespace, label_selector=selector).items)

    def operator_pod(self) -> Any:
        (pod,) = [p for p in self.operator_pods() if p.metadata.deletion_timestamp is None]
        return pod

    def operator_log(self) -> str:
        """The operator container's output, as the pod runner keeps it."""
        pod = self.operator_pod()
        directory = (
            self.cluster.state_dir
            / "pods"
            / f"{self.namespace}_{pod.metadata.name}_{pod.metadata.uid}"
        )
        return "".join(
            p.read_text(errors="replace") for p in sorted(directory.glob("controller/*.log"))
        )

    def messages(self, reason: str) -> list[str]:
        """The messages of the namespace's Events of ``reason``."""
        events = self.core.list_namespaced_event(self.namespace).items
        return [str(e.message) for e in events if e.reason == reason]

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """The operator's /metrics, at its Pod IP as Prometheus scrapes it."""
        ip = self.operator_pod().status.pod_ip
        text = httpx.get(f"http://{ip}:8002/metrics", timeout=5, trust_env=False).text
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }


@pytest.fixture
def chart_values() -> dict[str, Any]:
    """More values for the release: a test module overrides this fixture to install it so."""
    return {}


@pytest.fixture
def release(
    request: pytest.FixtureRequest,
    testcluster: LocalCluster,
    api: Any,
    namespace: str,
    tmp_path: Path,
    chart_values: dict[str, Any],
) -> Iterator[Release]:
    if testcluster.pod_network is None:
        pytest.skip("no pod runner on this machine (needs root): the operator's Pod cannot run")
    helm = helm_in(testcluster, tmp_path, timeout=180)

    installed = Release(
        testcluster, namespace, client.CoreV1Api(api), World(testcluster, api, namespace, tmp_path)
    )
    # The cluster's GPUs, given to the chart's gpu-map (the controller places by it).
    gpu_map = installed.core.read_namespaced_config_map(CONFIGMAP_GPU_MAP, GPU_MAP_NAMESPACE)
    values = tmp_path / "values.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "image": {"tag": "test"},
                "gpuMap": {node: json.loads(gpus) for node, gpus in gpu_map.data.items()},
                **chart_values,
            }
        )
    )
    deployed = False
    try:
        done = helm(
            "install", RELEASE, str(CHART), "--namespace", namespace,
            "--values", str(values), "--wait", "--timeout", "120s",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "STATUS: deployed" in done.stdout
        deployed = True
        yield installed
    finally:
        call = getattr(request.node, "report_call", None)
        if not deployed or (call is not None and call.failed):
            print("\n--- Events ---")
            for event in installed.core.list_namespaced_event(namespace).items:
                print(f"{event.involved_object.name}: {event.reason}: {event.message}")
            try:
                print(f"\n--- the operator's log ---\n{installed.operator_log()[-6000:]}")
            except Exception as error:  # no Pod: helm's answer says why
                print(f"\n(no operator log: {error})")
        # The cluster-wide admission policies go with the release: other tests' operators
        # run as the cluster admin, whom they would deny.
        helm("uninstall", RELEASE, "--namespace", namespace, "--wait", "--timeout", "60s")
        wait_until(
            lambda: not installed.operator_pods(),
            timeout=30,
            what="the operator's Pod to be gone",
        )
        installed.world.close()  # the finalizers nobody removes once the operator is gone


@pytest.fixture
def world(release: Release) -> World:
    return release.world


def test_the_chart_serves_a_requester_warm_then_hot(release: Release, world: World) -> None:
    assert is_ready(world.pod(release.operator_pod().metadata.name) or {})
    world.launcher_config("lc1")  # its launchers run as the chart's launcher ServiceAccount:
    template = {"podTemplate": {"spec": {"serviceAccountName": LAUNCHER_SA}}}
    world.patch_custom("LauncherConfig", "lc1", {"spec": template})
    world.isc("isc1", port=8005, model="smollm")
    world.population("lpp1", "lc1", 1, {"matchLabels": {"nvidia.com/gpu.present": "true"}})
    world.wait(
        lambda: all(any(is_ready(p) for p in world.launchers(n)) for n in world.cluster.nodes),
        "the population's launchers to be Ready",
    )
    assert {p["spec"]["serviceAccountName"] for p in world.launchers()} == {LAUNCHER_SA}

    world.replicaset("rs1", isc="isc1", node=NODE)
    requester, launcher = world.served("rs1")
    name = launcher["metadata"]["name"]
    with pytest.raises(ApiException) as refused:  # the admin is no FMA controller
        world.core.patch_namespaced_pod(
            requester["metadata"]["name"],
            world.namespace,
            {"metadata": {"labels": {LABEL_DUAL: "x"}}},
        )
    assert "may be changed only by the FMA controllers" in str(refused.value.body)
    _upstream_admission_cases(release, requester, launcher)

    world.scale("rs1", 0)
    world.gone("rs1")

    def asleep_and_unbound() -> bool:
        pod = world.pod(name)
        return (
            pod is not None
            and labels(pod).get(LABEL_SLEEPING) == "true"
            and LABEL_DUAL not in labels(pod)
        )

    world.wait(asleep_and_unbound, f"{name} to be unbound with its instance asleep")
    world.scale("rs1", 1)
    _, again = world.served("rs1")
    assert again["metadata"]["name"] == name  # woken where it slept

    bound = sorted(release.messages("Bound"))
    assert [m.rsplit(" ", 1)[1] for m in bound] == ["(hot)", "(warm)"]
    assert len(release.messages("Actuated")) == 2

    found = release.metrics()
    count = "fma_actuation_seconds_count"
    for path in ("warm", "hot"):
        series = (
            ("exported_namespace", world.namespace),
            ("instancesDeleted", "0"),  # no sleeper had to go to make room
            ("isc_name", "isc1"),
            ("path", path),
        )
        assert found.get((count, series)) == 1, sorted(k for k in found if k[0] == count)
    assert found[("leader_election_master_status", (("name", "fma-controller"),))] == 1

    log = release.operator_log()
    assert log, "no operator log: the denial check below would be vacuous"
    assert not [line for line in log.splitlines() if any(d in line for d in DENIALS)], log[-4000:]


def _upstream_admission_cases(release: Release, requester: Obj, launcher: Obj) -> None:
    """Upstream's admission-policy checks 1-9, numbered as upstream numbers them, as
    ``kubectl label``/``annotate`` by the cluster admin (no FMA controller) against the bound
    pair the chart's operator just made: the Kubernetes API server evaluates the chart's CEL,
    and each outcome must agree with the pure rule the policies are generated from."""
    namespace = release.namespace
    unbound, ordinary = "unbound-requester", "ordinary"
    for name, marks in (
        (unbound, {ANN_INFERENCE_SERVER_CONFIG: "no-such-isc"}),
        (ordinary, {}),
    ):
        release.core.create_namespaced_pod(
            namespace,
            {
                "metadata": {"name": name, "annotations": marks},
                "spec": {"containers": [{"name": "c", "image": "example.com/ordinary:1"}]},
            },
        )
    bound_requester = requester["metadata"]["name"]
    bound_launcher = launcher["metadata"]["name"]
    cases = [
        (1, bound_launcher, ("annotate", f"{ANN_REQUESTER}=someone else"), False),
        (2, bound_launcher, ("label", f"{LABEL_DUAL}=other"), False),
        (3, bound_launcher, ("label", f"{LABEL_DUAL}-"), False),
        (4, bound_requester, ("annotate", f"{ANN_INFERENCE_SERVER_CONFIG}=isc2"), False),
        (5, bound_requester, ("annotate", f"{ANN_INFERENCE_SERVER_CONFIG}-"), False),
        (6, bound_requester, ("label", "team=inference"), True),
        (7, unbound, ("annotate", f"{ANN_INFERENCE_SERVER_CONFIG}=isc2"), True),
        (8, unbound, ("label", "team=inference"), True),
        (9, ordinary, ("label", "team=inference"), True),
    ]
    outcomes = {}
    for number, pod, (verb, change), _allowed in cases:
        before = _meta(release.core.read_namespaced_pod(pod, namespace))
        done = kubectl(
            release.cluster, "--namespace", namespace, verb, "pod", pod, change, "--overwrite",
            check=False,
        )  # fmt: skip
        assert done.returncode == 0 or "denied" in done.stderr, (number, done.stderr)
        outcomes[number] = done.returncode == 0
        after = _meta(release.core.read_namespaced_pod(pod, namespace))
        if outcomes[number]:  # the pure rule, on the change that was made, agrees
            assert update_denial(before, after, ADMIN) is None, number
        else:
            assert after == before, number  # nothing of a denied change was written
            assert update_denial(before, _changed(before, verb, change), ADMIN), number
    assert outcomes == {number: allowed for number, _, _, allowed in cases}


def _meta(pod: Any) -> PodMeta:
    return PodMeta(dict(pod.metadata.labels or {}), dict(pod.metadata.annotations or {}))


def _changed(meta: PodMeta, verb: str, change: str) -> PodMeta:
    """``meta`` after ``kubectl label|annotate KEY=VALUE`` (or ``KEY-``)."""
    target = dict(meta.labels if verb == "label" else meta.annotations)
    if change.endswith("-"):
        target.pop(change[:-1], None)
    else:
        key, value = change.split("=", 1)
        target[key] = value
    if verb == "label":
        return PodMeta(target, meta.annotations)
    return PodMeta(meta.labels, target)
