"""`fma testcluster up|env|down` as a user runs them: a second, private cluster.

Each test points ``FMA_CACHE`` at a temporary directory whose ``testbin/<version>`` links to
the real binaries, so the user's "current cluster" record is never touched.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fma.testcluster import versions

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


def test_up_env_down_leaves_nothing_behind(tmp_path: Path, bin_dir: Path) -> None:
    cache = _cache_with(tmp_path, bin_dir)
    up = _fma(cache, "up", "--nodes", "1", "--gpus", "4", "--namespace", "gpus", "--json")
    assert up.returncode == 0, up.stderr
    info = json.loads(up.stdout)
    state_dir = Path(info["state_dir"])
    pids = info["pids"]
    try:
        assert set(pids) == {
            "etcd",
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kwok",
        }
        assert all(_alive(pid) for pid in pids.values())
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
    finally:
        down = _fma(cache, "down")
    assert down.returncode == 0, down.stderr
    assert not any(_alive(pid) for pid in pids.values())
    assert not state_dir.exists()
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
