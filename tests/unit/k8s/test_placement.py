"""Sleeper-aware placement's pure parts: the labels a launcher's instances give it, and the
affinity the webhook adds to a new requester — and that the two name the same thing."""

import base64
import copy
import json
import re
from dataclasses import replace
from typing import Any

import pytest
from fastapi.testclient import TestClient

from fma.adapters.k8s.placement import (
    ReviewError,
    admission_response,
    affinity_patch,
    placement_app,
    sleeper_label,
    sleeper_label_changes,
)
from fma.api.constants import (
    ANN_INFERENCE_SERVER_CONFIG,
    LABEL_HOSTNAME,
    PLACEMENT_WEBHOOK_PATH,
    SLEEPER_LABEL_PREFIX,
)
from fma.core.model import InstanceState, ProviderKind
from tests.builders import instance, provider, spec

LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
Obj = dict[str, Any]


def launcher(*instances: Any, labels: dict[str, str] | None = None, **over: Any) -> Any:
    fields = {"kind": ProviderKind.LAUNCHER, "instances": tuple(instances), **over}
    return replace(provider("launcher-1"), labels=labels or {}, **fields)


def of(isc: str, state: InstanceState, gpu: str = "GPU-0") -> Any:
    return instance(spec(model=isc), gpus=(gpu,), state=state, isc_name=isc)


def requester_pod(isc: str | None = "isc-a", **spec_fields: Any) -> Obj:
    annotations = {ANN_INFERENCE_SERVER_CONFIG: isc} if isc else {}
    return {
        "metadata": {"name": "r", "annotations": annotations},
        "spec": {"containers": [{"name": "inference-server"}], **spec_fields},
    }


def applied(pod: Obj, patch: list[Obj]) -> Obj:
    """``pod`` after the JSON Patch ``add`` operations the webhook answers with."""
    result = copy.deepcopy(pod)
    for op in patch:
        assert op["op"] == "add"
        *parents, last = op["path"].lstrip("/").split("/")
        target = result
        for key in parents:
            target = target[key]
        if last == "-":
            target.append(op["value"])
        else:
            assert last not in target, f"{op['path']} would be overwritten"
            target[last] = op["value"]
    return result


def preferred(pod: Obj) -> list[Obj]:
    terms: list[Obj] = pod["spec"]["affinity"]["podAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    return terms


# --- the labels ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "labelled"),
    [
        pytest.param(InstanceState.SLEEPING, True, id="sleeping"),
        pytest.param(InstanceState.FALLING_ASLEEP, True, id="falling-asleep"),
        pytest.param(InstanceState.AWAKE, False, id="awake"),
        pytest.param(InstanceState.STARTING, False, id="starting"),
        pytest.param(InstanceState.WAKING, False, id="waking"),
        pytest.param(InstanceState.STOPPING, False, id="stopping"),
        pytest.param(InstanceState.STOPPED, False, id="stopped"),
    ],
)
def test_a_launcher_is_labelled_for_the_isc_of_each_instance_asleep(
    state: InstanceState, labelled: bool
) -> None:
    changes = sleeper_label_changes(launcher(of("isc-a", state)))
    assert changes == ({sleeper_label("isc-a"): "true"} if labelled else {})


def test_one_label_per_isc_held_whatever_the_count_of_its_sleepers() -> None:
    held = launcher(
        of("isc-a", InstanceState.SLEEPING, "GPU-0"),
        of("isc-a", InstanceState.SLEEPING, "GPU-1"),
        of("isc-b", InstanceState.SLEEPING, "GPU-2"),
        of("isc-c", InstanceState.AWAKE, "GPU-3"),
    )
    assert sleeper_label_changes(held) == {
        sleeper_label("isc-a"): "true",
        sleeper_label("isc-b"): "true",
    }


def test_labels_of_iscs_no_longer_held_are_removed_and_others_left_alone() -> None:
    held = launcher(
        of("isc-a", InstanceState.SLEEPING),
        of("isc-b", InstanceState.WAKING, "GPU-1"),  # woken: no longer a sleeper
        labels={
            sleeper_label("isc-a"): "true",
            sleeper_label("isc-b"): "true",
            "team": "serving",
            "dual-pods.llm-d.ai/sleeping": "true",
        },
    )
    assert sleeper_label_changes(held) == {sleeper_label("isc-b"): None}


def test_a_launcher_labelled_as_it_should_be_needs_no_write() -> None:
    held = launcher(of("isc-a", InstanceState.SLEEPING), labels={sleeper_label("isc-a"): "true"})
    assert sleeper_label_changes(held) == {}


@pytest.mark.parametrize(
    "over",
    [
        pytest.param({"deleting": True}, id="launcher-deleting"),
        pytest.param({"kind": ProviderKind.DIRECT}, id="direct-provider"),
    ],
)
def test_a_provider_no_requester_should_be_steered_to_holds_no_label(over: dict[str, Any]) -> None:
    held = launcher(
        of("isc-a", InstanceState.SLEEPING), labels={sleeper_label("isc-a"): "true"}, **over
    )
    assert sleeper_label_changes(held) == {sleeper_label("isc-a"): None}


def test_an_instance_of_no_isc_gives_no_label() -> None:
    assert sleeper_label_changes(launcher(of("", InstanceState.SLEEPING))) == {}


def test_a_label_key_is_the_isc_name_when_it_fits() -> None:
    assert sleeper_label("llama-8b.v2") == SLEEPER_LABEL_PREFIX + "llama-8b.v2"


def test_a_long_isc_name_gives_a_valid_key_distinct_from_its_neighbours() -> None:
    base = "a" * 60 + "-model"
    keys = {sleeper_label(base + suffix) for suffix in ("-one", "-two", ".three")}
    assert len(keys) == 3
    for key in keys:
        name = key.removeprefix(SLEEPER_LABEL_PREFIX)
        assert len(name) <= 63 and LABEL_NAME.match(name), name


# --- the affinity ----------------------------------------------------------------------------


def test_the_affinity_points_at_the_launchers_the_labels_mark() -> None:
    """The two halves agree: a requester of isc-a prefers nodes of Pods with exactly the
    label a launcher holding a sleeper of isc-a is given."""
    (label,) = sleeper_label_changes(launcher(of("isc-a", InstanceState.SLEEPING)))
    (term,) = preferred(applied(requester_pod("isc-a"), affinity_patch(requester_pod(), 100)))
    assert term["weight"] == 100
    pod_term = term["podAffinityTerm"]
    assert pod_term["topologyKey"] == LABEL_HOSTNAME
    assert pod_term["labelSelector"] == {"matchExpressions": [{"key": label, "operator": "Exists"}]}


def test_the_affinity_is_for_the_requesters_own_isc() -> None:
    (term,) = preferred(applied(requester_pod("isc-b"), affinity_patch(requester_pod("isc-b"), 7)))
    (expression,) = term["podAffinityTerm"]["labelSelector"]["matchExpressions"]
    assert expression["key"] == sleeper_label("isc-b")
    assert term["weight"] == 7


@pytest.mark.parametrize(
    "affinity",
    [
        pytest.param({"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {}}}),
        pytest.param({"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": []}}),
        pytest.param(
            {
                "podAffinity": {
                    "preferredDuringSchedulingIgnoredDuringExecution": [
                        {"weight": 5, "podAffinityTerm": {"topologyKey": "zone"}}
                    ]
                }
            }
        ),
    ],
    ids=["node-affinity", "required-pod-affinity", "own-preferred-term"],
)
def test_the_requesters_own_affinity_is_kept(affinity: Obj) -> None:
    pod = requester_pod(affinity=copy.deepcopy(affinity))
    after = applied(pod, affinity_patch(pod, 100))
    for kind, rules in affinity.items():
        for key, value in rules.items():
            if key == "preferredDuringSchedulingIgnoredDuringExecution":
                assert preferred(after)[: len(value)] == value
            else:
                assert after["spec"]["affinity"][kind][key] == value
    terms = preferred(after)
    assert terms[-1]["podAffinityTerm"]["labelSelector"]["matchExpressions"][0]["key"] == (
        sleeper_label("isc-a")
    )


@pytest.mark.parametrize(
    "pod",
    [
        pytest.param(requester_pod(None), id="no-isc"),
        pytest.param(requester_pod(nodeName="node-a"), id="already-on-a-node"),
    ],
)
def test_a_pod_the_scheduler_will_not_place_by_isc_is_left_as_it_is(pod: Obj) -> None:
    assert affinity_patch(pod, 100) == []


def test_a_second_call_adds_nothing_more() -> None:
    once = applied(requester_pod(), affinity_patch(requester_pod(), 100))
    assert affinity_patch(once, 100) == []


# --- the review ------------------------------------------------------------------------------


def review(pod: Obj, operation: str = "CREATE") -> Obj:
    return {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u-1",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "operation": operation,
            "object": pod,
        },
    }


def test_a_created_requester_is_allowed_with_the_affinity_as_a_json_patch() -> None:
    answer = admission_response(review(requester_pod()), 100)
    response = answer["response"]
    assert (answer["kind"], response["uid"], response["allowed"]) == (
        "AdmissionReview",
        "u-1",
        True,
    )
    assert response["patchType"] == "JSONPatch"
    patch = json.loads(base64.b64decode(response["patch"]))
    assert patch == affinity_patch(requester_pod(), 100)


@pytest.mark.parametrize(
    "request_review",
    [
        pytest.param(review(requester_pod(None)), id="no-requester"),
        pytest.param(review(requester_pod(), operation="UPDATE"), id="update"),
    ],
)
def test_other_reviews_are_allowed_unchanged(request_review: Obj) -> None:
    response = admission_response(request_review, 100)["response"]
    assert response == {"uid": "u-1", "allowed": True}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param([], "AdmissionReview", id="not-an-object"),
        pytest.param({"kind": "AdmissionReview"}, "request", id="no-request"),
        pytest.param({"request": {"operation": "CREATE"}}, "request.uid", id="no-uid"),
        pytest.param(
            {"request": {"uid": "u", "operation": "CREATE", "kind": {"kind": "Pod"}}},
            "request.object",
            id="no-object",
        ),
    ],
)
def test_a_malformed_review_is_refused_naming_the_field(body: Any, field: str) -> None:
    with pytest.raises(ReviewError, match=re.escape(field)):
        admission_response(body, 100)


def test_the_webhook_answers_reviews_and_refuses_what_it_cannot_read() -> None:
    with TestClient(placement_app(60)) as http:
        answered = http.post(PLACEMENT_WEBHOOK_PATH, json=review(requester_pod()))
        assert answered.status_code == 200
        patch = json.loads(base64.b64decode(answered.json()["response"]["patch"]))
        assert patch == affinity_patch(requester_pod(), 60)
        broken = http.post(PLACEMENT_WEBHOOK_PATH, content=b"{not json")
        assert broken.status_code == 400
        assert "not JSON" in broken.json()["error"]
        no_uid = http.post(PLACEMENT_WEBHOOK_PATH, json={"request": {}})
        assert no_uid.status_code == 400
        assert "request.uid" in no_uid.json()["error"]
