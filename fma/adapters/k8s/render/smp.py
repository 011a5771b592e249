"""A strategic merge patch for Pods, as ``kubectl patch --type strategic`` applies one.

What it covers (the Pod fields a server patch changes):

- maps are merged key by key, recursively; a ``null`` value deletes the key;
- lists with a Kubernetes *merge key* are merged item by item on that key: the original's
  items keep their order and are merged in place, the patch's new items follow in its order.
  The keys are those of ``k8s.io/api/core/v1``: ``containers``, ``initContainers`` and
  ``ephemeralContainers`` by ``name``; in a container ``env`` by ``name``, ``ports`` by
  ``containerPort``, ``volumeMounts`` by ``mountPath``, ``volumeDevices`` by ``devicePath``;
  ``volumes``, ``imagePullSecrets``, ``resourceClaims`` and ``schedulingGates`` by ``name``;
  ``hostAliases`` by ``ip``; ``topologySpreadConstraints`` by ``topologyKey``;
  ``metadata.ownerReferences`` by ``uid``;
- ``metadata.finalizers`` (a list of strings with strategy *merge*) is a union;
- every other list is replaced whole (``command``, ``args``, ``tolerations``, ``envFrom``,
  ``readinessGates``, ...), as Kubernetes does for lists without a merge strategy;
- directives: ``$patch: replace`` in a map (the patch's map replaces the original's) or as
  a list item ``{$patch: replace}`` (the patch's other items replace the list);
  ``$patch: delete`` in a map (the key is removed) or in a merge-keyed item (the item with
  that key is removed); ``$patch: merge`` (the default); ``$retainKeys`` (keys of the map
  not listed are cleared); ``$deleteFromPrimitiveList/<field>`` (those values are removed
  from the string list ``<field>``).

Not covered: ``$setElementOrder/<field>`` is accepted and ignored (merged lists keep the
original's order); lists of lists; merge keys of objects other than a Pod.

Where the original has no value, the patch's value is applied to an empty one, so its
directives and nulls are resolved rather than copied into the result.
"""

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

PATCH: Final = "$patch"
RETAIN_KEYS: Final = "$retainKeys"
DELETE_FROM_PRIMITIVE_LIST: Final = "$deleteFromPrimitiveList/"
SET_ELEMENT_ORDER: Final = "$setElementOrder/"


class PatchError(ValueError):
    """A patch that cannot be applied; ``str(error)`` is ``<path>: <reason>``, one line."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path or '(top)'}: {reason}")


@dataclass(frozen=True, slots=True)
class Schema:
    """The merge rules of a map's fields; a field not named is a plain map or a list to
    replace."""

    fields: Mapping[str, "Schema | MergeList"] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class MergeList:
    """A list merged item by item on ``key``; ``key`` None: a list of strings merged as a
    union. ``item`` is the schema of the items."""

    key: str | None
    item: Schema = field(default_factory=Schema)


CONTAINER: Final = Schema(
    {
        "env": MergeList("name"),
        "ports": MergeList("containerPort"),
        "volumeMounts": MergeList("mountPath"),
        "volumeDevices": MergeList("devicePath"),
    }
)
POD_SPEC: Final = Schema(
    {
        "containers": MergeList("name", CONTAINER),
        "initContainers": MergeList("name", CONTAINER),
        "ephemeralContainers": MergeList("name", CONTAINER),
        "volumes": MergeList("name"),
        "imagePullSecrets": MergeList("name"),
        "resourceClaims": MergeList("name"),
        "schedulingGates": MergeList("name"),
        "hostAliases": MergeList("ip"),
        "topologySpreadConstraints": MergeList("topologyKey"),
    }
)
OBJECT_META: Final = Schema({"finalizers": MergeList(None), "ownerReferences": MergeList("uid")})
POD: Final = Schema({"metadata": OBJECT_META, "spec": POD_SPEC})


class _Deleted:
    """Marks a value a ``$patch: delete`` removed."""


_DELETED: Final = _Deleted()


def strategic_merge(
    original: Mapping[str, Any], patch: Mapping[str, Any], schema: Schema = POD
) -> dict[str, Any]:
    """``patch`` applied to ``original`` (neither is changed); raises :class:`PatchError`."""
    if not isinstance(patch, Mapping):
        raise PatchError("", "a patch must be a map")
    merged = _merge_map(dict(original), patch, schema, "")
    if isinstance(merged, _Deleted):
        raise PatchError("", "$patch: delete cannot delete the whole object")
    return merged


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _merge_map(
    original: Mapping[str, Any], patch: Mapping[str, Any], schema: Schema, path: str
) -> dict[str, Any] | _Deleted:
    directive = patch.get(PATCH, "merge")
    if directive == "delete":
        return _DELETED
    if directive == "replace":
        original = {}
    elif directive != "merge":
        raise PatchError(_join(path, PATCH), f"unknown directive {directive!r}")
    out = copy.deepcopy(dict(original))
    retained = _retained_keys(patch, path)
    if retained is not None:
        out = {k: v for k, v in out.items() if k in retained}
    for key, value in patch.items():
        if key.startswith(DELETE_FROM_PRIMITIVE_LIST):
            _delete_from_primitive_list(out, key, value, path)
    for key, value in patch.items():
        if key.startswith("$"):
            if key in (PATCH, RETAIN_KEYS) or key.startswith(
                (DELETE_FROM_PRIMITIVE_LIST, SET_ELEMENT_ORDER)
            ):
                continue
            raise PatchError(_join(path, key), "unknown directive")
        if value is None:
            out.pop(key, None)
            continue
        merged = _merge_value(out.get(key), value, schema.fields.get(key), _join(path, key))
        if isinstance(merged, _Deleted):
            out.pop(key, None)
        else:
            out[key] = merged
    if retained is not None:
        out = {k: v for k, v in out.items() if k in retained}
    return out


def _retained_keys(patch: Mapping[str, Any], path: str) -> frozenset[str] | None:
    if RETAIN_KEYS not in patch:
        return None
    keys = patch[RETAIN_KEYS]
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise PatchError(_join(path, RETAIN_KEYS), "must be a list of field names")
    return frozenset(keys)


def _delete_from_primitive_list(out: dict[str, Any], key: str, values: Any, path: str) -> None:
    name = key[len(DELETE_FROM_PRIMITIVE_LIST) :]
    if not isinstance(values, list):
        raise PatchError(_join(path, key), "must be a list")
    current = out.get(name)
    if isinstance(current, list):
        out[name] = [v for v in current if v not in values]


def _merge_value(original: Any, patch: Any, rule: Schema | MergeList | None, path: str) -> Any:
    if isinstance(patch, Mapping):
        if isinstance(rule, MergeList):
            raise PatchError(path, "must be a list")
        return _merge_map(
            original if isinstance(original, Mapping) else {}, patch, rule or Schema(), path
        )
    if isinstance(patch, list):
        if isinstance(rule, MergeList):
            return _merge_list(original if isinstance(original, list) else [], patch, rule, path)
        return copy.deepcopy(patch)
    return patch


def _is_replace_marker(item: Any) -> bool:
    return isinstance(item, Mapping) and dict(item) == {PATCH: "replace"}


def _merge_list(original: list[Any], patch: list[Any], rule: MergeList, path: str) -> list[Any]:
    if any(_is_replace_marker(item) for item in patch):
        original = []
        patch = [item for item in patch if not _is_replace_marker(item)]
    if rule.key is None:
        out = copy.deepcopy(original)
        for item in patch:
            if isinstance(item, Mapping):
                raise PatchError(path, "items must be strings")
            if item not in out:
                out.append(item)
        return out
    key = rule.key
    merged: list[Any] = copy.deepcopy(original)
    for item in patch:
        if not isinstance(item, Mapping):
            raise PatchError(path, f"items must be maps with the merge key {key}")
        if key not in item or item[key] is None:
            raise PatchError(path, f"an item has no merge key {key}")
        wanted = item[key]
        item_path = f"{path}[{wanted}]"
        directive = item.get(PATCH, "merge")
        if directive == "delete":
            merged = [m for m in merged if not (isinstance(m, Mapping) and m.get(key) == wanted)]
            continue
        if directive not in ("merge", "replace"):
            raise PatchError(f"{item_path}.{PATCH}", f"unknown directive {directive!r}")
        index = next(
            (i for i, m in enumerate(merged) if isinstance(m, Mapping) and m.get(key) == wanted),
            None,
        )
        base = merged[index] if index is not None else {}
        result = _merge_map(base, item, rule.item, item_path)
        assert not isinstance(result, _Deleted)  # a "delete" item was handled above
        if index is None:
            merged.append(result)
        else:
            merged[index] = result
    return merged
