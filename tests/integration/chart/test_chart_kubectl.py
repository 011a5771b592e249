"""Upstream's operations on an installed release, by name, with plain ``kubectl``.

The chart is installed with upstream's identities (release ``R``: Deployments
``R-dual-pods-controller`` and ``R-launcher-populator``, port 8002 for metrics); the test
restarts the dual-pods controller with ``kubectl rollout restart``, reads its log with
``kubectl logs deployment/...`` and scrapes both Deployments' metrics through
``kubectl port-forward``, as upstream's users and scripts do.
"""

from __future__ import annotations

import re
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from fma.api.constants import LABEL_COMPONENT
from fma.testcluster.state import LocalCluster
from fma.testcluster.wait import wait_until
from tests.integration.conftest import helm_in

pytestmark = pytest.mark.integration

CHART = Path(__file__).resolve().parents[3] / "charts" / "fma"
RELEASE = "r"
CONTROLLER = f"{RELEASE}-dual-pods-controller"
POPULATOR = f"{RELEASE}-launcher-populator"
METRICS_PORT = 8002


@dataclass
class Installed:
    cluster: LocalCluster
    namespace: str
    core: Any

    def kubectl(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.cluster.kubectl), "--namespace", self.namespace, *args],
            capture_output=True,
            text=True,
            env=self.cluster.env(),
            timeout=timeout,
        )

    def pods(self, component: str) -> list[Any]:
        selector = f"{LABEL_COMPONENT}={component}"
        return list(self.core.list_namespaced_pod(self.namespace, label_selector=selector).items)


@pytest.fixture
def installed(
    testcluster: LocalCluster, api: Any, namespace: str, tmp_path: Path
) -> Iterator[Installed]:
    if testcluster.pod_network is None:
        pytest.skip("no pod runner on this machine (needs root): the operator's Pods cannot run")
    helm = helm_in(testcluster, tmp_path, timeout=180)

    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump({"image": {"tag": "test"}}))
    done = helm(
        "install", RELEASE, str(CHART), "--namespace", namespace,
        "--values", str(values), "--wait", "--timeout", "120s",
    )  # fmt: skip
    try:
        assert done.returncode == 0, done.stderr
        yield Installed(testcluster, namespace, client.CoreV1Api(api))
    finally:
        # The cluster-wide admission policies go with the release.
        helm("uninstall", RELEASE, "--namespace", namespace, "--wait", "--timeout", "60s")


def _scrape(installed: Installed, deployment: str) -> dict[str, Any]:
    """The metric families ``kubectl port-forward deployment/<name> :8002`` serves."""
    forward = subprocess.Popen(
        [
            str(installed.cluster.kubectl), "--namespace", installed.namespace,
            "port-forward", f"deployment/{deployment}", f":{METRICS_PORT}",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=installed.cluster.env(),
    )  # fmt: skip
    try:
        assert forward.stdout is not None
        line = forward.stdout.readline()
        found = re.search(rf"127\.0\.0\.1:(\d+) -> {METRICS_PORT}", line)
        assert found, line
        url = f"http://127.0.0.1:{found.group(1)}/metrics"
        text = httpx.get(url, timeout=10, trust_env=False).text
    finally:
        forward.send_signal(signal.SIGTERM)
        forward.wait(timeout=10)
    return {family.name: family for family in text_string_to_metric_families(text)}


def test_upstream_operations_by_name_restart_logs_and_metrics(installed: Installed) -> None:
    (before,) = installed.pods("dual-pods-controller")
    restart = installed.kubectl("rollout", "restart", f"deployment/{CONTROLLER}")
    assert restart.returncode == 0, restart.stderr
    status = installed.kubectl(
        "rollout", "status", f"deployment/{CONTROLLER}", "--timeout=120s", timeout=150
    )
    assert status.returncode == 0, status.stderr

    def replaced() -> bool:
        names = {p.metadata.name for p in installed.pods("dual-pods-controller")}
        return len(names) == 1 and before.metadata.name not in names

    wait_until(replaced, timeout=60, what="the controller's old Pod to be gone")
    (after,) = installed.pods("dual-pods-controller")

    logs = installed.kubectl("logs", f"deployment/{CONTROLLER}")
    assert logs.returncode == 0, logs.stderr
    # The new replica's own log: its leader-election identity is its host (Pod) name.
    assert f"leader election: {after.metadata.name}_" in logs.stdout, logs.stdout[-3000:]

    for deployment in (CONTROLLER, POPULATOR):
        families = _scrape(installed, deployment)
        assert any(name.startswith("fma_") for name in families), sorted(families)
