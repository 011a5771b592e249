"""One reconcile of one ModelService: gather, decide, apply, then write the status.

1. **Gather**: the ModelService and its children from the watch cache; its BaseConfig read
   from the API server (it may live in another namespace, and it is read fresh each time).
2. **Decide**: :func:`fma.modelservice.reconcile.plan_reconcile`, pure.
3. **Apply**: each child by server-side apply, in the rendering's order (a failure is noted
   and the others still go); then the children no longer rendered are deleted or disowned.
4. **Status**: :func:`fma.modelservice.status.modelservice_status` from the result and the
   live Deployments, written through the status subresource when it changed; a Warning
   Event when the ``Reconciled`` condition turns False or changes its message.

Bad input is not retried (a change of the ModelService or its BaseConfig triggers the next
reconcile); a missing BaseConfig is looked for again after ``BASE_RETRY_S``; a failed API
call backs off through the work queue. What was written is not put into the cache: the
watches bring it, in order, so that the cache never goes back to an older state.
"""

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from kubernetes import client

from fma.adapters.k8s.modelservice import client as kube
from fma.adapters.k8s.modelservice.cache import ModelServiceCache
from fma.adapters.k8s.modelservice.kinds import CONFIGMAP, EVENT, MODELSERVICE, resource_of
from fma.core.outcomes import FollowUp
from fma.modelservice.names import ChildNames
from fma.modelservice.reconcile import (
    REASON_BASECONFIG_NOT_FOUND,
    ReconcilePlan,
    base_config_ref,
    child_key,
    plan_reconcile,
    without_owner,
)
from fma.modelservice.render import RenderOptions
from fma.modelservice.status import RECONCILED, Outcome, modelservice_status

log = logging.getLogger("fma.modelservice")

BASE_RETRY_S: Final = 30.0
"""How often a ModelService whose BaseConfig is missing looks for it again (a BaseConfig in
another namespace is not watched)."""
REASON_BASECONFIG_UNREADABLE: Final = "BaseConfigUnreadable"
CONFLICT_RETRY_S: Final = 0.5
"""How soon a ModelService whose guarded apply met a changed object looks again (by then the
watch has brought the change)."""
EVENT_MESSAGE_CHARS_MAX: Final = 1024
REPORTING_COMPONENT: Final = "fma-modelservice"
_IMMUTABLE_REPLACED: Final = frozenset({("rbac.authorization.k8s.io", "RoleBinding")})
"""Kinds whose immutable fields (a RoleBinding's roleRef) are changed by replacing the object."""


@dataclass(frozen=True)
class ModelServiceOptions:
    """The operator's ModelService settings (upstream's ``run`` flags)."""

    epp_cluster_role: str | None = None
    """ClusterRole bound to each EPP's ServiceAccount; a ModelService with an EPP and none set
    reports ``InvalidOption``."""
    epp_pull_secrets: tuple[str, ...] = ()
    pd_pull_secrets: tuple[str, ...] = ()
    enabled: bool = True


def rfc3339_seconds(t_s: float) -> str:
    return dt.datetime.fromtimestamp(t_s, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ModelServiceReconciler:
    """Reconciles ModelServices of one namespace by name (the work queue's key)."""

    def __init__(
        self,
        api: client.ApiClient,
        cache: ModelServiceCache,
        options: ModelServiceOptions,
        clock: Callable[[], float],
    ) -> None:
        self.api = api
        self.cache = cache
        self.options = options
        self.clock = clock
        self._render_options = RenderOptions(
            epp_cluster_role=options.epp_cluster_role,
            epp_pull_secrets=options.epp_pull_secrets,
            pd_pull_secrets=options.pd_pull_secrets,
        )

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(fn, self.api, *args)

    async def reconcile(self, name: str) -> FollowUp:
        # 1. gather
        body = self.cache.modelservice(name)
        if body is None or (body.get("metadata") or {}).get("deletionTimestamp"):
            return FollowUp()  # gone or going: its children go with it (owner references)
        uid = str(body["metadata"].get("uid") or "")
        base = None
        ref = base_config_ref(body)
        if ref is not None:
            try:
                base = await self._call(kube.get, CONFIGMAP, *ref)
            except kube.ApiError as error:  # e.g. forbidden in another namespace: say so
                where = f"spec.baseConfigMapRef: ConfigMap {ref[0]}/{ref[1]}"
                problem = Outcome(False, REASON_BASECONFIG_UNREADABLE, f"{where}: {error}")
                await self._report(body, ReconcilePlan(None, problem=problem), problem)
                return FollowUp(failed=True)
        owned = self.cache.owned(uid)
        # 2. decide
        plan = plan_reconcile(body, base, owned, self._render_options)
        for warning in plan.warnings:
            log.debug("ModelService %s: %s", name, warning)
        # 3. apply
        failures, conflicts = await self._apply(plan, uid) if plan.problem is None else ([], 0)
        # 4. status
        outcome = plan.outcome(failures)
        await self._report(body, plan, outcome)
        if failures:
            return FollowUp(failed=True)
        if conflicts:
            return FollowUp(requeue_after_s=CONFLICT_RETRY_S)
        if outcome.reason == REASON_BASECONFIG_NOT_FOUND:
            return FollowUp(requeue_after_s=BASE_RETRY_S)
        return FollowUp()

    async def _apply(self, plan: ReconcilePlan, uid: str) -> tuple[list[str], int]:
        """Apply the plan; (failures, conflicts). A conflict is a guarded apply whose object
        changed since it was read: not a failure, but a reason to look again soon."""
        failures: list[str] = []
        conflicts = 0
        for obj in plan.apply:
            try:
                await self._apply_one(obj)
            except kube.ApiError as error:
                if error.status == 409:
                    conflicts += 1
                else:
                    failures.append(f"{child_key(obj)}: {error.message}")
        for stale in plan.delete:
            try:
                await self._call(kube.delete, stale)
            except kube.ApiError as error:
                failures.append(f"deleting {child_key(stale)}: {error.message}")
        for shared in plan.disown:
            try:
                await self._call(kube.set_owner_references, shared, without_owner(shared, uid))
            except kube.ApiError as error:
                failures.append(f"disowning {child_key(shared)}: {error.message}")
        return failures, conflicts

    async def _apply_one(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        try:
            applied: dict[str, Any] = await self._call(kube.apply, obj)
            return applied
        except kube.ApiError as error:
            key = child_key(obj)
            if error.status != 422 or (key.group, key.kind) not in _IMMUTABLE_REPLACED:
                raise
            existing = await self._call(kube.get, resource_of(obj), *_where(obj))
            if existing is None:
                raise
            log.info("replacing %s: %s", key, error.message)
            await self._call(kube.delete, existing)
            replaced: dict[str, Any] = await self._call(kube.apply, obj)
            return replaced

    async def _report(self, body: Mapping[str, Any], plan: ReconcilePlan, outcome: Outcome) -> None:
        meta = body["metadata"]
        name, namespace = str(meta["name"]), str(meta.get("namespace") or self.cache.namespace)
        previous = body.get("status") or {}
        status = modelservice_status(
            names=ChildNames(name),
            previous=previous,
            generation=meta.get("generation"),
            rendering=plan.rendering,
            deployments=self.cache.deployments(str(meta.get("uid") or "")),
            outcome=outcome,
            now=rfc3339_seconds(self.clock()),
        )
        if not outcome.ok and _changed_reconciled(previous, outcome):
            await self._event(body, outcome)
        if {k: v for k, v in status.items() if v is not None} == previous:
            return
        try:
            await self._call(kube.patch_status, MODELSERVICE, namespace, name, status)
        except kube.ApiError as error:
            if error.status == 404:
                return  # deleted meanwhile: nothing to report on
            raise

    async def _event(self, body: Mapping[str, Any], outcome: Outcome) -> None:
        """A Warning Event on the ModelService (best effort: logged when it fails)."""
        meta = body["metadata"]
        namespace = str(meta.get("namespace") or self.cache.namespace)
        now_s = self.clock()
        stamp = rfc3339_seconds(now_s)
        event = {
            "metadata": {"generateName": f"{meta['name']}.", "namespace": namespace},
            "involvedObject": {
                "apiVersion": MODELSERVICE.api_version,
                "kind": MODELSERVICE.kind,
                "name": meta["name"],
                "namespace": namespace,
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
            "reason": outcome.reason,
            "message": outcome.message[:EVENT_MESSAGE_CHARS_MAX],
            "type": "Warning",
            "source": {"component": REPORTING_COMPONENT},
            "reportingComponent": REPORTING_COMPONENT,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        log.warning("ModelService %s: %s: %s", meta["name"], outcome.reason, outcome.message)
        try:
            await self._call(kube.create, EVENT, namespace, event)
        except kube.ApiError as error:
            log.warning("Event %s not created: %s", outcome.reason, error.message)


def _where(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj["metadata"]
    return str(meta["namespace"]), str(meta["name"])


def _changed_reconciled(previous: Mapping[str, Any], outcome: Outcome) -> bool:
    """Whether ``outcome`` differs from the ``Reconciled`` condition already written."""
    conditions: Sequence[Mapping[str, Any]] = previous.get("conditions") or []
    before = next((c for c in conditions if c.get("type") == RECONCILED), None)
    if before is None:
        return True
    return (before.get("status"), before.get("reason"), before.get("message")) != (
        "True" if outcome.ok else "False",
        outcome.reason,
        outcome.message,
    )
