"""An InferenceServerConfig's routing labels and annotations on the launcher that serves it.

They are put on the bound launcher Pod while its instance is awake, so that an endpoint
picker sees only awake instances, and taken off before it sleeps. What FMA applied is
recorded on the Pod in ``dual-pods.llm-d.ai/isc-routing-metadata`` (JSON ``{"labels": {...},
"annotations": {...}}``), so that a restarted operator removes exactly those keys, and never a
key the Pod had from elsewhere (its template, a user).
"""

import json
from collections.abc import Mapping
from typing import Final

from fma.adapters.k8s.render.errors import key_path
from fma.adapters.k8s.render.hashing import canonical_json
from fma.adapters.k8s.render.names import label_value_problem, qualified_name_problem
from fma.api.constants import ANN_ISC_ROUTING_METADATA, RESERVED_KEY_PREFIXES
from fma.api.crds import InferenceServerConfig
from fma.core.model import Routing

LABELS_PATH: Final = "spec.modelServerConfig.labels"
ANNOTATIONS_PATH: Final = "spec.modelServerConfig.annotations"

Changes = dict[str, str | None]
"""Key -> new value; None deletes the key."""


def routing_of(isc: InferenceServerConfig) -> Routing:
    """The routing labels and annotations the ISC asks for (unchecked: see
    :func:`routing_problems`)."""
    config = isc.spec.model_server_config
    return Routing(labels=dict(config.labels or {}), annotations=dict(config.annotations or {}))


def _reserved(key: str) -> bool:
    return key.startswith(RESERVED_KEY_PREFIXES)


def routing_problems(isc: InferenceServerConfig) -> tuple[str, ...]:
    """What is wrong with the ISC's routing metadata, each naming the field
    (``spec.modelServerConfig.labels["kubernetes.io/x"]: reserved prefix``): keys with a
    reserved prefix (``dual-pods.llm-d.ai/``, ``kubernetes.io/``, ``k8s.io/``), keys that are
    not qualified names, label values that are not valid label values. () when usable."""
    routing = routing_of(isc)
    problems: list[str] = []
    for path, entries, check_values in (
        (LABELS_PATH, routing.labels, True),
        (ANNOTATIONS_PATH, routing.annotations, False),
    ):
        for key in sorted(entries):
            where = key_path(path, key)
            if _reserved(key):
                problems.append(f"{where}: reserved prefix")
                continue
            key_problem = qualified_name_problem(key)
            if key_problem:
                problems.append(f"{where}: key {key_problem}")
            value_problem = label_value_problem(entries[key]) if check_values else None
            if value_problem:
                problems.append(f"{where}: value {value_problem}")
    return tuple(problems)


def routing_patch(
    current_labels: Mapping[str, str],
    current_annotations: Mapping[str, str],
    applied: Routing | None,
    wanted: Routing | None,
) -> tuple[Changes, Changes]:
    """The label and annotation changes (None deletes) that take a Pod from ``applied``
    routing metadata (what FMA put there, :func:`applied_routing`) to ``wanted`` (None: none).

    Keys of ``applied`` that ``wanted`` lacks are removed; keys of ``wanted`` are set, except
    a key the Pod has that ``applied`` does not own (it came from elsewhere: it is left as it
    is and not recorded) and reserved keys (never touched). The record
    ``dual-pods.llm-d.ai/isc-routing-metadata`` is set to what is then applied, or removed
    when nothing is. Only real changes are returned: ({}, {}) when the Pod is as wanted.
    """
    owned_labels = dict(applied.labels) if applied else {}
    owned_annotations = dict(applied.annotations) if applied else {}
    label_changes, kept_labels = _changes(
        current_labels, owned_labels, dict(wanted.labels) if wanted else {}
    )
    annotation_changes, kept_annotations = _changes(
        current_annotations, owned_annotations, dict(wanted.annotations) if wanted else {}
    )
    record = (
        canonical_json({"labels": kept_labels, "annotations": kept_annotations})
        if kept_labels or kept_annotations
        else None
    )
    if current_annotations.get(ANN_ISC_ROUTING_METADATA) != record:
        annotation_changes[ANN_ISC_ROUTING_METADATA] = record
    if record is None and ANN_ISC_ROUTING_METADATA not in current_annotations:
        annotation_changes.pop(ANN_ISC_ROUTING_METADATA, None)
    return label_changes, annotation_changes


def _changes(
    current: Mapping[str, str], owned: Mapping[str, str], wanted: Mapping[str, str]
) -> tuple[Changes, dict[str, str]]:
    """The changes of one map, and what FMA owns in it afterwards."""
    changes: Changes = {}
    kept: dict[str, str] = {}
    for key in sorted(owned):
        if key not in wanted and not _reserved(key) and key in current:
            changes[key] = None
    for key in sorted(wanted):
        if _reserved(key) or (key in current and key not in owned):
            continue
        kept[key] = wanted[key]
        if current.get(key) != wanted[key]:
            changes[key] = wanted[key]
    return changes, kept


def applied_routing(annotations: Mapping[str, str]) -> Routing | None:
    """The routing metadata FMA recorded as applied to a Pod, or None when there is none.

    A record that is not the JSON :func:`routing_patch` writes also reads as None: FMA then
    owns no key on the Pod and removes nothing it cannot prove it put there.
    """
    text = annotations.get(ANN_ISC_ROUTING_METADATA)
    if text is None:
        return None
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(record, dict):
        return None
    labels = record.get("labels", {})
    annotations_applied = record.get("annotations", {})
    if not (_string_map(labels) and _string_map(annotations_applied)):
        return None
    return Routing(labels=labels, annotations=annotations_applied)


def _string_map(value: object) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )
