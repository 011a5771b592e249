"""``kubectl logs``, ``exec`` and ``port-forward`` reach the Pods the pod runner runs.

The apiserver proxies them to the node's kubelet endpoint, KWOK's server, which the runner
configures per Pod. One Pod serves all the tests: a requester (probes on 8080) whose Python
start-up hook prints a greeting and then a numbered tick every 0.2 s, so that its log has
known lines and keeps growing.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from kubernetes import client

from fma.testcluster.state import LocalCluster
from fma.testcluster.wait import wait_until

pytestmark = pytest.mark.integration

IMAGE = "ghcr.io/llm-d-fma/fma:test"
POD = "talker"
CONTAINER = "requester"
TIMEOUT = 60.0
KWOK_TAKES_IT_UP_S = 10.0
TICKER = """\
import os, sys, threading, time
if os.path.basename(sys.argv[0]) == "fma":
    print("hello from", os.environ["HOSTNAME"], flush=True)
    print("a warning on stderr", file=sys.stderr, flush=True)
    def _tick():
        for n in range(100000):
            print("tick", n, flush=True)
            time.sleep(0.2)
    threading.Thread(target=_tick, daemon=True).start()
"""


@dataclass
class Talker:
    cluster: LocalCluster
    core: Any
    namespace: str

    def kubectl(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.cluster.kubectl), "--namespace", self.namespace, *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.cluster.env(),
            timeout=30,
        )

    def pod(self) -> Any:
        return self.core.read_namespaced_pod(POD, self.namespace)

    def raw_log(self, run: int) -> str:
        """The run's output as the runner keeps it (the bytes the container wrote)."""
        pod = self.pod()
        directory = self.cluster.state_dir / "pods" / f"{self.namespace}_{POD}_{pod.metadata.uid}"
        path = directory / CONTAINER / f"{run}.log"
        return path.read_text() if path.exists() else ""

    def ready(self) -> bool:
        conditions = self.pod().status.conditions or []
        return any(c.type == "Ready" and c.status == "True" for c in conditions)


@pytest.fixture(scope="module")
def talker(testcluster: LocalCluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Talker]:
    if testcluster.pod_network is None:
        pytest.skip("no pod runner on this machine (needs root)")
    hook = tmp_path_factory.mktemp("hook")
    (hook / "sitecustomize.py").write_text(TICKER)
    api = testcluster.api_client()
    core: Any = client.CoreV1Api(api)
    namespace = f"kubelet-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": namespace}})
    wait_until(
        lambda: bool(core.list_namespaced_service_account(namespace).items),
        timeout=TIMEOUT,
        what="the namespace's default ServiceAccount",
    )
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": IMAGE,
        "args": ["requester", "serve"],
        "env": [{"name": "PYTHONPATH", "value": str(hook)}],
        "ports": [{"name": "probes", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/health", "port": 8080}, "periodSeconds": 1},
    }
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": POD},
        "spec": {"terminationGracePeriodSeconds": 2, "containers": [container]},
    }
    core.create_namespaced_pod(namespace, pod)
    found = Talker(testcluster, core, namespace)
    wait_until(lambda: found.pod().status.pod_ip, timeout=TIMEOUT, what=f"pod {POD}'s IP")
    # The runner publishes the Pod's kubelet API with its IP; KWOK takes it up within seconds.
    wait_until(
        lambda: found.kubectl("logs", POD).returncode == 0,
        timeout=KWOK_TAKES_IT_UP_S,
        what="kubectl logs to answer",
    )
    wait_until(found.ready, timeout=TIMEOUT, what=f"pod {POD} to be Ready")
    try:
        yield found
    finally:
        core.delete_namespace(namespace)
        api.close()


def _ticks(text: str) -> list[int]:
    return [int(n) for n in re.findall(r"^tick (\d+)$", text, re.MULTILINE)]


def test_logs_are_the_containers_output_and_follow_it(talker: Talker) -> None:
    wait_until(lambda: len(_ticks(talker.raw_log(0))) >= 3, timeout=TIMEOUT, what="three ticks")
    before = talker.raw_log(0)
    logs = talker.kubectl("logs", POD, "-c", CONTAINER)
    assert logs.returncode == 0, logs.stderr
    # Both streams, byte for byte what the container wrote, up to when it was read.
    assert len(logs.stdout) >= len(before)
    assert talker.raw_log(0).startswith(logs.stdout)
    assert f"hello from {POD}\n" in logs.stdout
    assert "a warning on stderr\n" in logs.stdout

    last = talker.kubectl("logs", POD, "--tail=1")
    assert re.fullmatch(r"tick \d+\n", last.stdout), last.stdout

    stamped = talker.kubectl("logs", POD, "--timestamps", "--tail=1")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z tick \d+\n", stamped.stdout)

    # -f streams what is written after it started.
    newest = max(_ticks(talker.raw_log(0)))
    follow = subprocess.Popen(
        [str(talker.cluster.kubectl), "-n", talker.namespace, "logs", "-f", POD],
        stdout=subprocess.PIPE,
        text=True,
        env=talker.cluster.env(),
    )
    try:
        assert follow.stdout is not None
        deadline = time.monotonic() + 20
        seen: list[int] = []
        while time.monotonic() < deadline and not [n for n in seen if n > newest + 2]:
            seen += _ticks(follow.stdout.readline())
        assert [n for n in seen if n > newest + 2], f"no new ticks followed after {newest}"
    finally:
        follow.kill()
        follow.wait()


def test_exec_runs_in_the_pods_network_and_environment(talker: Talker) -> None:
    itself = (
        "import socket, urllib.request as u; "
        "print(u.urlopen('http://127.0.0.1:8080/health', timeout=2).status); "
        "print(socket.gethostname())"
    )
    done = talker.kubectl("exec", POD, "-c", CONTAINER, "--", "python", "-c", itself)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["200", POD]

    env = talker.kubectl("exec", POD, "--", "printenv", "PYTHONPATH", "HOSTNAME")
    assert env.returncode == 0, env.stderr
    assert env.stdout.split()[1:] == [POD]

    upper = "import sys; print(sys.stdin.readline().upper())"
    piped = talker.kubectl("exec", "-i", POD, "--", "python", "-c", upper, stdin="abc\n")
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.strip() == "ABC"


def _forwarded(forward: subprocess.Popen[str], ports: list[int]) -> dict[int, int]:
    """Pod port -> local port, from kubectl's "Forwarding from 127.0.0.1:L -> P" lines."""
    assert forward.stdout is not None
    local: dict[int, int] = {}
    while set(local) != set(ports):
        line = forward.stdout.readline()
        assert line, "kubectl port-forward ended"
        found = re.search(r"127\.0\.0\.1:(\d+) -> (\d+)", line)
        if found:
            local[int(found.group(2))] = int(found.group(1))
    return local


def test_port_forward_reaches_the_pods_ports(talker: Talker) -> None:
    # 8080 is declared; 8081 (the requester's SPI) is not, and is reached all the same.
    forward = subprocess.Popen(
        [
            str(talker.cluster.kubectl), "-n", talker.namespace,
            "port-forward", f"pod/{POD}", ":8080", ":8081",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=talker.cluster.env(),
    )  # fmt: skip
    try:
        local = _forwarded(forward, [8080, 8081])
        with httpx.Client(trust_env=False, timeout=5) as http:
            for _ in range(3):  # one connection after another through the one forward
                assert http.get(f"http://127.0.0.1:{local[8080]}/health").status_code == 200
            assert http.get(f"http://127.0.0.1:{local[8081]}/no-such-path").status_code == 404
    finally:
        forward.send_signal(signal.SIGTERM)
        forward.wait(timeout=10)


def test_previous_logs_are_the_run_before_a_restart(talker: Talker) -> None:
    pod = talker.pod()
    before = pod.status.container_statuses[0].restart_count
    pid_file = (
        talker.cluster.state_dir
        / "pods"
        / f"{talker.namespace}_{POD}_{pod.metadata.uid}"
        / CONTAINER
        / "pid"
    )
    # The container's main process ends as in a crash.
    os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
    wait_until(
        lambda: talker.pod().status.container_statuses[0].restart_count > before and talker.ready(),
        timeout=TIMEOUT,
        what="the container to restart",
    )
    wait_until(lambda: len(_ticks(talker.raw_log(1))) >= 1, timeout=TIMEOUT, what="a new tick")
    previous = talker.kubectl("logs", POD, "--previous")
    assert previous.returncode == 0, previous.stderr
    assert previous.stdout == talker.raw_log(0)
    current = talker.kubectl("logs", POD)
    assert talker.raw_log(1).startswith(current.stdout)
    assert f"hello from {POD}\n" in current.stdout
