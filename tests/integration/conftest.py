"""Session fixture: one real local control plane for all integration tests.

The cluster starts once per session (building the binaries first if they are missing, so
``pytest tests/integration`` alone works on a fresh machine) and is torn down at the end, with
no process left behind. ``FMA_TESTCLUSTER_KEEP=1`` keeps its state directory (logs, etcd data)
for a post-mortem; its path is printed at the end of the session.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from fma.testcluster import build, cluster
from fma.testcluster.state import LocalCluster
from fma.testcluster.wait import wait_until

NODE_COUNT = 2
GPUS_PER_NODE = 8
GPU_MAP_NAMESPACE = "fma-system"


Helm = Callable[..., subprocess.CompletedProcess[str]]


def helm_in(testcluster: LocalCluster, home: Path, timeout: float = 180) -> Helm:
    """The cluster's helm against it, its repository cache and config kept under ``home``
    (out of the user's home): ``helm("install", ...)`` returns the finished process."""
    env = {
        **testcluster.env(),
        "HELM_CACHE_HOME": str(home / "helm-cache"),
        "HELM_CONFIG_HOME": str(home / "helm-config"),
        "HELM_DATA_HOME": str(home / "helm-data"),
    }

    def helm(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(testcluster.helm), *args], capture_output=True, text=True, env=env, timeout=timeout
        )

    return helm


@pytest.fixture(scope="session")
def bin_dir(request: pytest.FixtureRequest) -> Path:
    """The directory of the built binaries (etcd ... kubectl, helm); built if missing."""
    # Output capture would hide a cold build's progress for minutes: write to the terminal.
    terminal = request.config.pluginmanager.get_plugin("terminalreporter")

    def report(msg: str) -> None:
        if terminal is not None:
            terminal.write_line(f"[testcluster] {msg}")
        else:
            print(f"[testcluster] {msg}", file=sys.stderr)

    return build.ensure_binaries(report=report)


@pytest.fixture(scope="session")
def testcluster(bin_dir: Path) -> Iterator[LocalCluster]:
    """The running cluster: kubeconfig, bin_dir (kubectl, helm), api_client(), nodes, namespace."""
    state_dir = Path(tempfile.mkdtemp(prefix="fma-testcluster-pytest-"))
    c = cluster.up(
        bin_dir,
        state_dir=state_dir,
        node_count=NODE_COUNT,
        gpus_per_node=GPUS_PER_NODE,
        namespace=GPU_MAP_NAMESPACE,
        # A killed test session (CI time-out, SIGKILL) takes the cluster with it.
        die_with_parent=True,
    )
    keep = os.environ.get("FMA_TESTCLUSTER_KEEP") == "1"
    try:
        yield c
    finally:
        cluster.down(c, remove_state=not keep)
        if keep:
            print(f"\n[testcluster] state kept in {state_dir}", file=sys.stderr)
        else:
            shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def api(testcluster: LocalCluster) -> Iterator[Any]:
    """One admin ``kubernetes.client.ApiClient`` shared by the session."""
    client = testcluster.api_client()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def namespace(testcluster: LocalCluster, api: Any) -> Iterator[str]:
    """A fresh namespace whose ``default`` ServiceAccount exists; deleted after the test.

    Its pods are gone when the next test starts, so each test has every GPU of the cluster.
    """
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    core = client.CoreV1Api(api)
    name = f"it-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name}})

    def sa_exists() -> bool:
        try:
            core.read_namespaced_service_account("default", name)
        except ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    wait_until(sa_exists, timeout=30, what=f"ServiceAccount {name}/default")
    try:
        yield name
    finally:
        # Namespace deletion finishes seconds later; remove the workloads now and wait for
        # their pods, so the next test finds every GPU free again.
        apps, batch = client.AppsV1Api(api), client.BatchV1Api(api)
        apps.delete_collection_namespaced_deployment(name)
        apps.delete_collection_namespaced_replica_set(name)
        apps.delete_collection_namespaced_stateful_set(name)
        apps.delete_collection_namespaced_daemon_set(name)
        batch.delete_collection_namespaced_job(name, propagation_policy="Background")

        def no_pods() -> bool:
            if not core.list_namespaced_pod(name).items:
                return True
            # Again each round: a controller may have made one more before it was deleted.
            core.delete_collection_namespaced_pod(name, grace_period_seconds=0)
            return False

        wait_until(no_pods, timeout=30, what=f"the pods of namespace {name} to be gone")
        core.delete_namespace(name)
