"""The semantic merge: a BaseConfig object is the base, the ModelService's overlay wins.

The rules, as upstream's (mergo with override, plus its transformers), with its defects fixed:

- a value of the overlay wins unless it is empty (``None``, ``""``, ``[]``, ``{}``); an
  explicit ``0`` or ``false`` wins too (upstream loses ``replicas: 0``);
- maps are merged key by key: base-only keys stay, the overlay wins on a shared key;
- ``containers`` and ``initContainers`` are merged by ``name``: the base's keep their order and
  are merged in place, the overlay's others follow in its order;
- in a container, a non-empty ``command`` replaces the base's; ``args`` are the overlay's
  followed by the base's; ``env`` is merged by ``name`` (an overlay entry replaces the base's
  entry whole, so ``value`` and ``valueFrom`` never end up together); ``volumeMounts`` are
  merged by ``mountPath``; other lists (``ports``, ``envFrom``) are appended;
- ``volumes`` are merged by ``name`` (upstream appends, and a base that already has
  ``model-storage`` then gets it twice): a same-named volume of the same source type is merged,
  one of another type is replaced;
- required node-affinity terms are combined with AND (upstream appends them, which ORs);
- HTTPRoute ``parentRefs`` and ``backendRefs`` are merged by ``name``;
- other lists are appended where upstream appends (Deployments, HTTPRoutes) and replaced
  where it does not (Services, InferencePools).
"""

import copy
from collections.abc import Callable, Iterable
from typing import Any

Obj = dict[str, Any]
ListMerge = Callable[[str, list[Any], list[Any]], list[Any]]


def is_empty(value: object) -> bool:
    """Empty values never override: ``None`` and empty strings, lists and maps."""
    return value is None or (isinstance(value, str | list | dict) and len(value) == 0)


def merge(base: Any, overlay: Any, lists: ListMerge, key: str = "") -> Any:
    """``overlay`` merged onto ``base`` (neither is changed); lists go through ``lists``."""
    if is_empty(overlay):
        return copy.deepcopy(base)
    if base is None:
        return copy.deepcopy(overlay)
    if isinstance(base, dict) and isinstance(overlay, dict):
        out = copy.deepcopy(base)
        for name, value in overlay.items():
            if not is_empty(value):
                out[name] = merge(base.get(name), value, lists, name)
        return out
    if isinstance(base, list) and isinstance(overlay, list):
        return lists(key, base, overlay)
    return copy.deepcopy(overlay)


def merge_object(base: Obj | None, overlay: Obj, lists: ListMerge) -> Obj:
    """:func:`merge` of two objects (a missing base is empty), typed as an object."""
    merged = merge(base or {}, overlay, lists)
    assert isinstance(merged, dict)
    return merged


def merge_by(
    key_of: Callable[[Any], object],
    base: list[Any],
    overlay: list[Any],
    merge_item: Callable[[Any, Any], Any],
) -> list[Any]:
    """Items matched by ``key_of`` are merged in the base's place; the rest are appended."""
    ours = {key_of(item): item for item in overlay}
    out = [
        merge_item(item, ours[key_of(item)]) if key_of(item) in ours else copy.deepcopy(item)
        for item in base
    ]
    base_keys = {key_of(item) for item in base}
    out += [copy.deepcopy(item) for item in overlay if key_of(item) not in base_keys]
    return out


def _name(item: Any) -> object:
    return item.get("name") if isinstance(item, dict) else item


def _mount_path(item: Any) -> object:
    return item.get("mountPath") if isinstance(item, dict) else item


def _replace(_base: Any, overlay: Any) -> Any:
    return copy.deepcopy(overlay)


def _sources(volume: Obj) -> set[str]:
    return {k for k in volume if k != "name"}


def _merge_volume(base: Any, overlay: Any) -> Any:
    if isinstance(base, dict) and isinstance(overlay, dict) and _sources(base) == _sources(overlay):
        return merge(base, overlay, workload_lists)
    return copy.deepcopy(overlay)


def _and_terms(base: list[Any], overlay: list[Any]) -> list[Any]:
    """Node selector terms are ORed; every base term must also meet the overlay's needs."""
    if not base:
        return copy.deepcopy(overlay)
    required = [e for term in overlay for e in (term or {}).get("matchExpressions") or []]
    out = []
    for term in base:
        merged = copy.deepcopy(term) if isinstance(term, dict) else {}
        merged["matchExpressions"] = (merged.get("matchExpressions") or []) + copy.deepcopy(
            required
        )
        out.append(merged)
    return out


def _append(_key: str, base: list[Any], overlay: list[Any]) -> list[Any]:
    return copy.deepcopy(base) + copy.deepcopy(overlay)


def workload_lists(key: str, base: list[Any], overlay: list[Any]) -> list[Any]:
    """List rules inside Deployments (and their Pod templates and containers)."""

    def merge_item(b: Any, o: Any) -> Any:
        return merge(b, o, workload_lists)

    if key in ("containers", "initContainers"):
        return merge_by(_name, base, overlay, merge_item)
    if key == "args":
        return copy.deepcopy(overlay) + copy.deepcopy(base)
    if key == "command":
        return copy.deepcopy(overlay)
    if key == "env":
        return merge_by(_name, base, overlay, _replace)
    if key == "volumeMounts":
        return merge_by(_mount_path, base, overlay, _replace)
    if key == "volumes":
        return merge_by(_name, base, overlay, _merge_volume)
    if key == "nodeSelectorTerms":
        return _and_terms(base, overlay)
    return _append(key, base, overlay)


def route_lists(key: str, base: list[Any], overlay: list[Any]) -> list[Any]:
    """List rules inside HTTPRoutes: parent and backend references by name, others appended."""
    if key in ("parentRefs", "backendRefs"):
        return merge_by(_name, base, overlay, lambda b, o: merge(b, o, route_lists))
    return _append(key, base, overlay)


def replace_lists(_key: str, _base: list[Any], overlay: list[Any]) -> list[Any]:
    """List rule of Services and InferencePools: a non-empty overlay list replaces the base's."""
    return copy.deepcopy(overlay)


def merge_maps(*maps: dict[str, str] | None) -> dict[str, str]:
    """String maps combined left to right; later maps win on shared keys."""
    out: dict[str, str] = {}
    for item in maps:
        out.update(item or {})
    return out


def with_key_order(obj: Obj, first: Iterable[str]) -> Obj:
    """``obj`` with the keys in ``first`` (those present) leading, the rest in their order."""
    leading = [k for k in first if k in obj]
    return {**{k: obj[k] for k in leading}, **{k: v for k, v in obj.items() if k not in leading}}
