"""What one reconcile of a ModelService does: the operator's decision, without the cluster.

:func:`plan_reconcile` takes the live ModelService, its BaseConfig and the children that carry
its owner reference, exactly as the API server returned them, and decides:

- the children to apply (the rendering, ServiceAccounts first), with the live replicas of existing
  Deployments kept under ``decoupleScaling`` — applied only if unchanged since they were read,
  so that an autoscaler's change is never undone by a stale read;
- the children no longer rendered (a role removed, FMA mode switched on or off, a base key
  dropped): deleted when the ModelService is their only owner, otherwise only its owner
  reference is removed (two ModelServices sharing a base co-own its ConfigMaps);
- or, on bad input, nothing at all and why (the reason and message of the ``Reconciled``
  condition): nothing is created, changed or deleted from input that cannot be rendered.

Pure; deterministic for equal inputs.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from pydantic import ValidationError

from fma.api.constants import MS_API_VERSION
from fma.api.loading import describe
from fma.api.modelservice import BaseConfigMap, ModelService
from fma.modelservice.errors import RenderError
from fma.modelservice.render import Rendering, RenderOptions, render
from fma.modelservice.status import REASON_APPLIED, Outcome

Obj = dict[str, Any]
REASON_INVALID_SPEC: Final = "InvalidSpec"
REASON_INVALID_BASECONFIG: Final = "InvalidBaseConfig"
REASON_INVALID_OPTION: Final = "InvalidOption"
REASON_BASECONFIG_NOT_FOUND: Final = "BaseConfigNotFound"
REASON_APPLY_FAILED: Final = "ApplyFailed"
_REASONS: Final = {
    "modelservice": REASON_INVALID_SPEC,
    "baseconfig": REASON_INVALID_BASECONFIG,
    "option": REASON_INVALID_OPTION,
}


@dataclass(frozen=True)
class ChildKey:
    """A child's identity across API versions: group, kind and name."""

    group: str
    kind: str
    name: str

    def __str__(self) -> str:
        kind = f"{self.kind}.{self.group}" if self.group else self.kind
        return f"{kind}/{self.name}"


def child_key(obj: Mapping[str, Any]) -> ChildKey:
    api_version = str(obj.get("apiVersion") or "")
    group = api_version.rpartition("/")[0]
    return ChildKey(group, str(obj.get("kind") or ""), str((obj.get("metadata") or {}).get("name")))


def owner_references(obj: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return list((obj.get("metadata") or {}).get("ownerReferences") or [])


def modelservice_owners(obj: Mapping[str, Any]) -> list[str]:
    """The names of the ModelServices that own ``obj`` (in its namespace)."""
    return [
        str(ref.get("name"))
        for ref in owner_references(obj)
        if ref.get("kind") == "ModelService" and ref.get("apiVersion") == MS_API_VERSION
    ]


def is_owned_by(obj: Mapping[str, Any], uid: str) -> bool:
    return any(ref.get("uid") == uid for ref in owner_references(obj))


def base_config_ref(body: Mapping[str, Any]) -> tuple[str, str] | None:
    """(namespace, name) of the ModelService's BaseConfig, or None when it names none.

    Read from the raw object, before validation, so that the adapter can fetch it first.
    """
    ref = ((body.get("spec") or {}).get("baseConfigMapRef")) or {}
    name = str(ref.get("name") or "").strip()
    if not name:
        return None
    namespace = str(ref.get("namespace") or "").strip()
    own = str((body.get("metadata") or {}).get("namespace") or "")
    return namespace or own, name


def live_replicas(owned: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """``spec.replicas`` of each existing Deployment, by name."""
    out: dict[str, int] = {}
    for obj in owned:
        if obj.get("kind") == "Deployment":
            replicas = (obj.get("spec") or {}).get("replicas")
            if isinstance(replicas, int):
                out[str(obj["metadata"]["name"])] = replicas
    return out


@dataclass(frozen=True)
class ReconcilePlan:
    """What to do. ``problem`` set: nothing is applied, deleted or disowned."""

    msvc: ModelService | None
    rendering: Rendering | None = None
    apply: tuple[Obj, ...] = ()
    delete: tuple[Mapping[str, Any], ...] = ()
    disown: tuple[Mapping[str, Any], ...] = ()
    problem: Outcome | None = None
    warnings: tuple[str, ...] = field(default=())

    def outcome(self, failures: Sequence[str] = ()) -> Outcome:
        """The ``Reconciled`` condition once the plan was applied with ``failures``
        (one line each, naming the child)."""
        if self.problem is not None:
            return self.problem
        if failures:
            shown = "; ".join(failures[:3])
            more = f" (and {len(failures) - 3} more)" if len(failures) > 3 else ""
            return Outcome(False, REASON_APPLY_FAILED, shown + more)
        return Outcome(True, REASON_APPLIED, f"{len(self.apply)} children applied")


def _problem(msvc: ModelService | None, reason: str, message: str) -> ReconcilePlan:
    return ReconcilePlan(msvc, problem=Outcome(False, reason, message))


def plan_reconcile(
    body: Mapping[str, Any],
    base: Mapping[str, Any] | None,
    owned: Sequence[Mapping[str, Any]],
    options: RenderOptions,
) -> ReconcilePlan:
    """The plan for the live ModelService ``body`` (see the module docstring).

    ``base``: its BaseConfig ConfigMap, None if it names none or it does not exist;
    ``owned``: the live children whose owner references include ``body``'s uid; ``options``:
    the operator's (EPP ClusterRole, pull secrets); the namespace, the uid and the live
    replicas come from ``body`` and ``owned``.
    """
    try:
        msvc = ModelService.model_validate(dict(body))
    except ValidationError as error:
        return _problem(None, REASON_INVALID_SPEC, describe(error))
    ref = base_config_ref(body)
    config: BaseConfigMap | None = None
    if ref is not None:
        if base is None:
            namespace, name = ref
            return _problem(
                msvc,
                REASON_BASECONFIG_NOT_FOUND,
                f"spec.baseConfigMapRef: ConfigMap {namespace}/{name} not found",
            )
        try:
            config = BaseConfigMap.model_validate(dict(base))
        except ValidationError as error:
            return _problem(msvc, REASON_INVALID_BASECONFIG, describe(error))
    uid = msvc.metadata.uid
    try:
        rendering = render(
            msvc,
            config,
            RenderOptions(
                namespace=msvc.metadata.namespace,
                epp_cluster_role=options.epp_cluster_role,
                epp_pull_secrets=options.epp_pull_secrets,
                pd_pull_secrets=options.pd_pull_secrets,
                uid=uid,
                live_replicas=live_replicas(owned),
            ),
        )
    except RenderError as error:
        return _problem(msvc, _REASONS[error.source], str(error))
    # ServiceAccounts before the workloads that run as them (a ReplicaSet whose account does
    # not exist yet fails to create Pods until its next retry).
    apply = tuple(sorted(rendering.objects, key=lambda o: o["kind"] != "ServiceAccount"))
    if msvc.spec.decouple_scaling:
        apply = tuple(_guarded(o, owned) for o in apply)
    wanted = {child_key(o) for o in rendering.objects}
    stale = [o for o in owned if child_key(o) not in wanted and uid and is_owned_by(o, uid)]
    shared = [o for o in stale if len(owner_references(o)) > 1]
    return ReconcilePlan(
        msvc,
        rendering=rendering,
        apply=apply,
        delete=tuple(o for o in stale if len(owner_references(o)) == 1),
        disown=tuple(shared),
        warnings=rendering.warnings,
    )


def _guarded(obj: Obj, owned: Sequence[Mapping[str, Any]]) -> Obj:
    """A decoupled Deployment that exists, applied only if it has not changed since it was
    read (its ``resourceVersion`` as a precondition): its replicas are the live ones, and an
    autoscaler's change in between must fail the apply rather than be undone by it."""
    if obj.get("kind") != "Deployment":
        return obj
    key = child_key(obj)
    live = next((o for o in owned if child_key(o) == key), None)
    version = ((live or {}).get("metadata") or {}).get("resourceVersion")
    if not version:
        return obj
    return {**obj, "metadata": {**obj["metadata"], "resourceVersion": version}}


def without_owner(obj: Mapping[str, Any], uid: str) -> list[Mapping[str, Any]]:
    """``obj``'s owner references less the one to ``uid``."""
    return [ref for ref in owner_references(obj) if ref.get("uid") != uid]
