"""What the watches showed of ModelServices and their children, and whom each change concerns.

Fed by the Kopf event handlers (and the first listing); read by the reconciler's gather step.
Only objects that carry a ModelService owner reference are kept of the child kinds, so a
namespace full of other Deployments costs nothing but the events. Objects are stored as the
API server sent them and never modified.
"""

from collections.abc import Mapping
from typing import Any

from fma.adapters.k8s.modelservice.kinds import CONFIGMAP, DEPLOYMENT, MODELSERVICE, Resource
from fma.modelservice.reconcile import (
    ChildKey,
    base_config_ref,
    child_key,
    is_owned_by,
    modelservice_owners,
)

Obj = Mapping[str, Any]


def _name(body: Obj) -> str:
    return str((body.get("metadata") or {}).get("name") or "")


class ModelServiceCache:
    """ModelServices by name and their children by :class:`ChildKey`, of one namespace."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace
        self._modelservices: dict[str, Obj] = {}
        self._children: dict[ChildKey, Obj] = {}

    def observe(self, resource: Resource, event_type: str | None, body: Obj) -> set[str]:
        """Store one watch event (``DELETED`` removes); the ModelServices it concerns."""
        deleted = event_type == "DELETED"
        if resource == MODELSERVICE:
            name = _name(body)
            if deleted:
                self._modelservices.pop(name, None)
            else:
                self._modelservices[name] = body
            return {name}
        concerned: set[str] = set()
        if resource == CONFIGMAP:
            concerned |= self.using_base(_name(body))
        full = {"apiVersion": resource.api_version, "kind": resource.kind, **body}
        key = child_key(full)
        before = self._children.get(key)
        if before is not None:
            concerned |= set(modelservice_owners(before))
        owners = modelservice_owners(full)
        concerned |= set(owners)
        if deleted or not owners:
            self._children.pop(key, None)
        else:
            self._children[key] = full
        return concerned

    def using_base(self, config_map: str) -> set[str]:
        """The ModelServices whose BaseConfig is ConfigMap ``config_map`` of this namespace."""
        return {
            name
            for name, body in self._modelservices.items()
            if base_config_ref(body) == (self.namespace, config_map)
        }

    def modelservice(self, name: str) -> Obj | None:
        return self._modelservices.get(name)

    def owned(self, uid: str) -> list[Obj]:
        """The live children that carry an owner reference to ``uid``."""
        return [o for o in self._children.values() if uid and is_owned_by(o, uid)]

    def deployments(self, uid: str) -> dict[str, Obj]:
        """The live Deployments owned by ``uid``, by name."""
        return {
            _name(o): o
            for o in self.owned(uid)
            if child_key(o).kind == DEPLOYMENT.kind and child_key(o).group == DEPLOYMENT.group
        }
