"""Fixtures of the ModelService tests on the real control plane.

The operator's harness is reused as it is (a :class:`World` per test, the operator as a
process, its trace judged after the test); on top of it the ModelService tests need the
routing CRDs of the Gateway API and its Inference Extension, installed from their releases'
own definitions (``crds/thirdparty/``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from fma.testcluster.cluster import kubectl
from fma.testcluster.state import LocalCluster
from fma.testcluster.wait import wait_until
from tests.integration.operator.conftest import (  # noqa: F401 (fixtures and the report hook)
    fma_crds,
    pytest_runtest_makereport,
    world,
)

THIRD_PARTY = Path(__file__).resolve().parents[3] / "crds" / "thirdparty"
ROUTING_CRDS = (
    "inferencepools.inference.networking.x-k8s.io",
    "inferencemodels.inference.networking.x-k8s.io",
    "httproutes.gateway.networking.k8s.io",
)


@pytest.fixture(scope="session")
def routing_crds(fma_crds: None, testcluster: LocalCluster, api: Any) -> None:  # noqa: F811
    """InferencePool, InferenceModel and HTTPRoute, installed and Established (server-side:
    the HTTPRoute definition is too large for client-side apply's annotation)."""
    from kubernetes import client

    proc = kubectl(testcluster, "apply", "--server-side", "-f", str(THIRD_PARTY), check=False)
    assert proc.returncode == 0, proc.stderr
    ext = client.ApiextensionsV1Api(api)

    def established() -> bool:
        for name in ROUTING_CRDS:
            conditions = ext.read_custom_resource_definition(name).status.conditions or []
            if not any(c.type == "Established" and c.status == "True" for c in conditions):
                return False
        return True

    wait_until(established, timeout=60, what="the routing CRDs to be Established")
