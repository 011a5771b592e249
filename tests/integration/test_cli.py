"""`fma testcluster up|env|down` as a user runs them: a second, private cluster.

Each test points ``FMA_CACHE`` at a temporary directory whose ``testbin/<version>`` links to
the real binaries, so the user's "current cluster" record is never touched.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from fma.testcluster import versions
from fma.testcluster.podrunner import cgroups, network
from fma.testcluster.wait import wait_until

pytestmark = pytest.mark.integration


def _cache_with(tmp_path: Path, bin_dir: Path) -> Path:
    cache = tmp_path / "cache"
    (cache / "testbin").mkdir(parents=True)
    (cache / "testbin" / versions.KUBERNETES_VERSION).symlink_to(bin_dir)
    return cache


def _fma(cache: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fma.testcluster", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "FMA_CACHE": str(cache)},
        timeout=timeout,
    )


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


RUNNER = network.supported() is None
"""Root and iproute2: `up` starts a pod runner."""

POD = """
apiVersion: v1
kind: Pod
metadata: {name: requester}
spec:
  containers:
  - name: requester
    image: ghcr.io/llm-d-fma/fma:test
    args: [requester, serve]
    readinessProbe: {httpGet: {path: /health, port: 8080}, periodSeconds: 1}
"""


def _plant_dead_cluster(tmp_path: Path) -> tuple[network.PodNetwork, str, int] | None:
    """Leftovers of a cluster that died without `down`: a registry record, a bridge, a
    network namespace and a process in its cgroup. None if the index is taken here."""
    net = network.PodNetwork(network.INDEX_CANDIDATES[-1])
    if (network.REGISTRY / f"{net.index}.json").exists() or network.netns_names(net):
        return None
    network.REGISTRY.mkdir(parents=True, exist_ok=True)
    (network.REGISTRY / f"{net.index}.json").write_text(
        json.dumps({"state_dir": str(tmp_path / "dead"), "owner_pid": 0})
    )
    network.run_ip("link", "add", net.bridge, "type", "bridge")
    netns = f"{net.netns_prefix}{uuid.uuid4()}"
    network.run_ip("netns", "add", netns)
    root = cgroups.cluster_root(net.index)
    sleeper = subprocess.Popen(["sleep", "300"], start_new_session=True)
    if root is not None:
        (root / "pod").mkdir(exist_ok=True)
        (root / "pod" / "cgroup.procs").write_text(str(sleeper.pid))
    return net, netns, sleeper.pid


def _kubectl(bin_dir: Path, kubeconfig: str, *args: str, stdin: str | None = None) -> str:
    return subprocess.run(
        [str(bin_dir / "kubectl"), f"--kubeconfig={kubeconfig}", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def _run_a_pod_then_kill_the_runner(bin_dir: Path, info: dict[str, object]) -> list[int]:
    """A Pod runs; the runner dies by SIGKILL; its container follows. Returns the pids."""
    kubeconfig = str(info["kubeconfig"])
    _kubectl(bin_dir, kubeconfig, "apply", "-f", "-", stdin=POD)

    def ready() -> bool:
        pod = json.loads(_kubectl(bin_dir, kubeconfig, "get", "pod", "requester", "-o", "json"))
        conditions = (pod.get("status") or {}).get("conditions") or []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    wait_until(ready, timeout=60, what="the requester Pod to be Ready")
    pid_files = list(Path(str(info["state_dir"])).glob("pods/default_requester_*/requester/pid"))
    container = int(pid_files[0].read_text().split()[0])
    assert _alive(container)
    runner = int(info["pids"]["pod-runner"])  # type: ignore[index]
    os.kill(runner, signal.SIGKILL)
    wait_until(lambda: not _alive(container), timeout=30, what="the container to die with it")
    return [container]


def test_up_env_down_leaves_nothing_behind(tmp_path: Path, bin_dir: Path) -> None:
    cache = _cache_with(tmp_path, bin_dir)
    dead = _plant_dead_cluster(tmp_path) if RUNNER else None
    up = _fma(cache, "up", "--nodes", "1", "--gpus", "4", "--namespace", "gpus", "--json")
    assert up.returncode == 0, up.stderr
    info = json.loads(up.stdout)
    state_dir = Path(info["state_dir"])
    pids = info["pids"]
    containers: list[int] = []
    try:
        assert set(pids) == {
            "etcd",
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kwok",
            *(["pod-runner"] if RUNNER else []),
        }
        assert all(_alive(pid) for pid in pids.values())
        if dead is not None:  # `up` removed what the dead cluster left
            net, netns, sleeper = dead
            assert not _alive(sleeper) or cgroups.existing_cluster_root(net.index) is None
            assert netns not in network.netns_names(net)
            assert not (network.REGISTRY / f"{net.index}.json").exists()
            assert net.bridge not in network.run_ip("-o", "link", "show")
        assert (state_dir / "state.json").is_file() and (state_dir / "logs").is_dir()

        again = _fma(cache, "up")
        assert again.returncode != 0 and "already up" in again.stderr

        env = _fma(cache, "env")
        assert env.returncode == 0
        assert f"export KUBECONFIG={info['kubeconfig']}" in env.stdout.splitlines()
        got = subprocess.run(
            [str(bin_dir / "kubectl"), "get", "cm", "gpu-map", "-n", "gpus", "-o", "json"],
            capture_output=True,
            text=True,
            env={**os.environ, "KUBECONFIG": info["kubeconfig"]},
            check=True,
        )
        gpu_map = json.loads(json.loads(got.stdout)["data"]["gpu-node-0"])
        assert gpu_map == {f"GPU-gpu-node-0-{i}": i for i in range(4)}
        if RUNNER:
            containers = _run_a_pod_then_kill_the_runner(bin_dir, info)
    finally:
        down = _fma(cache, "down")
    assert down.returncode == 0, down.stderr
    assert not any(_alive(pid) for pid in [*pids.values(), *containers])
    assert not state_dir.exists()
    if RUNNER:  # no namespace, veth, bridge, cgroup or record of its Pod network is left
        net = network.PodNetwork(int(info["pod_network"].split(".")[1]))
        assert network.netns_names(net) == []
        assert f"{net.bridge}:" not in network.run_ip("-o", "link", "show")
        assert net.veth_prefix not in network.run_ip("-o", "link", "show")
        assert cgroups.existing_cluster_root(net.index) is None
        assert not (network.REGISTRY / f"{net.index}.json").exists()
    assert _fma(cache, "env").returncode != 0  # nothing recorded any more


def test_a_crashing_component_is_named_with_its_log(tmp_path: Path, bin_dir: Path) -> None:
    broken = tmp_path / "bin"
    broken.mkdir()
    for entry in bin_dir.iterdir():
        if entry.is_file():
            (broken / entry.name).symlink_to(entry)
    (broken / "kube-apiserver").unlink()
    (broken / "kube-apiserver").write_text("#!/bin/sh\necho 'boom: bad flag' >&2\nexit 3\n")
    (broken / "kube-apiserver").chmod(0o755)
    cache = tmp_path / "cache"
    (cache / "testbin").mkdir(parents=True)
    (cache / "testbin" / versions.KUBERNETES_VERSION).symlink_to(broken)
    state_dir = tmp_path / "state"

    up = _fma(cache, "up", "--state-dir", str(state_dir))

    assert up.returncode != 0
    lines = up.stderr.strip().splitlines()
    log = state_dir / "logs" / "kube-apiserver.log"
    assert lines[-1].startswith("error: kube-apiserver failed to start")
    assert lines[-1].endswith(f"log: {log}")
    assert "boom: bad flag" in log.read_text()
    # etcd had started before the apiserver failed: it was stopped again.
    state = json.loads((state_dir / "state.json").read_text())
    assert [c["name"] for c in state["components"]][:1] == ["etcd"]
    assert not any(_alive(c["pid"]) for c in state["components"])
