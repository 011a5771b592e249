"""Routing labels and annotations: their problems, the patches between states, the record."""

import json

import pytest

from fma.adapters.k8s.render.routing import (
    applied_routing,
    routing_of,
    routing_patch,
    routing_problems,
)
from fma.api.crds import InferenceServerConfig
from fma.core.model import Routing

RECORD = "dual-pods.llm-d.ai/isc-routing-metadata"


def isc(
    labels: dict[str, str] | None, annotations: dict[str, str] | None = None
) -> InferenceServerConfig:
    return InferenceServerConfig.model_validate(
        {
            "metadata": {"name": "opt"},
            "spec": {
                "launcherConfigName": "lc",
                "modelServerConfig": {"port": 8000, "labels": labels, "annotations": annotations},
            },
        }
    )


def test_routing_of() -> None:
    assert routing_of(isc({"llm-d.ai/model": "opt"}, {"note": "x"})) == Routing(
        labels={"llm-d.ai/model": "opt"}, annotations={"note": "x"}
    )
    assert routing_of(isc(None)) == Routing()
    assert not routing_of(isc(None))


def test_good_routing_has_no_problems() -> None:
    good = isc(
        {"llm-d.ai/inferenceServing": "true", "llm-d.ai/model": "opt-125m", "app": ""},
        {"llm-d.ai/notes": "free text, any value: even / and spaces"},
    )
    assert routing_problems(good) == ()


def test_routing_problems_name_each_field() -> None:
    bad = isc(
        {
            "kubernetes.io/x": "a",
            "dual-pods.llm-d.ai/dual": "a",
            "k8s.io/y": "a",
            "bad key": "a",
            "llm-d.ai/model": "not valid!",
            "Upper.Case/x": "a",
        },
        {"kubernetes.io/z": "a", "ok.example/fine": "not a label value!", "-x": "a"},
    )
    assert routing_problems(bad) == (
        'spec.modelServerConfig.labels["Upper.Case/x"]: key prefix part must be a lower-case '
        "DNS subdomain",
        'spec.modelServerConfig.labels["bad key"]: key name part must consist of alphanumerics, '
        "'-', '_' or '.', and start and end with an alphanumeric",
        'spec.modelServerConfig.labels["dual-pods.llm-d.ai/dual"]: reserved prefix',
        'spec.modelServerConfig.labels["k8s.io/y"]: reserved prefix',
        'spec.modelServerConfig.labels["kubernetes.io/x"]: reserved prefix',
        'spec.modelServerConfig.labels["llm-d.ai/model"]: value must consist of alphanumerics, '
        "'-', '_' or '.', and start and end with an alphanumeric",
        'spec.modelServerConfig.annotations["-x"]: key name part must consist of '
        "alphanumerics, '-', '_' or '.', and start and end with an alphanumeric",
        'spec.modelServerConfig.annotations["kubernetes.io/z"]: reserved prefix',
    )


WANTED = Routing(
    labels={"llm-d.ai/model": "opt", "llm-d.ai/role": "decode"}, annotations={"n": "1"}
)
WANTED_RECORD = json.dumps(
    {"annotations": {"n": "1"}, "labels": {"llm-d.ai/model": "opt", "llm-d.ai/role": "decode"}},
    separators=(",", ":"),
)


def test_applying_routing_to_a_pod_without_it() -> None:
    labels, annotations = routing_patch({"team": "a"}, {"other": "x"}, None, WANTED)
    assert labels == {"llm-d.ai/model": "opt", "llm-d.ai/role": "decode"}
    assert annotations == {"n": "1", RECORD: WANTED_RECORD}


def test_removing_applied_routing() -> None:
    current_labels = {"team": "a", "llm-d.ai/model": "opt", "llm-d.ai/role": "decode"}
    current_annotations = {"other": "x", "n": "1", RECORD: WANTED_RECORD}
    labels, annotations = routing_patch(current_labels, current_annotations, WANTED, None)
    assert labels == {"llm-d.ai/model": None, "llm-d.ai/role": None}
    assert annotations == {"n": None, RECORD: None}


def test_an_applied_pod_as_wanted_needs_no_change() -> None:
    current_labels = {"llm-d.ai/model": "opt", "llm-d.ai/role": "decode"}
    current_annotations = {"n": "1", RECORD: WANTED_RECORD}
    assert routing_patch(current_labels, current_annotations, WANTED, WANTED) == ({}, {})
    assert routing_patch({}, {}, None, None) == ({}, {})
    assert routing_patch({}, {}, None, Routing()) == ({}, {})


def test_moving_from_one_routing_to_another() -> None:
    applied = Routing(labels={"llm-d.ai/model": "old", "llm-d.ai/gone": "x"}, annotations={})
    current_labels = {"llm-d.ai/model": "old", "llm-d.ai/gone": "x"}
    current_annotations = {
        RECORD: '{"annotations":{},"labels":{"llm-d.ai/gone":"x","llm-d.ai/model":"old"}}'
    }
    labels, annotations = routing_patch(current_labels, current_annotations, applied, WANTED)
    assert labels == {"llm-d.ai/gone": None, "llm-d.ai/model": "opt", "llm-d.ai/role": "decode"}
    assert annotations == {"n": "1", RECORD: WANTED_RECORD}


def test_keys_the_pod_has_from_elsewhere_are_never_touched() -> None:
    """The template set llm-d.ai/role: FMA neither overwrites, records nor removes it."""
    current_labels = {"llm-d.ai/role": "prefill"}
    labels, annotations = routing_patch(current_labels, {"n": "mine"}, None, WANTED)
    assert labels == {"llm-d.ai/model": "opt"}
    assert annotations == {RECORD: '{"annotations":{},"labels":{"llm-d.ai/model":"opt"}}'}
    recorded = applied_routing({RECORD: annotations[RECORD] or ""})
    assert recorded == Routing(labels={"llm-d.ai/model": "opt"}, annotations={})
    after = {"llm-d.ai/role": "prefill", "llm-d.ai/model": "opt"}
    labels, annotations = routing_patch(after, {"n": "mine", RECORD: "x"}, recorded, None)
    assert labels == {"llm-d.ai/model": None}
    assert annotations == {RECORD: None}


def test_reserved_keys_are_never_touched() -> None:
    wanted = Routing(labels={"dual-pods.llm-d.ai/dual": "x", "ok": "1"}, annotations={})
    labels, annotations = routing_patch({}, {}, None, wanted)
    assert labels == {"ok": "1"}
    assert annotations == {RECORD: '{"annotations":{},"labels":{"ok":"1"}}'}


def test_an_owned_key_already_gone_is_not_deleted_again() -> None:
    applied = Routing(labels={"a": "1"}, annotations={})
    labels, annotations = routing_patch({}, {RECORD: "{}"}, applied, None)
    assert (labels, annotations) == ({}, {RECORD: None})


def test_applied_routing_reads_the_record_back() -> None:
    assert applied_routing({RECORD: WANTED_RECORD}) == WANTED
    assert applied_routing({}) is None


@pytest.mark.parametrize(
    "text", ["not json", "[1]", '{"labels": {"a": 1}}', '{"labels": [], "annotations": {}}']
)
def test_a_malformed_record_reads_as_none(text: str) -> None:
    assert applied_routing({RECORD: text}) is None
