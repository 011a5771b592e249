"""Upstream's admission-policy case (its fourth launcher case), on the real API server.

The ValidatingAdmissionPolicies FMA ships (``fma policies``, ``deploy/admission-policies.yaml``)
are bound to the test's namespace only; the same cases as the simulated twin, which checks
the pure rule :func:`fma.core.admission.update_denial`, are made here as real Pod updates by a
user and by a ServiceAccount named like FMA's controllers. Both must agree.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from fma.api.constants import (
    ANN_ACTUATION_PATH,
    ANN_INFERENCE_SERVER_CONFIG,
    ANN_REQUESTER,
    LABEL_DUAL,
)
from fma.api.policygen import policy_manifests
from fma.core.admission import PodMeta, update_denial
from fma.testcluster.cluster import kubectl
from fma.testcluster.state import LocalCluster
from fma.testcluster.wait import wait_until

pytestmark = pytest.mark.integration

USER = "alice"
CONTROLLERS = "prod-fma-controllers"


@pytest.fixture
def policies(testcluster: LocalCluster, api: Any, namespace: str) -> Iterator[str]:
    """The policies bound to ``namespace``, and RBAC that lets the two identities patch Pods
    there (so that what denies an update is the policy, not RBAC). Removed afterwards: they
    would deny other tests' operators, which run as the cluster admin."""
    rbac = client.RbacAuthorizationV1Api(api)
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "pod-editor"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "patch"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "pod-editors"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "pod-editor",
            },
            "subjects": [
                {"kind": "User", "name": USER, "apiGroup": "rbac.authorization.k8s.io"},
                {"kind": "ServiceAccount", "name": CONTROLLERS, "namespace": namespace},
            ],
        },
    )
    manifests = policy_manifests(namespace)
    proc = kubectl(testcluster, "apply", "-f", "-", stdin=yaml.safe_dump_all(manifests))
    assert proc.returncode == 0, proc.stderr
    try:
        yield namespace
    finally:
        for manifest in reversed(manifests):
            kubectl(
                testcluster,
                "delete",
                manifest["kind"],
                manifest["metadata"]["name"],
                "--ignore-not-found",
            )


def _as(testcluster: LocalCluster, user: str) -> client.CoreV1Api:
    from kubernetes import config

    configuration = client.Configuration()
    config.load_kube_config(str(testcluster.kubeconfig), client_configuration=configuration)
    impersonating = client.ApiClient(configuration)
    impersonating.set_default_header("Impersonate-User", user)
    return client.CoreV1Api(impersonating)


def _pod(name: str, meta: PodMeta) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "labels": dict(meta.labels),
            "annotations": dict(meta.annotations),
        },
        "spec": {"containers": [{"name": "c", "image": "example.com/ordinary:1"}]},
    }


def _patch(old: PodMeta, new: PodMeta) -> dict[str, Any]:
    """A merge patch from ``old`` to ``new`` (a key only in ``old`` is removed)."""
    return {
        "metadata": {
            "labels": {**{k: None for k in old.labels}, **new.labels},
            "annotations": {**{k: None for k in old.annotations}, **new.annotations},
        }
    }


CASES = [
    ("binding-record", PodMeta(annotations={ANN_REQUESTER: "u r"}), PodMeta(), USER),
    ("dual-label", PodMeta(labels={LABEL_DUAL: "p"}), PodMeta(labels={LABEL_DUAL: "q"}), USER),
    (
        "controller-exempt",
        PodMeta(annotations={ANN_REQUESTER: "u r"}),
        PodMeta(),
        CONTROLLERS,
    ),
    (
        "bound-requester-isc",
        PodMeta(annotations={ANN_INFERENCE_SERVER_CONFIG: "isc1"}, labels={LABEL_DUAL: "p"}),
        PodMeta(annotations={ANN_INFERENCE_SERVER_CONFIG: "isc2"}, labels={LABEL_DUAL: "p"}),
        USER,
    ),
    (
        "unbound-requester-isc",
        PodMeta(annotations={ANN_INFERENCE_SERVER_CONFIG: "isc1"}),
        PodMeta(annotations={ANN_INFERENCE_SERVER_CONFIG: "isc2"}),
        USER,
    ),
    ("ordinary-pod", PodMeta(labels={"app": "x"}), PodMeta(labels={"app": "y"}), USER),
    (
        "controller-memory",
        PodMeta(annotations={ANN_ACTUATION_PATH: "hot"}),
        PodMeta(annotations={ANN_ACTUATION_PATH: "cold"}),
        USER,
    ),
]


def test_4_admission_policies(testcluster: LocalCluster, api: Any, policies: str) -> None:
    namespace = policies
    admin = client.CoreV1Api(api)
    users = {
        USER: _as(testcluster, USER),
        CONTROLLERS: _as(testcluster, f"system:serviceaccount:{namespace}:{CONTROLLERS}"),
    }
    for index, (case, old, new, who) in enumerate(CASES):
        name = f"pod-{index}"
        admin.create_namespaced_pod(namespace, _pod(name, old))
        identity = "system:serviceaccount:x:" + CONTROLLERS if who == CONTROLLERS else who
        expected = update_denial(old, new, identity)

        def judged(name: str = name, old: PodMeta = old, new: PodMeta = new, who: str = who) -> str:
            """The update's outcome: "allowed" or the policy's message (a fresh policy takes
            a moment to be loaded by the API server: until then everything is allowed)."""
            try:
                users[who].patch_namespaced_pod(name, namespace, _patch(old, new))
            except ApiException as error:
                assert error.status in (403, 422), error.body
                return str(error.body)
            # Back, to retry: by the same identity (the admin is no FMA controller either).
            users[who].patch_namespaced_pod(name, namespace, _patch(new, old))
            return "allowed"

        if expected is None:  # (the first case is denied: by now the policies are loaded)
            assert judged() == "allowed", case
        else:
            outcome = wait_until(
                lambda judged=judged: None if (o := judged()) == "allowed" else o,
                timeout=30,
                what=f"the policy to deny case {case}",
            )
            assert expected in outcome, (case, outcome)
