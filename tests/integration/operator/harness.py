"""FMA on the real control plane: the operator as a process, and the objects a test makes.

:class:`World` is one test's namespace: it creates LauncherConfigs, InferenceServerConfigs,
population policies and ReplicaSets of requesters whose containers the pod runner really
runs (the project's image: launchers with the stub engine, requesters), and reads back what
the operator made of them. :class:`OperatorProcess` runs ``fma operator run`` against it, as a
user would, writing its event trace to a file the test can judge.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from fma.api.constants import (
    ANN_ACCELERATORS,
    ANN_INFERENCE_SERVER_CONFIG,
    ANN_REQUESTER,
    ANN_SERVER_PATCH,
    CONFIGMAP_GPU_MAP,
    GROUP,
    LABEL_COMPONENT,
    LABEL_DUAL,
    LABEL_HOSTNAME,
    LABEL_LAUNCHER_CONFIG_NAME,
    LABEL_SLEEPING,
    REQUESTER_SPI_PORT,
    RESOURCE_GPU,
    SPI_ACCELERATORS_PATH,
    VERSION,
)
from fma.testcluster.podrunner.gpus import requested
from fma.testcluster.state import LocalCluster
from fma.testcluster.wait import wait_until

IMAGE = "ghcr.io/llm-d-fma/fma:test"
TIMEOUT = 60.0
STUB = ["--stub-start-s", "0.5", "--stub-sleep-s", "0.2", "--stub-wake-s", "0.2"]
"""Stub engine latencies: short, but long enough that a wake or a sleep is seen in flight."""
T = TypeVar("T")
Obj = dict[str, Any]


def plural(kind: str) -> str:
    return {
        "InferenceServerConfig": "inferenceserverconfigs",
        "LauncherConfig": "launcherconfigs",
        "LauncherPopulationPolicy": "launcherpopulationpolicies",
    }[kind]


class OperatorProcess:
    """``fma operator run`` in a namespace, with its trace and log in ``out_dir``."""

    def __init__(
        self,
        cluster: LocalCluster,
        namespace: str,
        out_dir: Path,
        *extra: str,
        name: str = "operator",
    ) -> None:
        self.cluster = cluster
        self.namespace = namespace
        self.trace = out_dir / f"{name}-events.jsonl"
        self.log = out_dir / f"{name}.log"
        self.extra = extra
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.exit_expected = False
        """The test stopped it, or expects it to exit by itself: no failure when it has."""
        self.interpreter: list[str] = [sys.executable]
        """What runs ``-m fma``: this Python, or a profiler in front of it (benchmarks)."""

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None
        self.starts += 1
        self.exit_expected = False
        env = {**os.environ, "KUBECONFIG": str(self.cluster.kubeconfig)}
        env.pop("KUBERNETES_SERVICE_HOST", None)
        argv = [
            *self.interpreter,
            "-m",
            "fma",
            "operator",
            "run",
            "--namespace",
            self.namespace,
            "--health-port",
            "0",
            "--metrics-port",
            "0",
            "--trace",
            str(self.trace),
            *self.extra,
        ]
        if "--leader-elect" not in self.extra:
            argv.append("--no-leader-elect")
        out = self.log.open("ab")
        self.proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
        out.close()

    def stop(self, *, kill: bool = False, timeout: float = 20.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.exit_expected = True
        self.proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)

    def restart(self, *, kill: bool = False) -> None:
        self.stop(kill=kill)
        self.start()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def events(self) -> list[Obj]:
        if not self.trace.exists():
            return []
        lines = self.trace.read_text().splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class World:
    """One test's namespace on the shared cluster."""

    cluster: LocalCluster
    api: Any
    namespace: str
    out_dir: Path
    operators: list[OperatorProcess] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.core = client.CoreV1Api(self.api)
        self.apps = client.AppsV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)
        self.http = httpx.Client(trust_env=False, timeout=5)

    # --- the operator ----------------------------------------------------------------------------

    def operator(self, *extra: str, name: str = "operator", start: bool = True) -> OperatorProcess:
        process = OperatorProcess(self.cluster, self.namespace, self.out_dir, *extra, name=name)
        self.operators.append(process)
        if start:
            process.start()
        return process

    def close(self) -> None:
        """Stop the operators, then let go of the Pods their finalizers hold (nobody else
        would remove them once the operator is gone)."""
        for process in self.operators:
            process.stop()
        self.http.close()
        for pod in self.pods():
            if pod["metadata"].get("finalizers"):
                try:
                    self.core.patch_namespaced_pod(
                        pod["metadata"]["name"], self.namespace, {"metadata": {"finalizers": None}}
                    )
                except ApiException as error:
                    if error.status != 404:
                        raise

    # --- configuration objects ---------------------------------------------------------------

    def create_custom(self, kind: str, name: str, spec: Obj) -> Obj:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": kind,
            "metadata": {"name": name},
            "spec": spec,
        }
        created: Obj = self.custom.create_namespaced_custom_object(
            GROUP, VERSION, self.namespace, plural(kind), body
        )
        return created

    def get_custom(self, kind: str, name: str) -> Obj:
        got: Obj = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, self.namespace, plural(kind), name
        )
        return got

    def patch_custom(self, kind: str, name: str, patch: Obj) -> None:
        self.custom.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, plural(kind), name, patch
        )

    def delete_custom(self, kind: str, name: str) -> None:
        self.custom.delete_namespaced_custom_object(
            GROUP, VERSION, self.namespace, plural(kind), name
        )

    def launcher_config(
        self,
        name: str,
        *,
        max_instances: int = 2,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
    ) -> Obj:
        """A LauncherConfig whose launchers run ``fma launcher serve --engine stub``, with
        quick probes (the template's own are kept)."""
        container = {
            "name": "inference-server",
            "image": IMAGE,
            "args": ["launcher", "serve", "--engine", "stub"],
            "readinessProbe": {
                "httpGet": {"path": "/v2/vllm/instances", "port": 8001},
                "periodSeconds": 1,
            },
            "livenessProbe": {
                "httpGet": {"path": "/health", "port": 8001},
                "periodSeconds": 5,
                "failureThreshold": 3,
            },
        }
        template: Obj = {"spec": {"terminationGracePeriodSeconds": 5, "containers": [container]}}
        if labels or annotations:
            template["metadata"] = {"labels": labels or {}, "annotations": annotations or {}}
        return self.create_custom(
            "LauncherConfig", name, {"maxInstances": max_instances, "podTemplate": template}
        )

    def isc(
        self,
        name: str,
        *,
        lc: str = "lc1",
        port: int = 8005,
        model: str | None = None,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
        options: str = "",
    ) -> Obj:
        config: Obj = {
            "port": port,
            "options": " ".join(["--model", model or name, *STUB, options]).strip(),
        }
        if labels:
            config["labels"] = labels
        if annotations:
            config["annotations"] = annotations
        return self.create_custom(
            "InferenceServerConfig",
            name,
            {"launcherConfigName": lc, "modelServerConfig": config},
        )

    def population(self, name: str, lc: str, count: int, selector: Obj | None = None) -> Obj:
        return self.create_custom(
            "LauncherPopulationPolicy",
            name,
            {
                "enhancedNodeSelector": {"labelSelector": selector or {}},
                "countForLauncher": [{"launcherConfigName": lc, "launcherCount": count}],
            },
        )

    # --- requesters ------------------------------------------------------------------------------

    def requester_template(
        self,
        app: str,
        *,
        isc: str | None = None,
        server_patch: str | None = None,
        gpus: int = 1,
        node: str | None = None,
        annotations: dict[str, str] | None = None,
    ) -> Obj:
        marks: dict[str, str] = dict(annotations or {})
        if isc is not None:
            marks[ANN_INFERENCE_SERVER_CONFIG] = isc
        if server_patch is not None:
            marks[ANN_SERVER_PATCH] = server_patch
        spec: Obj = {
            "terminationGracePeriodSeconds": 5,
            "containers": [
                {
                    "name": "inference-server",
                    "image": IMAGE,
                    "args": ["requester", "serve"],
                    "resources": {"limits": {RESOURCE_GPU: str(gpus)}},
                    "readinessProbe": {
                        "httpGet": {"path": "/ready", "port": 8080},
                        "periodSeconds": 1,
                    },
                }
            ],
        }
        if node is not None:
            spec["nodeSelector"] = {LABEL_HOSTNAME: node}
        return {"metadata": {"labels": {"app": app}, "annotations": marks}, "spec": spec}

    def replicaset(self, name: str, replicas: int = 1, **template: Any) -> None:
        body = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {"name": name},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": name}},
                "template": self.requester_template(name, **template),
            },
        }
        self.apps.create_namespaced_replica_set(self.namespace, body)

    def scale(self, name: str, replicas: int) -> None:
        self.apps.patch_namespaced_replica_set(
            name, self.namespace, {"spec": {"replicas": replicas}}
        )

    def switch(self, name: str, isc: str) -> None:
        """Point a ReplicaSet's future requesters at another ISC."""
        patch = {
            "spec": {"template": {"metadata": {"annotations": {ANN_INFERENCE_SERVER_CONFIG: isc}}}}
        }
        self.apps.patch_namespaced_replica_set(name, self.namespace, patch)

    # --- reading ---------------------------------------------------------------------------------

    def pods(self, selector: str = "") -> list[Obj]:
        listed = self.core.list_namespaced_pod(self.namespace, label_selector=selector)
        return [self.api.sanitize_for_serialization(p) for p in listed.items]

    def pod(self, name: str) -> Obj | None:
        try:
            return self.api.sanitize_for_serialization(
                self.core.read_namespaced_pod(name, self.namespace)
            )
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def requesters(self, rs: str) -> list[Obj]:
        """The live requesters of ReplicaSet ``rs`` (not being deleted)."""
        return [p for p in self.pods(f"app={rs}") if not p["metadata"].get("deletionTimestamp")]

    def launchers(self, node: str | None = None) -> list[Obj]:
        found = self.pods(f"{LABEL_COMPONENT}=launcher")
        return [p for p in found if node is None or pod_node(p) == node]

    def provider_of(self, requester: Obj) -> Obj | None:
        uid = requester["metadata"]["uid"]
        for pod in self.pods():
            record = (pod["metadata"].get("annotations") or {}).get(ANN_REQUESTER, "")
            if record.split(" ")[0] == uid:
                return pod
        return None

    def instances(self, launcher: Obj) -> list[Obj]:
        """The launcher's instances, asked at its Pod IP as the operator does."""
        ip = launcher["status"]["podIP"]
        listed = self.http.get(f"http://{ip}:8001/v2/vllm/instances").json()
        return list(listed["instances"])

    # --- waiting ---------------------------------------------------------------------------------

    def wait(self, probe: Callable[[], T | None], what: str, timeout: float = TIMEOUT) -> T:
        for process in self.operators:
            if process.exit_expected:
                continue
            if process.proc is not None and process.proc.poll() not in (None, 0, -15):
                raise AssertionError(f"the operator exited: {process.log_text()[-3000:]}")
        return wait_until(probe, timeout=timeout, what=what, interval=0.2, max_interval=0.5)

    def wait_gpus_free(self, timeout: float = TIMEOUT) -> None:
        """Wait until no Pod of another namespace holds GPUs: Pods an earlier test left stopping
        keep theirs until their processes are gone, and the pod runner gives each Pod the
        lowest free GPUs, so a test that says which GPUs its Pods share needs them all free."""

        def free() -> bool:
            pods = self.core.list_pod_for_all_namespaces().items
            return not any(
                pod.metadata.namespace != self.namespace
                and pod.status.phase not in ("Succeeded", "Failed")
                and any(
                    requested(self.api.sanitize_for_serialization(c)) > 0
                    for c in pod.spec.containers
                )
                for pod in pods
            )

        self.wait(free, "the GPUs other namespaces' Pods hold to be free", timeout)

    def served(self, rs: str, timeout: float = TIMEOUT) -> tuple[Obj, Obj]:
        """Wait until ReplicaSet ``rs`` has exactly one requester, Ready, bound both ways
        (``dual`` labels): (requester, provider)."""

        return self.wait(lambda: self.pair(rs), f"ReplicaSet {rs} to be served", timeout)

    def pair(self, rs: str) -> tuple[Obj, Obj] | None:
        """ReplicaSet ``rs``'s one requester and its provider, if it is served now (see
        :meth:`served`)."""
        live = self.requesters(rs)
        if len(live) != 1 or not is_ready(live[0]):
            return None
        requester = live[0]
        provider = self.provider_of(requester)
        if provider is None:
            return None
        if labels(requester).get(LABEL_DUAL) != provider["metadata"]["name"]:
            return None
        if labels(provider).get(LABEL_DUAL) != requester["metadata"]["name"]:
            return None
        return requester, provider

    def gone(self, rs: str, timeout: float = TIMEOUT) -> None:
        self.wait(lambda: not self.pods(f"app={rs}"), f"the requesters of {rs} to go", timeout)

    def served_anew(self, rs: str, first: Obj, timeout: float = TIMEOUT) -> tuple[Obj, Obj]:
        """Wait until ReplicaSet ``rs`` is served (:meth:`served`) by a requester other than
        ``first``: (requester, provider)."""

        def anew() -> tuple[Obj, Obj] | None:
            pair = self.pair(rs)
            if pair is None or pair[0]["metadata"]["uid"] == first["metadata"]["uid"]:
                return None
            return pair

        return self.wait(anew, f"ReplicaSet {rs} to be served by a new requester", timeout)

    def has_replicaset(self, name: str) -> bool:
        listed = self.apps.list_namespaced_replica_set(self.namespace)
        return any(rs.metadata.name == name for rs in listed.items)

    def unbound(self, provider: str, timeout: float = TIMEOUT) -> Obj:
        """Wait until ``provider`` exists unbound (no binding record, no ``dual`` label,
        ``sleeping=true``: its instance asleep or gone); the Pod as it is then."""

        def idle() -> Obj | None:
            pod = self.pod(provider)
            if pod is None or LABEL_DUAL in labels(pod) or ANN_REQUESTER in annotations(pod):
                return None
            return pod if labels(pod).get(LABEL_SLEEPING) == "true" else None

        return self.wait(idle, f"{provider} to be unbound and asleep", timeout)

    def actuations(self) -> list[Obj]:
        """The actuations every operator of the test recorded, in order."""
        found = [e for p in self.operators for e in p.events() if e["kind"] == "actuation"]
        return sorted(found, key=lambda e: float(e["t"]))


# --- reading Pods ---------------------------------------------------------------------------------


def labels(pod: Obj) -> dict[str, str]:
    return dict(pod["metadata"].get("labels") or {})


def annotations(pod: Obj) -> dict[str, str]:
    return dict(pod["metadata"].get("annotations") or {})


def pod_node(pod: Obj) -> str | None:
    spec = pod.get("spec") or {}
    return spec.get("nodeName") or (spec.get("nodeSelector") or {}).get(LABEL_HOSTNAME)


def is_ready(pod: Obj) -> bool:
    conditions = (pod.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def gpus_of(requester: Obj) -> list[str]:
    return [g for g in annotations(requester).get(ANN_ACCELERATORS, "").split(",") if g]


def launcher_config_of(pod: Obj) -> str | None:
    return labels(pod).get(LABEL_LAUNCHER_CONFIG_NAME)


def copy_gpu_map(core: Any, source_namespace: str, namespace: str) -> None:
    source = core.read_namespaced_config_map(CONFIGMAP_GPU_MAP, source_namespace)
    core.create_namespaced_config_map(
        namespace, {"metadata": {"name": CONFIGMAP_GPU_MAP}, "data": dict(source.data or {})}
    )


def poll(seconds: float) -> Iterator[None]:
    """Yield until ``seconds`` have passed (for asserting that something does *not* happen)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        yield
        time.sleep(0.2)


def decision_lines(events: list[Obj]) -> list[str]:
    """The operator trace as one short line per event (clock, kind, the rest as key=value):
    what a failed test prints to say what was decided."""
    lines = []
    for event in events:
        rest = " ".join(
            f"{key}={str(value)[:48]}" for key, value in event.items() if key not in ("t", "kind")
        )
        t = float(event.get("t", 0.0))
        clock = time.strftime("%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}"
        lines.append(f"{clock} {event.get('kind')} {rest}")
    return lines


def events_about(world: World, name: str) -> list[Obj]:
    """The Kubernetes Events about the object ``name`` in the test's namespace, oldest first."""
    listed = world.core.list_namespaced_event(
        world.namespace, field_selector=f"involvedObject.name={name}"
    )
    found = [world.api.sanitize_for_serialization(e) for e in listed.items]
    return sorted(found, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")


# --- direct providers, container processes and nodes (the fault cases) ----------------------------


def stub_server_patch(model: str, *, port: int = 8005, extra: tuple[str, ...] = ()) -> str:
    """A server patch whose provider runs the stub engine alone (``fma launcher stub-engine``)
    on ``port`` with the :data:`STUB` latencies (``extra`` flags win), Ready once the engine
    answers ``/health``. It removes the requester's ``app`` label, so that the requester's
    ReplicaSet does not count the provider as one of its own."""
    container = {
        "name": "inference-server",
        "image": IMAGE,
        "args": [
            "launcher",
            "stub-engine",
            "--model",
            model,
            "--port",
            str(port),
            *STUB,
            *extra,
        ],
        "readinessProbe": {"httpGet": {"path": "/health", "port": port}, "periodSeconds": 1},
    }
    patch = {"metadata": {"labels": {"app": None}}, "spec": {"containers": [container]}}
    return str(yaml.safe_dump(patch, sort_keys=False))


def container_pid(world: World, pod: Obj, container: str = "inference-server") -> int | None:
    """The pid of ``container``'s main process while the pod runner runs it (its pid file)."""
    meta = pod["metadata"]
    run_dir = f"{meta['namespace']}_{meta['name']}_{meta['uid']}"
    pid_file = world.cluster.state_dir / "pods" / run_dir / container / "pid"
    try:
        return int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (a launcher's forked instances)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            found.append(int(stat.parent.name))
    return sorted(found)


@contextlib.contextmanager
def node_deleted(world: World, node: str) -> Iterator[None]:
    """Delete the Node object ``node`` (as a cloud provider removing a machine would); on
    leaving, create it again as it was and wait until it is Ready, so that the next test
    finds the cluster whole."""
    saved = world.api.sanitize_for_serialization(world.core.read_node(node))
    world.core.delete_node(node)
    try:
        yield
    finally:
        meta = saved["metadata"]
        status = saved.get("status") or {}
        body = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": node,
                "labels": meta.get("labels") or {},
                "annotations": meta.get("annotations") or {},
            },
            "spec": {k: v for k, v in (saved.get("spec") or {}).items() if k != "taints"},
            "status": {
                k: status[k]
                for k in ("capacity", "allocatable", "addresses", "nodeInfo")
                if k in status
            },
        }
        wait_until(
            lambda: world.core.list_node(field_selector=f"metadata.name={node}").items == [],
            timeout=TIMEOUT,
            what=f"Node {node} to be gone",
        )
        world.core.create_node(body)

        def ready() -> bool:
            found = world.api.sanitize_for_serialization(world.core.read_node(node))
            conditions = (found.get("status") or {}).get("conditions") or []
            taints = (found.get("spec") or {}).get("taints") or []
            return not taints and any(
                c.get("type") == "Ready" and c.get("status") == "True" for c in conditions
            )

        wait_until(ready, timeout=TIMEOUT, what=f"Node {node} to be Ready again")


def hold_gpus(world: World, node: str, count: int, name: str = "holder") -> list[str]:
    """Take ``count`` free GPUs of ``node`` (the lowest, as the pod runner gives them) with a
    Pod of the project's image that is no requester (no FMA annotation); return them once it
    holds them (as its SPI reports). A requester pinned to ``node`` then gets exactly the GPUs
    left, and its replacement waits until its predecessor has freed them: upstream's GPU pin."""
    world.replicaset(name, node=node, gpus=count)

    def holding() -> list[str] | None:
        for pod in world.requesters(name):
            ip = (pod.get("status") or {}).get("podIP")
            if not ip:
                continue
            try:
                answer = world.http.get(f"http://{ip}:{REQUESTER_SPI_PORT}{SPI_ACCELERATORS_PATH}")
            except httpx.HTTPError:
                continue
            if answer.status_code == 200:
                return [str(g) for g in answer.json()]
        return None

    return world.wait(holding, f"{name} to hold {count} GPUs of {node}")


def wait_runner_gpus_free(world: World, node: str, count: int) -> None:
    """Wait until the pod runner holds none of ``node``'s ``count`` GPUs. The API cannot say:
    a Pod whose finalizers were taken off leaves it before its processes have stopped and
    freed their GPUs. A Pod of all ``count`` runs only once they are all free; deleted, it frees
    them before the API lets it go."""
    hold_gpus(world, node, count, name="gpu-check")
    world.scale("gpu-check", 0)
    world.gone("gpu-check")


LOST_NODE_TIMEOUT = 120.0
"""How long the Pods of a deleted Node may take to move: Kubernetes' Pod GC deletes the Pods
of a Node that is gone only after a 40 s quarantine, and looks every 20 s."""


@contextlib.contextmanager
def pair_moved_off_its_node(
    world: World, rs: str, requester: Obj, provider: Obj
) -> Iterator[tuple[Obj, Obj]]:
    """Delete the Node of ReplicaSet ``rs``'s ``requester`` and ``provider``; yield the pair
    that serves ``rs`` on another node once both Pods of the lost node are gone; restore the
    Node on leaving (:func:`node_deleted`)."""
    lost = pod_node(requester)
    assert lost is not None and pod_node(provider) == lost
    with node_deleted(world, lost):
        second, other = world.served_anew(rs, requester, timeout=LOST_NODE_TIMEOUT)
        assert pod_node(second) != lost and pod_node(other) == pod_node(second)
        world.wait(
            lambda: (
                world.pod(requester["metadata"]["name"]) is None
                and world.pod(provider["metadata"]["name"]) is None
            ),
            "the Pods of the lost node to be gone",
        )
        yield second, other
