"""The operator's informer cache: the latest version of every object it watches, by kind.

Kopf's event handlers put what the API server sends here (:meth:`ObjectStore.apply`) and
enqueue the keys the change concerns; the executor puts the objects its own writes return
(:meth:`ObjectStore.put`), so a reconcile right after a write sees it even before the watch
event arrives. An object is replaced only by a newer ``resourceVersion``: a late watch event
never undoes a write seen earlier. An object the API server said is gone stays gone: the answer
to a write that finished its deletion (the last finalizer removed) may arrive after the
``DELETED`` event, and must not bring it back. Nothing here talks to the API server.

Keys are node names (the reconcile shell's unit of work) and
:data:`~fma.control.reconcile.CONFIGS` (the status of the configuration objects). A Pod
concerns the node it runs on (``spec.nodeName``) or, before it is scheduled, the node its
``nodeSelector`` pins it to (launcher and direct provider Pods are created so); a Pod with
neither concerns no node yet. A Node concerns itself. A configuration object (an
InferenceServerConfig, LauncherConfig, LauncherPopulationPolicy or the ``gpu-map``
ConfigMap) concerns every node, and the first two also :data:`CONFIGS`.
"""

import copy
import json
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import Any

from fma.api.constants import CONFIGMAP_GPU_MAP, LABEL_HOSTNAME
from fma.control.reconcile import CONFIGS

Obj = dict[str, Any]
GONE_UIDS_KEPT = 100_000
"""How many UIDs of deleted objects are remembered (a UID is never reused)."""


class Kind(StrEnum):
    POD = "Pod"
    NODE = "Node"
    ISC = "InferenceServerConfig"
    LAUNCHER_CONFIG = "LauncherConfig"
    POPULATION_POLICY = "LauncherPopulationPolicy"
    CONFIGMAP = "ConfigMap"


def name_of(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name") or "")


def uid_of(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("uid") or "")


def resource_version(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def pod_node(pod: Mapping[str, Any]) -> str | None:
    """The node a Pod runs on, or is pinned to before it is scheduled; None for neither."""
    spec = pod.get("spec") or {}
    node = spec.get("nodeName") or (spec.get("nodeSelector") or {}).get(LABEL_HOSTNAME)
    return str(node) if node else None


def _newer(old: Mapping[str, Any] | None, new: Mapping[str, Any]) -> bool:
    """Whether ``new`` may replace ``old``: a later resourceVersion (they are etcd revisions,
    integers in practice; anything else is taken in arrival order), or another object of the
    same name (a new UID)."""
    if old is None or uid_of(old) != uid_of(new):
        return True
    try:
        return int(resource_version(new)) >= int(resource_version(old))
    except ValueError:
        return True


def _private_copy(body: Mapping[str, Any]) -> Obj:
    """A copy nobody else holds, without ``metadata.managedFields`` (nothing here reads them,
    and they are often half an object). Objects are JSON, so a JSON round trip copies them,
    at half the cost of ``copy.deepcopy``; this copy is on the path of every watch event."""
    try:
        obj: Obj = json.loads(json.dumps(body))
    except TypeError:  # not JSON after all (a test's object): copy it the slow way
        obj = copy.deepcopy(dict(body))
    metadata = obj.get("metadata")
    if isinstance(metadata, dict):
        metadata.pop("managedFields", None)
    return obj


class ObjectStore:
    """The latest object of each kind and name, with a per-node index of Pods."""

    def __init__(self) -> None:
        self._objects: dict[Kind, dict[str, Obj]] = {kind: {} for kind in Kind}
        self._pods_on: dict[str, dict[str, Obj]] = {}
        self._pod_uids: dict[str, str] = {}
        """Pod UID -> name."""
        self._gone: OrderedDict[str, None] = OrderedDict()
        """UIDs of the objects seen deleted, oldest first."""

    # --- changes ---------------------------------------------------------------------------

    def apply(self, kind: Kind, event_type: str | None, body: Mapping[str, Any]) -> set[str]:
        """A watch event (``ADDED``, ``MODIFIED``, ``DELETED``, or None for the initial list):
        the keys it concerns."""
        if event_type == "DELETED":
            return self.forget(kind, body)
        return self.put(kind, body)

    def put(self, kind: Kind, body: Mapping[str, Any]) -> set[str]:
        """Record ``body`` unless a newer version is known: the keys it concerns (none when it
        was stale)."""
        name = name_of(body)
        if not name or uid_of(body) in self._gone:
            return set()
        old = self._objects[kind].get(name)
        if not _newer(old, body):
            return set()
        obj = _private_copy(body)
        self._objects[kind][name] = obj
        keys = self._concerns(kind, obj)
        if kind is Kind.POD:
            if old is not None:
                keys |= self._unindex(old)
            self._index(obj)
        return keys

    def forget(self, kind: Kind, body: Mapping[str, Any]) -> set[str]:
        """The object is gone (only if it is the one known: same UID): the keys it concerned.
        Its UID is remembered, so that no later :meth:`put` of it brings it back."""
        name = name_of(body)
        if uid := uid_of(body):
            self._gone[uid] = None
            if len(self._gone) > GONE_UIDS_KEPT:
                self._gone.popitem(last=False)
        old = self._objects[kind].get(name)
        if old is None or (uid_of(body) and uid_of(old) != uid_of(body)):
            return set()
        del self._objects[kind][name]
        keys = self._concerns(kind, old)
        if kind is Kind.POD:
            keys |= self._unindex(old)
        return keys

    def _concerns(self, kind: Kind, obj: Obj) -> set[str]:
        if kind is Kind.POD:
            node = pod_node(obj)
            return {node} if node else set()
        if kind is Kind.NODE:
            return {name_of(obj)}
        if kind is Kind.CONFIGMAP and name_of(obj) != CONFIGMAP_GPU_MAP:
            return set()
        everything = set(self._objects[Kind.NODE])
        if kind in (Kind.ISC, Kind.LAUNCHER_CONFIG):
            everything.add(CONFIGS)
        return everything

    def _index(self, pod: Obj) -> None:
        name = name_of(pod)
        self._pod_uids[uid_of(pod)] = name
        node = pod_node(pod)
        if node:
            self._pods_on.setdefault(node, {})[name] = pod

    def _unindex(self, pod: Obj) -> set[str]:
        name = name_of(pod)
        if self._pod_uids.get(uid_of(pod)) == name:
            del self._pod_uids[uid_of(pod)]
        node = pod_node(pod)
        if not node:
            return set()
        on_node = self._pods_on.get(node, {})
        on_node.pop(name, None)
        if not on_node:
            self._pods_on.pop(node, None)
        return {node}

    # --- reads (the objects are the store's: callers must not change them) ----------------------

    def get(self, kind: Kind, name: str) -> Obj | None:
        return self._objects[kind].get(name)

    def all(self, kind: Kind) -> Mapping[str, Obj]:
        return self._objects[kind]

    def pods_on(self, node: str) -> Iterable[Obj]:
        """The Pods running on, or pinned to, ``node``."""
        return tuple(self._pods_on.get(node, {}).values())

    def pod_by_uid(self, uid: str) -> Obj | None:
        name = self._pod_uids.get(uid)
        return self._objects[Kind.POD].get(name) if name is not None else None

    def node_names(self) -> list[str]:
        return sorted(self._objects[Kind.NODE])
