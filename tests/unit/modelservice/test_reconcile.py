"""The reconciler's decision: what to apply, prune or disown, and why nothing on bad input."""

import copy
from typing import Any

import yaml

from fma.modelservice.reconcile import (
    ReconcilePlan,
    base_config_ref,
    child_key,
    modelservice_owners,
    plan_reconcile,
)
from fma.modelservice.render import RenderOptions
from tests.unit.modelservice.helpers import REPO_SAMPLES, sample_files

UID = "uid-1"
OPTIONS = RenderOptions(epp_cluster_role="pod-read")
Obj = dict[str, Any]


def _sample(sample: str, namespace: str = "ns") -> tuple[Obj, Obj]:
    msvc_file, base_file = sample_files(REPO_SAMPLES, sample)
    body = yaml.safe_load(msvc_file.read_text())
    body["metadata"].update(namespace=namespace, uid=UID, generation=1)
    base = yaml.safe_load(base_file.read_text())
    base["metadata"]["namespace"] = namespace
    return body, base


def _live(obj: Obj, **changes: Any) -> Obj:
    """``obj`` as the API server would return it once created."""
    out = copy.deepcopy(obj)
    out["metadata"].update(resourceVersion="42", uid=f"uid-{obj['metadata']['name']}")
    for path, value in changes.items():
        target = out
        *parents, last = path.split("__")
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = value
    return out


def _plan(body: Obj, base: Obj | None, owned: list[Obj] | None = None) -> ReconcilePlan:
    return plan_reconcile(body, base, owned or [], OPTIONS)


def _deployment(plan: ReconcilePlan) -> Obj:
    (found,) = [o for o in plan.apply if o["kind"] == "Deployment"]
    return found


def _names(objects: Any) -> list[str]:
    return [str(child_key(o)) for o in objects]


def test_a_valid_modelservice_applies_its_rendering_owned_by_it() -> None:
    plan = _plan(*_sample("opt125m-plain"))
    assert plan.problem is None
    assert _names(plan.apply) == [  # the account first: the Deployment's Pods run as it
        "ServiceAccount/facebook-opt-125m-sa",
        "Deployment.apps/facebook-opt-125m-decode",
        "Service/facebook-opt-125m-service-decode",
    ]
    for obj in plan.apply:
        assert obj["metadata"]["namespace"] == "ns"
        assert modelservice_owners(obj) == ["facebook-opt-125m"]
        assert obj["metadata"]["ownerReferences"][0]["uid"] == UID
    assert plan.outcome().ok and plan.outcome().reason == "Applied"
    failed = plan.outcome(["Deployment.apps/x: forbidden"])
    assert (failed.ok, failed.reason, failed.message) == (
        False,
        "ApplyFailed",
        "Deployment.apps/x: forbidden",
    )


def test_bad_input_applies_nothing_and_says_why() -> None:
    body, base = _sample("opt125m-plain")
    missing = _plan(body, None)
    assert missing.apply == () and missing.problem is not None
    assert missing.problem.reason == "BaseConfigNotFound"
    assert missing.problem.message == (
        "spec.baseConfigMapRef: ConfigMap ns/opt125m-plain-base not found"
    )

    templated = copy.deepcopy(body)
    templated["spec"]["decode"]["containers"][0]["args"] = ["{{ .HFModelNme }}"]
    running = [_live(o) for o in _plan(body, base).apply]  # what the valid spec made
    bad = _plan(templated, base, running)
    assert bad.problem is not None and bad.problem.reason == "InvalidSpec"
    assert bad.problem.message.startswith("spec.decode.containers[0].args[0]:")
    assert (bad.apply, bad.delete, bad.disown) == ((), (), ())  # what runs keeps running

    invalid = copy.deepcopy(body)
    del invalid["spec"]["modelArtifacts"]
    problem = _plan(invalid, base).problem
    assert problem is not None and problem.reason == "InvalidSpec"
    assert problem.message.startswith("spec.modelArtifacts")

    broken = copy.deepcopy(base)
    broken["data"]["decodeDeployment"] = "spec: [unclosed"
    problem = _plan(body, broken).problem
    assert problem is not None and problem.reason == "InvalidBaseConfig"
    assert "data.decodeDeployment" in problem.message

    pd_body, pd_base = _sample("opt125m-pd")
    no_role = plan_reconcile(pd_body, pd_base, [], RenderOptions())
    assert no_role.problem is not None and no_role.problem.reason == "InvalidOption"
    assert no_role.problem.message.startswith("--epp-cluster-role:")


def test_children_no_longer_rendered_are_deleted_or_disowned() -> None:
    body, base = _sample("opt125m-plain")
    rendered = _deployment(_plan(body, base))
    ours = {"apiVersion": "llm-d.ai/v1alpha1", "kind": "ModelService", "name": "facebook-opt-125m"}
    route = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": "old-route", "ownerReferences": [{**ours, "uid": UID}]},
    }
    shared = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "shared",
            "ownerReferences": [
                {**ours, "uid": UID},
                {**ours, "name": "other", "uid": "uid-2"},
            ],
        },
    }
    foreign = copy.deepcopy(route)
    foreign["metadata"]["ownerReferences"][0]["uid"] = "uid-of-a-former-namesake"
    # The rendered Deployment, as the API server serves it under another version.
    kept = _live(rendered, apiVersion="apps/v1beta2")
    plan = _plan(body, base, [route, shared, foreign, kept])
    assert _names(plan.delete) == ["HTTPRoute.gateway.networking.k8s.io/old-route"]
    assert _names(plan.disown) == ["ConfigMap/shared"]


def test_decoupled_deployments_keep_live_replicas_guarded_by_their_version() -> None:
    body, base = _sample("opt125m-plain")
    deployment = _deployment(_plan(body, base))
    live = _live(deployment, spec__replicas=5)
    coupled = _deployment(_plan(body, base, [live]))
    assert coupled["spec"]["replicas"] == 1  # the ModelService's
    assert "resourceVersion" not in coupled["metadata"]
    body["spec"]["decoupleScaling"] = True
    decoupled = _deployment(_plan(body, base, [live]))
    assert decoupled["spec"]["replicas"] == 5  # the autoscaler's
    assert decoupled["metadata"]["resourceVersion"] == "42"
    first = _deployment(_plan(body, base, []))
    assert first["spec"]["replicas"] == 1  # at creation, the ModelService's
    assert "resourceVersion" not in first["metadata"]


def test_the_base_config_reference() -> None:
    body, _ = _sample("opt125m-plain")
    assert base_config_ref(body) == ("ns", "opt125m-plain-base")
    body["spec"]["baseConfigMapRef"] = {"name": "b", "namespace": "platform"}
    assert base_config_ref(body) == ("platform", "b")
    body["spec"]["baseConfigMapRef"] = {"name": " "}
    assert base_config_ref(body) is None
    del body["spec"]["baseConfigMapRef"]
    plan = _plan(body, None)
    assert plan.problem is None  # no BaseConfig: an empty base
    assert _names(plan.apply) == [
        "ServiceAccount/facebook-opt-125m-sa",
        "Deployment.apps/facebook-opt-125m-decode",
    ]
