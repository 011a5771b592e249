"""A ModelService's status: what was rendered, what the cluster shows, how the reconcile went.

Pure: the live Deployments, the previous status and the time come in as arguments.

Upstream's fields are kept, with its bugs fixed: a reference names only a child that is
rendered (upstream always writes the routing references, created or not); the prefill and
decode ServiceAccount references both name ``<name>-sa`` (upstream overwrites the prefill one
with the EPP's and never writes the decode one). Per role (prefill, decode, EPP):

- ``<role>DeploymentRef``: its Deployment (in FMA mode, decode's is the requester
  Deployment: its replicas are the decode role's, and readiness is relayed to them);
- ``<role>Ready``: ``"<readyReplicas>/<spec.replicas>"`` of the live Deployment (``0/<n>``
  before it is seen); ``<role>Available``: its ``availableReplicas``;
- each Deployment condition, mirrored with the role's prefix (``DecodeAvailable``,
  ``PrefillProgressing``, ...), as upstream does.

Two conditions of FMA's own come first: ``Reconciled`` (every child applied, or why not:
``InvalidSpec``, ``InvalidBaseConfig``, ``InvalidOption``, ``BaseConfigNotFound``,
``BaseConfigUnreadable``, ``ApplyFailed``) and ``Ready`` (every role's Deployment has all
its replicas updated, ready and available).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from fma.api.modelservice import ModelServiceStatus
from fma.modelservice.names import DECODE, PREFILL, ChildNames
from fma.modelservice.render import Rendering

Obj = dict[str, Any]
RECONCILED: Final = "Reconciled"
READY: Final = "Ready"
REASON_APPLIED: Final = "Applied"
REASON_REPLICAS_READY: Final = "ReplicasReady"
REASON_REPLICAS_NOT_READY: Final = "ReplicasNotReady"
EPP: Final = "epp"
ROLES: Final = (PREFILL, DECODE, EPP)
_PREFIX: Final = {PREFILL: "Prefill", DECODE: "Decode", EPP: "Epp"}


@dataclass(frozen=True)
class Outcome:
    """How a reconcile went: ``ok``, and a reason and one-line message for the condition."""

    ok: bool
    reason: str
    message: str


def role_deployments(rendering: Rendering, names: ChildNames) -> dict[str, Obj]:
    """The rendered Deployment of each role that has one (decode's in FMA mode: the
    requester Deployment)."""
    deployments = {o["metadata"]["name"]: o for o in rendering.objects if o["kind"] == "Deployment"}
    candidates = {
        PREFILL: (names.deployment(PREFILL),),
        DECODE: (names.deployment(DECODE), names.requester_deployment),
        EPP: (names.epp_deployment,),
    }
    out: dict[str, Obj] = {}
    for role, choices in candidates.items():
        found = next((deployments[n] for n in choices if n in deployments), None)
        if found is not None:
            out[role] = found
    return out


@dataclass(frozen=True)
class _Counts:
    ready: int
    desired: int
    available: int
    settled: bool

    @property
    def text(self) -> str:
        return f"{self.ready}/{self.desired}"


def _counts(rendered: Obj, live: Mapping[str, Any] | None) -> _Counts:
    if live is None:
        desired = int((rendered.get("spec") or {}).get("replicas", 1))
        return _Counts(0, desired, 0, settled=False)
    spec = live.get("spec") or {}
    status = live.get("status") or {}
    desired = int(spec.get("replicas", 1))
    ready = int(status.get("readyReplicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    observed = int(status.get("observedGeneration") or 0) >= int(
        (live.get("metadata") or {}).get("generation") or 0
    )
    settled = (
        observed
        and ready == desired
        and available == desired
        and int(status.get("updatedReplicas") or 0) == desired
        and int(status.get("replicas") or 0) == desired
    )
    return _Counts(ready, desired, available, settled)


def condition(
    previous: Sequence[Mapping[str, Any]],
    kind: str,
    status: str,
    reason: str,
    message: str,
    *,
    generation: int | None,
    now: str,
    since: str | None = None,
) -> Obj:
    """A metav1.Condition; it keeps its previous ``lastTransitionTime`` while its status
    stays, else takes ``since`` (the source's own transition time) or ``now``."""
    before = next((c for c in previous if c.get("type") == kind), None)
    if before is not None and before.get("status") == status and before.get("lastTransitionTime"):
        moved = str(before["lastTransitionTime"])
    else:
        moved = since or now
    out: Obj = {
        "type": kind,
        "status": status,
        "lastTransitionTime": moved,
        "reason": reason or kind,
        "message": message,
    }
    if generation is not None:
        out["observedGeneration"] = generation
    return out


def _mirrored(
    role: str, live: Mapping[str, Any] | None, generation: int | None, now: str
) -> list[Obj]:
    """The live Deployment's conditions under the role's prefix."""
    out = []
    for source in ((live or {}).get("status") or {}).get("conditions") or []:
        kind = f"{_PREFIX[role]}{source.get('type', '')}"
        moved = source.get("lastTransitionTime") or source.get("lastUpdateTime") or now
        out.append(
            condition(
                [],
                kind,
                str(source.get("status") or "Unknown"),
                str(source.get("reason") or ""),
                str(source.get("message") or ""),
                generation=generation,
                now=now,
                since=str(moved),
            )
        )
    return out


def _references(rendering: Rendering, names: ChildNames, roles: Mapping[str, Obj]) -> Obj:
    rendered = {(o["kind"], o["metadata"]["name"]) for o in rendering.objects}

    def ref(kind: str, name: str) -> str | None:
        return name if (kind, name) in rendered else None

    pd_account = ref("ServiceAccount", names.pd_service_account)
    config_maps = [o["metadata"]["name"] for o in rendering.objects if o["kind"] == "ConfigMap"]
    return {
        "prefillDeploymentRef": roles[PREFILL]["metadata"]["name"] if PREFILL in roles else None,
        "decodeDeploymentRef": roles[DECODE]["metadata"]["name"] if DECODE in roles else None,
        "eppDeploymentRef": roles[EPP]["metadata"]["name"] if EPP in roles else None,
        "httpRouteRef": ref("HTTPRoute", names.http_route),
        "inferenceModelRef": ref("InferenceModel", names.inference_model),
        "inferencePoolRef": ref("InferencePool", names.inference_pool),
        "prefillServiceAccountRef": pd_account if PREFILL in roles else None,
        "decodeServiceAccountRef": pd_account if DECODE in roles else None,
        "eppRoleBinding": ref("RoleBinding", names.epp_role_binding),
        "configMapNames": config_maps or None,
    }


def modelservice_status(
    *,
    names: ChildNames,
    previous: Mapping[str, Any] | None,
    generation: int | None,
    rendering: Rendering | None,
    deployments: Mapping[str, Mapping[str, Any]],
    outcome: Outcome,
    now: str,
) -> Obj:
    """The whole status, every field present (``None`` where unset, so that a merge patch
    removes what no longer applies).

    ``deployments``: the live Deployments by name; ``rendering``: None when nothing could be
    rendered, and then only the ``Reconciled`` condition changes; ``now``: RFC 3339.
    """
    before = dict(previous or {})
    conditions_before: list[Mapping[str, Any]] = list(before.get("conditions") or [])
    reconciled = condition(
        conditions_before,
        RECONCILED,
        "True" if outcome.ok else "False",
        outcome.reason,
        outcome.message,
        generation=generation,
        now=now,
    )
    if rendering is None:
        kept = [c for c in conditions_before if c.get("type") != RECONCILED]
        return {**_empty_status(), **before, "conditions": [reconciled, *kept]}
    roles = role_deployments(rendering, names)
    status: Obj = {**_empty_status(), **_references(rendering, names, roles)}
    mirrored: list[Obj] = []
    progress: list[str] = []
    settled = True
    for role in ROLES:
        if role not in roles:
            continue
        name = roles[role]["metadata"]["name"]
        live = deployments.get(name)
        counts = _counts(roles[role], live)
        status[f"{role}Ready"] = counts.text
        status[f"{role}Available"] = counts.available
        progress.append(f"{role} {counts.text}")
        settled = settled and counts.settled
        mirrored += _mirrored(role, live, generation, now)
    ready = condition(
        conditions_before,
        READY,
        "True" if settled else "False",
        REASON_REPLICAS_READY if settled else REASON_REPLICAS_NOT_READY,
        ", ".join(progress) if progress else "no workloads",
        generation=generation,
        now=now,
    )
    status["conditions"] = [reconciled, ready, *mirrored]
    return status


def _empty_status() -> Obj:
    """Every status field unset; the six counters as upstream serialises them (not omitted)."""
    return ModelServiceStatus().model_dump(by_alias=True)
