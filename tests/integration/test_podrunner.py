"""Pods of the project's image really run on the test cluster's KWOK nodes.

Each test creates Pods whose containers are ``fma`` commands; the pod runner starts them in
their own network namespaces, at their Pod IPs, and writes their status as a kubelet would.
The tests talk to the processes at their Pod IPs, as the operator does.
"""

from __future__ import annotations

import ipaddress
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from fma.api.constants import CONFIGMAP_GPU_MAP, RESOURCE_GPU
from fma.testcluster.podrunner import cgroups
from fma.testcluster.state import LocalCluster
from fma.testcluster.wait import wait_until

pytestmark = pytest.mark.integration

IMAGE = "ghcr.io/llm-d-fma/fma:test"
TIMEOUT = 60.0


@pytest.fixture(scope="module")
def cluster(testcluster: LocalCluster) -> LocalCluster:
    if testcluster.pod_network is None:
        pytest.skip("no pod runner on this machine (needs root)")
    return testcluster


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(trust_env=False, timeout=5) as c:
        yield c


def _container(name: str, args: list[str], **extra: Any) -> dict[str, Any]:
    return {"name": name, "image": IMAGE, "args": args, **extra}


def _pod(name: str, *containers: dict[str, Any], **spec: Any) -> dict[str, Any]:
    meta = spec.pop("metadata", {})
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, **meta},
        "spec": {"terminationGracePeriodSeconds": 5, **spec, "containers": list(containers)},
    }


def _requester(gpus: int = 0, **extra: Any) -> dict[str, Any]:
    resources = {"limits": {RESOURCE_GPU: str(gpus)}} if gpus else {}
    return _container(
        "requester",
        ["requester", "serve"],
        ports=[{"name": "probes", "containerPort": 8080}, {"name": "spi", "containerPort": 8081}],
        resources=resources,
        **extra,
    )


def _http_probe(path: str, port: int | str, **extra: Any) -> dict[str, Any]:
    return {"httpGet": {"path": path, "port": port}, "periodSeconds": 1, **extra}


def _condition(pod: Any, kind: str) -> Any:
    return next((c for c in pod.status.conditions or [] if c.type == kind), None)


def _ready(pod: Any) -> bool:
    cond = _condition(pod, "Ready")
    return cond is not None and cond.status == "True"


def _wait_pod(core: Any, namespace: str, name: str, check: Callable[[Any], bool], what: str) -> Any:
    def probe() -> Any:
        pod = core.read_namespaced_pod(name, namespace)
        return pod if check(pod) else None

    return wait_until(probe, timeout=TIMEOUT, what=f"pod {name}: {what}")


def _gone(core: Any, namespace: str, name: str) -> bool:
    try:
        core.read_namespaced_pod(name, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return True
        raise
    return False


def _pod_dir(cluster: LocalCluster, pod: Any) -> Path:
    meta = pod.metadata
    return cluster.state_dir / "pods" / f"{meta.namespace}_{meta.name}_{meta.uid}"


def _pid(cluster: LocalCluster, pod: Any, container: str) -> int:
    pid_file = _pod_dir(cluster, pod) / container / "pid"
    text = wait_until(
        lambda: pid_file.read_text() if pid_file.is_file() else None,
        timeout=TIMEOUT,
        what=f"pid file {pid_file}",
    )
    return int(text.split()[0])


def _environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _answers(http: httpx.Client, url: str) -> bool:
    try:
        return http.get(url).status_code == 200
    except httpx.HTTPError:
        return False


def _log(cluster: LocalCluster, pod: Any, container: str, run: int = 0) -> str:
    path = _pod_dir(cluster, pod) / container / f"{run}.log"
    return path.read_text() if path.is_file() else ""


def _veths(cluster: LocalCluster) -> list[str]:
    bridge = f"fmabr{cluster.pod_network}"
    out = subprocess.run(
        ["ip", "-j", "link", "show", "master", bridge], capture_output=True, text=True, check=True
    )
    return [str(link["ifname"]) for link in json.loads(out.stdout or "[]")]


def _netns() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return [line.split()[0] for line in out.stdout.splitlines() if line.strip()]


def test_requesters_get_exclusive_gpus_and_become_ready_through_their_probe(
    cluster: LocalCluster, api: Any, namespace: str, http: httpx.Client
) -> None:
    core = client.CoreV1Api(api)
    node = cluster.nodes[0]
    on_node = {"nodeSelector": {"kubernetes.io/hostname": node}}
    # /ready answers 503 until the requester is told its server is ready; /health at once.
    waits = _requester(4, readinessProbe=_http_probe("/ready", "probes"))
    healthy = _requester(4, readinessProbe=_http_probe("/health", 8080))
    core.create_namespaced_pod(namespace, _pod("waits", waits, **on_node))
    core.create_namespaced_pod(namespace, _pod("healthy", healthy, **on_node))

    ready = _wait_pod(core, namespace, "healthy", _ready, "Ready through /health")
    waiting = _wait_pod(
        core,
        namespace,
        "waits",
        lambda p: p.status.phase == "Running" and p.status.container_statuses[0].started,
        "Running and started",
    )
    assert not _ready(waiting) and _condition(waiting, "ContainersReady").status == "False"
    assert ready.status.host_ip == "10.0.0.2" and ready.spec.node_name == node
    ips = {ready.status.pod_ip, waiting.status.pod_ip}
    node_cidr = ipaddress.ip_network(f"10.{cluster.pod_network}.0.0/24")
    assert len(ips) == 2 and all(ipaddress.ip_address(ip) in node_cidr for ip in ips)

    # Both listen on 8080 and 8081; each reports the GPUs the runner gave it, disjoint.
    held = {}
    for pod in (ready, waiting):
        got = http.get(f"http://{pod.status.pod_ip}:8081/v1/dual-pods/accelerators")
        assert got.status_code == 200
        held[pod.metadata.name] = got.json()
        env = _environ(_pid(cluster, pod, "requester"))
        assert env["NVIDIA_VISIBLE_DEVICES"].split(",") == got.json()
    assert all(len(uuids) == 4 for uuids in held.values())
    assert sorted(held["waits"] + held["healthy"]) == sorted(f"GPU-{node}-{j}" for j in range(8))
    assert http.get(f"http://{waiting.status.pod_ip}:8080/ready").status_code == 503

    # A third Pod asking 4 GPUs of the full node waits, as the scheduler decides.
    core.create_namespaced_pod(namespace, _pod("third", _requester(4), **on_node))
    _wait_pod(
        core,
        namespace,
        "third",
        lambda p: any(
            c.type == "PodScheduled" and c.reason == "Unschedulable"
            for c in p.status.conditions or []
        ),
        "Unschedulable",
    )

    # The requester's SPI flips its readiness; the Pod's Ready condition follows.
    before = _condition(waiting, "Ready").last_transition_time
    assert http.post(f"http://{waiting.status.pod_ip}:8081/v1/become-ready").status_code == 200
    flipped = _wait_pod(core, namespace, "waits", _ready, "Ready after become-ready")
    assert _condition(flipped, "Ready").last_transition_time >= before
    assert flipped.status.container_statuses[0].ready

    # Freeing one Pod's GPUs lets the third run, with exactly those GPUs.
    core.delete_namespaced_pod("healthy", namespace)
    third = _wait_pod(core, namespace, "third", lambda p: p.status.phase == "Running", "Running")
    env = _environ(_pid(cluster, third, "requester"))
    assert sorted(env["NVIDIA_VISIBLE_DEVICES"].split(",")) == sorted(held["healthy"])


def test_launchers_share_a_port_and_call_the_apiserver_as_their_service_account(
    cluster: LocalCluster, api: Any, namespace: str, http: httpx.Client
) -> None:
    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    gpu_map = core.read_namespaced_config_map(CONFIGMAP_GPU_MAP, cluster.namespace)
    core.create_namespaced_config_map(
        namespace, {"metadata": {"name": CONFIGMAP_GPU_MAP}, "data": gpu_map.data}
    )
    core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "settings"}, "data": {"level": "debug"}}
    )
    core.create_namespaced_secret(
        namespace, {"metadata": {"name": "creds"}, "stringData": {"pw": "s3"}}
    )
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "reader"}})
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "read-configmaps"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "reader"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "read-configmaps",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
        },
    )
    node = cluster.nodes[1]

    def launcher(name: str, account: str) -> dict[str, Any]:
        container = _container(
            "launcher",
            ["launcher", "serve", "--engine", "stub", "--mock-gpus", "8", "--port", "$(PORT)"],
            env=[
                {"name": "PORT", "value": "8001"},
                {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                {
                    "name": "NAMESPACE",
                    "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
                },
                {"name": "NVIDIA_VISIBLE_DEVICES", "value": "all"},
                {
                    "name": "LEVEL",
                    "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "level"}},
                },
                {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "pw"}}},
                {"name": "WHERE", "value": "$(NODE_NAME)/$(NAMESPACE)"},
            ],
            startupProbe={"tcpSocket": {"port": 8001}, "periodSeconds": 1, "failureThreshold": 30},
            readinessProbe=_http_probe("/health", 8001),
        )
        return _pod(name, container, nodeName=node, serviceAccountName=account)

    core.create_namespaced_pod(namespace, launcher("allowed", "reader"))
    core.create_namespaced_pod(namespace, launcher("denied", "default"))
    pods = [_wait_pod(core, namespace, n, _ready, "Ready") for n in ("allowed", "denied")]

    for pod in pods:
        root = http.get(f"http://{pod.status.pod_ip}:8001/")
        assert root.status_code == 200 and root.json()["name"] == "FMA launcher"
        env = _environ(_pid(cluster, pod, "launcher"))
        assert env["NVIDIA_VISIBLE_DEVICES"] == ",".join(f"GPU-{node}-{j}" for j in range(8))
        assert (env["NODE_NAME"], env["NAMESPACE"]) == (node, namespace)
        assert (env["LEVEL"], env["PW"], env["WHERE"]) == ("debug", "s3", f"{node}/{namespace}")
        assert env["KUBERNETES_SERVICE_HOST"] == cluster.server.split("//")[1].split(":")[0]
        assert pod.status.container_statuses[0].started

    allowed, denied = pods
    # Each launcher forks an engine; both engines listen on 8005, each in its own Pod.
    # The allowed one knows the node's GPU UUIDs; the denied one only its mock GPU-0...
    for pod, uuid in zip(pods, [f"GPU-{node}-0", "GPU-0"], strict=True):
        created = http.post(
            f"http://{pod.status.pod_ip}:8001/v2/vllm/instances",
            json={"options": ["--model", "m", "--port", "8005"], "gpu_uuids": [uuid]},
        )
        assert created.status_code == 201, created.text
    for pod in pods:
        wait_until(
            lambda ip=pod.status.pod_ip: _answers(http, f"http://{ip}:8005/health"),
            timeout=TIMEOUT,
            what=f"the engine of {pod.metadata.name} on 8005",
        )
    wait_until(
        lambda: (
            f"GPU map from ConfigMap {namespace}/{CONFIGMAP_GPU_MAP}: 8 GPUs"
            in _log(cluster, allowed, "launcher")
        ),
        timeout=TIMEOUT,
        what="the launcher reading gpu-map with its ServiceAccount",
    )
    denied_log = _log(cluster, denied, "launcher")
    assert "403" in denied_log and "GPU map from mock (8 GPUs)" in denied_log

    # The mounted token is bound to the Pod and names its ServiceAccount.
    volumes = _pod_dir(cluster, allowed) / "volumes"
    token = next(volumes.glob("kube-api-access-*/token")).read_text()
    assert next(volumes.glob("kube-api-access-*/namespace")).read_text() == namespace
    config = client.Configuration()
    config.host = cluster.server
    config.ssl_ca_cert = api.configuration.ssl_ca_cert
    config.api_key = {"authorization": f"Bearer {token}"}
    with client.ApiClient(config) as as_pod:
        review = client.AuthenticationV1Api(as_pod).create_self_subject_review({})
    assert review.status.user_info.username == f"system:serviceaccount:{namespace}:reader"
    assert review.status.user_info.extra["authentication.kubernetes.io/pod-name"] == ["allowed"]

    # Deleting a launcher stops its engine too, although it runs in a session of its own.
    group = cgroups.cluster_root(int(cluster.pod_network or 0))
    if group is not None:
        members = cgroups.procs(group / denied.metadata.uid)
        assert len(members) >= 2  # the launcher and its engine
        core.delete_namespaced_pod("denied", namespace)
        wait_until(lambda: _gone(core, namespace, "denied"), timeout=TIMEOUT, what="denied gone")
        assert not any(_alive(pid) for pid in members)


def test_crashing_containers_restart_with_back_off(
    cluster: LocalCluster, api: Any, namespace: str
) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_pod(
        namespace,
        _pod(
            "crashes",
            _container("exits", ["no-such-command"]),
            {"name": "shell", "image": IMAGE, "command": ["sh", "-c", "echo hi"]},
        ),
    )
    core.create_namespaced_pod(
        namespace, _pod("once", _container("exits", ["no-such-command"]), restartPolicy="Never")
    )
    mixed = _pod(
        "mixed",
        _container("helps", ["--help"]),
        {"name": "other", "image": "docker.io/library/busybox:1"},
        restartPolicy="Never",
    )
    core.create_namespaced_pod(namespace, mixed)

    def restarted_twice(pod: Any) -> bool:
        statuses = pod.status.container_statuses or []
        return len(statuses) == 2 and all(
            s.restart_count >= 2 and s.last_state.terminated is not None for s in statuses
        )

    pod = _wait_pod(core, namespace, "crashes", restarted_twice, "both containers restarted twice")
    exits, shell = pod.status.container_statuses
    assert exits.last_state.terminated.exit_code == 2
    assert exits.last_state.terminated.reason == "Error"
    assert shell.last_state.terminated.exit_code == 128
    assert shell.last_state.terminated.reason == "StartError"
    assert "'sh'" in shell.last_state.terminated.message
    assert pod.status.phase == "Running" and not _ready(pod)
    assert "No such command" in _log(cluster, pod, "exits", 1)

    once = _wait_pod(core, namespace, "once", lambda p: p.status.phase == "Failed", "Failed")
    status = once.status.container_statuses[0]
    assert status.restart_count == 0 and status.state.terminated.exit_code == 2

    # Another image in a Pod of ours waits: the runner has no other image (KWOK stays out).
    mixed = _wait_pod(
        core,
        namespace,
        "mixed",
        lambda p: (
            (p.status.container_statuses or [None])[0] is not None
            and p.status.container_statuses[0].state.terminated is not None
        ),
        "its fma container done",
    )
    helps, other = mixed.status.container_statuses
    assert helps.state.terminated.reason == "Completed"
    assert other.state.waiting.reason == "ErrImageNeverPull"
    assert "busybox" in other.state.waiting.message
    assert mixed.status.phase == "Pending" and not _ready(mixed)


def test_liveness_failure_restarts_and_exec_probes_run_inside_the_pod(
    cluster: LocalCluster, api: Any, namespace: str
) -> None:
    core = client.CoreV1Api(api)
    token_file = "/var/run/secrets/kubernetes.io/serviceaccount/token"
    container = _requester(
        readinessProbe={"exec": {"command": ["test", "-s", token_file]}, "periodSeconds": 1},
        livenessProbe={
            "tcpSocket": {"port": 9999},  # nothing listens there
            "initialDelaySeconds": 3,
            "periodSeconds": 1,
            "failureThreshold": 2,
        },
    )
    core.create_namespaced_pod(namespace, _pod("unlively", container))
    first = _wait_pod(core, namespace, "unlively", _ready, "Ready through the exec probe")
    pid = _pid(cluster, first, "requester")
    restarted = _wait_pod(
        core,
        namespace,
        "unlively",
        lambda p: p.status.container_statuses[0].restart_count >= 1,
        "restarted after failing its liveness probe",
    )
    status = restarted.status.container_statuses[0]
    assert status.last_state.terminated is not None
    assert not _alive(pid)
    assert "Shutting down" in _log(cluster, first, "requester", 0)  # SIGTERM, then restart


def test_deletion_sigterms_honours_the_grace_period_and_leaves_nothing(
    cluster: LocalCluster, api: Any, namespace: str, tmp_path: Path
) -> None:
    core = client.CoreV1Api(api)
    # A Python start-up hook that makes the process deaf to SIGTERM.
    (tmp_path / "sitecustomize.py").write_text(
        "import signal\n"
        "_signal = signal.signal\n"
        "def _deaf(sig, handler):\n"
        "    return _signal(sig, signal.SIG_IGN if sig == signal.SIGTERM else handler)\n"
        "signal.signal = _deaf\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    )
    # Ready through /health: the servers are up and have their signal handlers.
    probe = _http_probe("/health", 8080)
    deaf = _requester(env=[{"name": "PYTHONPATH", "value": str(tmp_path)}], readinessProbe=probe)
    # Polite also has an init container and no ServiceAccount token: the host's own
    # /var/run/secrets is hidden from it all the same.
    nothing_mounted = ["sh", "-c", 'test -z "$(ls -A /var/run/secrets)"']
    polite = _pod(
        "polite",
        _requester(startupProbe=probe, readinessProbe={"exec": {"command": nothing_mounted}}),
        initContainers=[_container("init", ["--help"])],
        automountServiceAccountToken=False,
    )
    core.create_namespaced_pod(namespace, polite)
    core.create_namespaced_pod(namespace, _pod("deaf", deaf, terminationGracePeriodSeconds=2))
    # Held checks its readiness from inside: the Pod reaches itself at 127.0.0.1.
    itself = "import urllib.request as u; u.urlopen('http://127.0.0.1:8080/health', timeout=1)"
    held_pod = _pod(
        "held",
        _requester(
            readinessProbe={"exec": {"command": ["python", "-c", itself]}, "periodSeconds": 1}
        ),
        metadata={"finalizers": ["example.com/hold"]},
    )
    core.create_namespaced_pod(namespace, held_pod)
    try:
        _stop_and_check(cluster, core, namespace)
    finally:
        core.patch_namespaced_pod("held", namespace, {"metadata": {"finalizers": None}})
    wait_until(lambda: _gone(core, namespace, "held"), timeout=TIMEOUT, what="held gone")


def _stop_and_check(cluster: LocalCluster, core: Any, namespace: str) -> None:
    pods = {n: _wait_pod(core, namespace, n, _ready, "Ready") for n in ("polite", "deaf", "held")}
    pids = {n: _pid(cluster, p, "requester") for n, p in pods.items()}
    init = pods["polite"].status.init_container_statuses[0]
    assert init.state.terminated.exit_code == 0 and init.ready
    assert _condition(pods["polite"], "Initialized").status == "True"
    spaces = [ns for ns in _netns() if any(p.metadata.uid in ns for p in pods.values())]
    veths = _veths(cluster)
    assert len(spaces) == 3 and len(veths) >= 3

    started = time.monotonic()
    for name in pods:
        core.delete_namespaced_pod(name, namespace)
    wait_until(lambda: _gone(core, namespace, "polite"), timeout=TIMEOUT, what="polite gone")
    polite_s = time.monotonic() - started
    wait_until(lambda: _gone(core, namespace, "deaf"), timeout=TIMEOUT, what="deaf gone")
    deaf_s = time.monotonic() - started
    assert polite_s < 4.0, polite_s  # on SIGTERM, well within its 5 s grace period
    assert 2.0 <= deaf_s < 5.0, deaf_s  # SIGKILL after its 2 s grace period
    assert "Shutting down" in _log(cluster, pods["polite"], "requester")
    assert "Shutting down" not in _log(cluster, pods["deaf"], "requester")

    # The finalizer keeps the object, not the processes.
    held = _wait_pod(
        core,
        namespace,
        "held",
        lambda p: p.status.container_statuses[0].state.terminated is not None,
        "stopped while its finalizer holds it",
    )
    assert held.metadata.deletion_timestamp is not None and held.status.phase == "Succeeded"
    assert not any(_alive(pid) for pid in pids.values())
    assert not set(_netns()) & set(spaces)
    assert not set(_veths(cluster)) & set(veths)


def test_a_reused_pod_ip_is_reached_at_once(
    cluster: LocalCluster, api: Any, namespace: str, http: httpx.Client
) -> None:
    core = client.CoreV1Api(api)
    probe = _http_probe("/health", 8080)
    node = cluster.nodes[-1]
    core.create_namespaced_pod(
        namespace, _pod("first", _requester(readinessProbe=probe), nodeName=node)
    )
    first = _wait_pod(core, namespace, "first", _ready, "Ready")
    ip = first.status.pod_ip
    assert _answers(http, f"http://{ip}:8080/health")  # the host has just reached it
    core.delete_namespaced_pod("first", namespace)
    wait_until(lambda: _gone(core, namespace, "first"), timeout=TIMEOUT, what="first gone")

    core.create_namespaced_pod(namespace, _pod("second", _requester(), nodeName=node))
    second = _wait_pod(core, namespace, "second", lambda p: bool(p.status.pod_ip), "an IP")
    assert second.status.pod_ip == ip  # the freed address, taken again at once
    _pid(cluster, second, "requester")
    # The host's neighbour entry for the address named the first Pod's interface; left alone,
    # it would send there for up to ~30 s (a kubelet's CNI plugin announces the new one).
    wait_until(
        lambda: _answers(http, f"http://{ip}:8080/health"), timeout=8, what="second to answer"
    )


def _connects_from(netns: str, ip: str, port: int) -> bool:
    """Whether a process in network namespace ``netns`` connects to ``ip:port`` within 1 s."""
    code = f"import socket; socket.create_connection(({ip!r}, {port}), timeout=1).close()"
    done = subprocess.run(
        ["ip", "netns", "exec", netns, "python3", "-I", "-c", code],
        capture_output=True,
        timeout=10,
        check=False,
    )
    return done.returncode == 0


def test_a_reused_pod_ip_is_reached_at_once_from_other_pods(
    cluster: LocalCluster, api: Any, namespace: str
) -> None:
    core = client.CoreV1Api(api)
    probe = _http_probe("/health", 8080)
    node = cluster.nodes[-1]
    core.create_namespaced_pod(
        namespace, _pod("caller", _requester(readinessProbe=probe), nodeName=cluster.nodes[0])
    )
    core.create_namespaced_pod(
        namespace, _pod("first", _requester(readinessProbe=probe), nodeName=node)
    )
    caller = _wait_pod(core, namespace, "caller", _ready, "Ready")
    first = _wait_pod(core, namespace, "first", _ready, "Ready")
    ip = first.status.pod_ip
    (space,) = [ns for ns in _netns() if ns.endswith(caller.metadata.uid)]
    assert _connects_from(space, ip, 8080)  # the caller's namespace now knows first's MAC
    core.delete_namespaced_pod("first", namespace)
    wait_until(lambda: _gone(core, namespace, "first"), timeout=TIMEOUT, what="first gone")

    core.create_namespaced_pod(namespace, _pod("second", _requester(), nodeName=node))
    second = _wait_pod(core, namespace, "second", lambda p: bool(p.status.pod_ip), "an IP")
    assert second.status.pod_ip == ip  # the freed address, taken again at once
    _pid(cluster, second, "requester")
    # The caller's neighbour entry named first's interface; without the new sandbox's
    # gratuitous ARP it would keep sending there for ~30-45 s.
    wait_until(lambda: _connects_from(space, ip, 8080), timeout=8, what="second to be reached")
