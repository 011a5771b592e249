"""Sleeper-aware placement of requesters: labels on launcher Pods, and a webhook pointing at them.

A hot start needs the requester on the node of a sleeping instance of its identity, but the
kube-scheduler knows nothing of sleepers. Two halves make it know, through the scheduler's own
preferred inter-pod affinity (docs/placement.md says why this and not a scheduler extender):

1. :class:`SleeperLabels`: after each node's reconcile the operator keeps, on every launcher
   Pod, one label ``sleeping.dual-pods.llm-d.ai/<InferenceServerConfig>: "true"`` per
   InferenceServerConfig it holds a sleeping (or falling-asleep) instance of, and removes
   those it no longer holds (:func:`sleeper_label_changes`, from the snapshot the reconcile
   decided on);
2. :func:`placement_app`: a mutating admission webhook that gives each new requester Pod a
   preferred pod affinity (``topologyKey: kubernetes.io/hostname``) toward Pods carrying its
   InferenceServerConfig's label (:func:`affinity_patch`). It is stateless — the labels carry
   the state — so every replica serves it, standbys too.

Both are hints: a label that lags by a reconcile, or a webhook that does not answer (the
chart's ``failurePolicy: Ignore``), costs a hot start, never a requester.
"""

import asyncio
import base64
import hashlib
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any, Final

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from fma.adapters.k8s import kube
from fma.adapters.k8s.executor import MERGE_PATCH, api_error_message
from fma.api.constants import (
    ANN_INFERENCE_SERVER_CONFIG,
    LABEL_HOSTNAME,
    PLACEMENT_WEBHOOK_PATH,
    SLEEPER_LABEL_PREFIX,
)
from fma.core.model import FALLING_ASLEEP, SLEEPING, NodeSnapshot, Provider, ProviderKind

log = logging.getLogger("fma.placement")

LABEL_NAME_CHARS_MAX: Final = 63
"""Kubernetes' limit on the name part of a label key."""
_HASHED_PREFIX_CHARS: Final = 52
HOLDING: Final = frozenset({SLEEPING, FALLING_ASLEEP})
"""Instance states that count as a sleeper a requester could be woken onto."""
WEIGHT_DEFAULT: Final = 100


def sleeper_label(isc_name: str) -> str:
    """The label key naming a sleeper of ``isc_name``: the name itself when it fits a label
    name (63 characters), else its first characters and a hash, so that distinct names never
    share a key."""
    name = isc_name
    if len(name) > LABEL_NAME_CHARS_MAX:
        digest = hashlib.sha256(isc_name.encode()).hexdigest()[:10]
        name = f"{isc_name[:_HASHED_PREFIX_CHARS].rstrip('-.')}-{digest}"
    return SLEEPER_LABEL_PREFIX + name


def sleeper_label_changes(provider: Provider) -> dict[str, str | None]:
    """The merge patch of ``provider``'s labels that makes its sleeper labels name exactly the
    InferenceServerConfigs it holds a sleeper of: ``"true"`` to add, ``None`` to remove; empty
    when they already do. A direct provider or a launcher being deleted holds none. Pure."""
    held: set[str] = set()
    if provider.kind is ProviderKind.LAUNCHER and not provider.deleting:
        held = {
            sleeper_label(instance.isc_name)
            for instance in provider.instances
            if instance.isc_name and instance.state in HOLDING
        }
    labels = provider.labels
    changes: dict[str, str | None] = {
        key: None for key in labels if key.startswith(SLEEPER_LABEL_PREFIX) and key not in held
    }
    changes.update({key: "true" for key in sorted(held) if labels.get(key) != "true"})
    return changes


# --- the labels, written ---------------------------------------------------------------------


class SleeperLabels:
    """Writes :func:`sleeper_label_changes` for the launchers of one node's snapshot, with the
    Pod's UID as precondition; each written Pod goes to ``written`` (the operator's store).
    A failure is logged and left to the node's next reconcile: the labels are a hint."""

    def __init__(
        self,
        api: client.ApiClient,
        namespace: str,
        written: Callable[[Mapping[str, Any]], None],
    ) -> None:
        self._core = client.CoreV1Api(api)
        self._namespace = namespace
        self._written = written

    async def sync(self, snapshot: NodeSnapshot) -> None:
        for provider in snapshot.providers:
            changes = sleeper_label_changes(provider)
            if changes:
                await self._patch(provider, changes)

    async def _patch(self, provider: Provider, changes: Mapping[str, str | None]) -> None:
        body = {"metadata": {"uid": provider.uid, "labels": dict(changes)}}
        try:
            pod = await asyncio.to_thread(
                kube.call_json,
                self._core.patch_namespaced_pod,
                provider.name,
                self._namespace,
                body,
                _content_type=MERGE_PATCH,
            )
        except (ApiException, urllib3.exceptions.HTTPError, OSError) as error:
            if isinstance(error, ApiException) and error.status in (404, 409):
                return  # gone, or replaced by a Pod of the same name: nothing to label
            message = api_error_message(error)
            log.warning("sleeper labels of %s not written: %s", provider.name, message)
            return
        self._written(pod)


# --- the webhook -------------------------------------------------------------------------------


class ReviewError(ValueError):
    """An AdmissionReview that cannot be answered; the message names the field."""


def sleeper_affinity_term(isc_name: str, weight: int) -> dict[str, Any]:
    """A preferred pod affinity term toward the nodes of Pods holding a sleeper of
    ``isc_name`` (in the requester's own namespace, where its launchers are)."""
    return {
        "weight": weight,
        "podAffinityTerm": {
            "labelSelector": {
                "matchExpressions": [{"key": sleeper_label(isc_name), "operator": "Exists"}]
            },
            "topologyKey": LABEL_HOSTNAME,
        },
    }


def affinity_patch(pod: Mapping[str, Any], weight: int) -> list[dict[str, Any]]:
    """JSON Patch operations that add :func:`sleeper_affinity_term` to ``pod`` (a Pod as the
    API server sends it), keeping any affinity it has. Empty when the Pod names no
    InferenceServerConfig, is already on a node, or has the term already. Pure."""
    metadata = pod.get("metadata") or {}
    isc_name = (metadata.get("annotations") or {}).get(ANN_INFERENCE_SERVER_CONFIG)
    spec = pod.get("spec") or {}
    if not isinstance(isc_name, str) or not isc_name or spec.get("nodeName"):
        return []
    term = sleeper_affinity_term(isc_name, weight)
    affinity = spec.get("affinity")
    if not affinity:
        value: Any = {"podAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [term]}}
        return [{"op": "add", "path": "/spec/affinity", "value": value}]
    pod_affinity = affinity.get("podAffinity")
    if not pod_affinity:
        value = {"preferredDuringSchedulingIgnoredDuringExecution": [term]}
        return [{"op": "add", "path": "/spec/affinity/podAffinity", "value": value}]
    preferred = pod_affinity.get("preferredDuringSchedulingIgnoredDuringExecution")
    path = "/spec/affinity/podAffinity/preferredDuringSchedulingIgnoredDuringExecution"
    if not preferred:
        return [{"op": "add", "path": path, "value": [term]}]
    if any(_same_term(given, term) for given in preferred):
        return []
    return [{"op": "add", "path": f"{path}/-", "value": term}]


def _same_term(given: Any, term: Mapping[str, Any]) -> bool:
    return isinstance(given, Mapping) and given.get("podAffinityTerm") == term["podAffinityTerm"]


def admission_response(review: Any, weight: int) -> dict[str, Any]:
    """The AdmissionReview (``admission.k8s.io/v1``) answering ``review``: always allowed,
    with :func:`affinity_patch` for a Pod being created. Raises :class:`ReviewError` naming
    the field when ``review`` is not a review of an object."""
    if not isinstance(review, Mapping):
        raise ReviewError("the body is not an AdmissionReview object")
    request = review.get("request")
    if not isinstance(request, Mapping):
        raise ReviewError("request: missing")
    uid = request.get("uid")
    if not isinstance(uid, str) or not uid:
        raise ReviewError("request.uid: missing")
    response: dict[str, Any] = {"uid": uid, "allowed": True}
    pod = request.get("object")
    if request.get("operation") == "CREATE" and (request.get("kind") or {}).get("kind") == "Pod":
        if not isinstance(pod, Mapping):
            raise ReviewError("request.object: missing")
        patch = affinity_patch(pod, weight)
        if patch:
            response["patchType"] = "JSONPatch"
            response["patch"] = base64.b64encode(json.dumps(patch).encode()).decode()
    return {
        "apiVersion": review.get("apiVersion") or "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "response": response,
    }


def placement_app(weight: int = WEIGHT_DEFAULT) -> Any:
    """The webhook's ASGI app: ``POST`` :data:`PLACEMENT_WEBHOOK_PATH` answers an
    AdmissionReview (400 with the field named for one it cannot read)."""
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.post(PLACEMENT_WEBHOOK_PATH)
    async def mutate(request: Request) -> JSONResponse:
        try:
            review = json.loads(await request.body())
            return JSONResponse(admission_response(review, weight))
        except ValueError as error:  # ReviewError, or a body that is not JSON
            message = str(error) if isinstance(error, ReviewError) else "the body is not JSON"
            return JSONResponse({"error": message}, status_code=400)

    return app
