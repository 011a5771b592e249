"""Fixtures of the operator's integration tests: the CRDs once, and a :class:`World` per test.

A test that fails prints the tail of its operator's log. After every test the operator's event
trace is judged by the same safety checkers as the simulator's (``fma/bench/invariants``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from fma.bench.invariants import check_safety
from fma.testcluster.cluster import kubectl
from fma.testcluster.state import LocalCluster
from fma.testcluster.wait import wait_until
from tests.integration.conftest import GPU_MAP_NAMESPACE
from tests.integration.operator.harness import World, copy_gpu_map, decision_lines

CRD_DIR = Path(__file__).resolve().parents[3] / "crds"


@pytest.fixture(scope="session")
def fma_crds(testcluster: LocalCluster, api: Any) -> None:
    """FMA's three CRDs, installed and Established."""
    from kubernetes import client

    if testcluster.pod_network is None:
        pytest.skip("no pod runner on this machine (needs root): FMA's Pods cannot run")
    names = []
    for path in sorted(CRD_DIR.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "CustomResourceDefinition":
                names.append(doc["metadata"]["name"])
                proc = kubectl(testcluster, "apply", "-f", "-", stdin=yaml.safe_dump(doc))
                assert proc.returncode == 0, proc.stderr
    ext = client.ApiextensionsV1Api(api)

    def established() -> bool:
        for name in names:
            conditions = ext.read_custom_resource_definition(name).status.conditions or []
            if not any(c.type == "Established" and c.status == "True" for c in conditions):
                return False
        return True

    wait_until(established, timeout=60, what="FMA's CRDs to be Established")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"report_{report.when}", report)


@pytest.fixture
def world(
    request: pytest.FixtureRequest,
    fma_crds: None,
    testcluster: LocalCluster,
    api: Any,
    namespace: str,
    tmp_path: Path,
) -> Iterator[World]:
    from kubernetes import client

    copy_gpu_map(client.CoreV1Api(api), GPU_MAP_NAMESPACE, namespace)
    w = World(testcluster, api, namespace, tmp_path)
    try:
        yield w
    finally:
        w.close()
        failed = getattr(request.node, "report_call", None)
        if failed is not None and failed.failed:
            for process in w.operators:
                print(f"\n--- {process.log} (last 6000 characters) ---")
                print(process.log_text()[-6000:])
                print(f"\n--- {process.trace} (last 80 decisions) ---")
                print("\n".join(decision_lines(process.events())[-80:]))
        for process in w.operators:
            breaches = check_safety(process.events())
            assert not breaches, f"{process.trace}: {breaches[:3]}"
