"""The ValidatingAdmissionPolicies that protect FMA's records, as manifests (CEL).

The rules are :func:`fma.core.admission.update_denial`'s, rendered for the API server:

- ``fma-immutable-fields``: on every Pod UPDATE by anyone but FMA's controllers, each
  protected annotation and label (:data:`~fma.api.constants.PROTECTED_ANNOTATIONS`,
  :data:`~fma.api.constants.PROTECTED_LABELS`) keeps its presence and its value;
- ``fma-bound-serverreqpod``: a requester that was bound to a launcher (a non-empty
  ``inference-server-config`` annotation and a non-empty ``dual`` label) keeps its
  ``inference-server-config`` annotation.

Each has a binding with ``validationActions: [Deny]``; with a ``namespace`` the bindings apply
to that namespace only (FMA serves one namespace), else to every namespace. ``failurePolicy:
Fail``: an update the policy cannot judge is refused, never let through.
"""

from typing import Any

from fma.api.constants import (
    ANN_INFERENCE_SERVER_CONFIG,
    CONTROLLER_USER_PATTERN,
    LABEL_DUAL,
    PROTECTED_ANNOTATIONS,
    PROTECTED_LABELS,
)

Manifest = dict[str, Any]
IMMUTABLE_FIELDS = "fma-immutable-fields"
BOUND_REQUESTER = "fma-bound-serverreqpod"
API_VERSION = "admissionregistration.k8s.io/v1"


def unchanged(field: str, key: str) -> str:
    """CEL: the key of ``metadata.<field>`` is absent in both objects, or equal in both (CEL's
    optional values compare presence and value at once)."""
    return f"oldObject.metadata.?{field}[?'{key}'] == object.metadata.?{field}[?'{key}']"


def _nonempty(obj: str, field: str, key: str) -> str:
    return f"{obj}.metadata.?{field}[?'{key}'].orValue('') != ''"


_NOT_A_CONTROLLER = {
    "name": "not-an-fma-controller",
    "expression": f"!request.userInfo.username.matches('{CONTROLLER_USER_PATTERN}')",
}


def _policy(name: str, conditions: list[Manifest], validations: list[Manifest]) -> Manifest:
    return {
        "apiVersion": API_VERSION,
        "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": name},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {
                "resourceRules": [
                    {
                        "apiGroups": [""],
                        "apiVersions": ["v1"],
                        "operations": ["UPDATE"],
                        "resources": ["pods"],
                    }
                ]
            },
            "matchConditions": [_NOT_A_CONTROLLER, *conditions],
            "validations": validations,
        },
    }


def _binding(policy: str, namespace: str | None) -> Manifest:
    spec: Manifest = {"policyName": policy, "validationActions": ["Deny"]}
    if namespace is not None:
        spec["matchResources"] = {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
        }
    return {
        "apiVersion": API_VERSION,
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": f"bind-{policy}"},
        "spec": spec,
    }


def policy_manifests(namespace: str | None = None) -> list[Manifest]:
    """The two policies and their bindings (see the module docstring)."""
    immutable = [
        {
            "expression": unchanged("annotations", key),
            "message": f"annotation {key} may be changed only by the FMA controllers",
        }
        for key in PROTECTED_ANNOTATIONS
    ] + [
        {
            "expression": unchanged("labels", key),
            "message": f"label {key} may be changed only by the FMA controllers",
        }
        for key in PROTECTED_LABELS
    ]
    bound = {
        "name": "was-a-bound-requester",
        "expression": f"{_nonempty('oldObject', 'annotations', ANN_INFERENCE_SERVER_CONFIG)}"
        f" && {_nonempty('oldObject', 'labels', LABEL_DUAL)}",
    }
    keep_isc = {
        "expression": unchanged("annotations", ANN_INFERENCE_SERVER_CONFIG),
        "message": f"annotation {ANN_INFERENCE_SERVER_CONFIG} of a bound requester may not change",
    }
    return [
        _policy(IMMUTABLE_FIELDS, [], immutable),
        _binding(IMMUTABLE_FIELDS, namespace),
        _policy(BOUND_REQUESTER, [bound], [keep_isc]),
        _binding(BOUND_REQUESTER, namespace),
    ]
