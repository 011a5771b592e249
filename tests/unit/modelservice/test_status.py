"""The ModelService status: references, per-role counts, mirrored and own conditions."""

from typing import Any

from fma.modelservice.names import ChildNames
from fma.modelservice.render import Rendering
from fma.modelservice.status import Outcome, modelservice_status
from tests.unit.modelservice.helpers import REPO_SAMPLES, load_sample, run

NOW = "2026-01-02T03:04:05Z"
LATER = "2026-01-02T03:09:00Z"
APPLIED = Outcome(True, "Applied", "10 children applied")
NIXL = "facebook-opt-125m-nixl"


def _status(
    rendering: Rendering | None,
    deployments: dict[str, Any] | None = None,
    *,
    name: str = NIXL,
    previous: dict[str, Any] | None = None,
    outcome: Outcome = APPLIED,
    now: str = NOW,
) -> dict[str, Any]:
    return modelservice_status(
        names=ChildNames(name),
        previous=previous,
        generation=3,
        rendering=rendering,
        deployments=deployments or {},
        outcome=outcome,
        now=now,
    )


def _deployment(
    replicas: int, ready: int, *, available: int | None = None, conditions: Any = ()
) -> dict[str, Any]:
    available = ready if available is None else available
    return {
        "metadata": {"generation": 2},
        "spec": {"replicas": replicas},
        "status": {
            "observedGeneration": 2,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": ready,
            "availableReplicas": available,
            "conditions": list(conditions),
        },
    }


def _condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    (found,) = [c for c in status["conditions"] if c["type"] == kind]
    return dict(found)


def test_references_name_only_rendered_children_and_both_pd_accounts() -> None:
    status = _status(run(*load_sample(REPO_SAMPLES, "opt125m-pd")))
    assert status["prefillDeploymentRef"] == f"{NIXL}-prefill"
    assert status["decodeDeploymentRef"] == f"{NIXL}-decode"
    assert status["eppDeploymentRef"] == f"{NIXL}-epp"
    # Upstream overwrites the prefill reference with the EPP's account and never sets decode's.
    assert status["prefillServiceAccountRef"] == status["decodeServiceAccountRef"] == f"{NIXL}-sa"
    assert status["eppRoleBinding"] == f"{NIXL}-epp-rolebinding"
    assert status["inferencePoolRef"] == f"{NIXL}-inference-pool"
    plain = _status(run(*load_sample(REPO_SAMPLES, "opt125m-plain")), name="facebook-opt-125m")
    # Upstream always writes the routing references, rendered or not.
    for absent in ("httpRouteRef", "inferencePoolRef", "inferenceModelRef", "eppRoleBinding"):
        assert plain[absent] is None  # present, so that a merge patch removes a stale one
    assert plain["prefillDeploymentRef"] is None
    assert (plain["prefillReady"], plain["prefillAvailable"]) == ("", 0)


def test_counts_per_role_from_the_live_deployments() -> None:
    rendering = run(*load_sample(REPO_SAMPLES, "opt125m-xpyd"))
    live = {
        f"{NIXL}-prefill": _deployment(1, 1),
        f"{NIXL}-decode": _deployment(2, 1, available=0),
    }
    status = _status(rendering, live)
    assert (status["prefillReady"], status["prefillAvailable"]) == ("1/1", 1)
    assert (status["decodeReady"], status["decodeAvailable"]) == ("1/2", 0)
    # Not seen yet: nothing ready of what the rendering asks.
    assert (status["eppReady"], status["eppAvailable"]) == ("0/1", 0)
    ready = _condition(status, "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ReplicasNotReady")
    assert ready["message"] == "prefill 1/1, decode 1/2, epp 0/1"


def test_ready_once_every_role_is_settled() -> None:
    rendering = run(*load_sample(REPO_SAMPLES, "opt125m-pd"))
    live = {f"{NIXL}-{role}": _deployment(1, 1) for role in ("prefill", "decode", "epp")}
    assert _condition(_status(rendering, live), "Ready")["status"] == "True"
    stale = _deployment(1, 1)
    stale["metadata"]["generation"] = 3  # a new spec the Deployment controller has not seen
    live[f"{NIXL}-decode"] = stale
    assert _condition(_status(rendering, live), "Ready")["status"] == "False"


def test_deployment_conditions_are_mirrored_under_the_roles_prefix() -> None:
    rendering = run(*load_sample(REPO_SAMPLES, "opt125m-plain"))
    available = {
        "type": "Available",
        "status": "True",
        "reason": "MinimumReplicasAvailable",
        "message": "Deployment has minimum availability.",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
        "lastUpdateTime": "2026-01-01T00:00:09Z",
    }
    live = {"facebook-opt-125m-decode": _deployment(1, 1, conditions=[available])}
    status = _status(rendering, live, name="facebook-opt-125m")
    assert [c["type"] for c in status["conditions"]] == ["Reconciled", "Ready", "DecodeAvailable"]
    mirrored = _condition(status, "DecodeAvailable")
    assert mirrored == {
        "type": "DecodeAvailable",
        "status": "True",
        "reason": "MinimumReplicasAvailable",
        "message": "Deployment has minimum availability.",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
        "observedGeneration": 3,
    }


def test_fma_mode_reports_the_requesters_as_decode() -> None:
    rendering = run(*load_sample(REPO_SAMPLES, "opt125m-fma"))
    name = "facebook-opt-125m-fma"
    status = _status(rendering, {f"{name}-decode-requester": _deployment(2, 2)}, name=name)
    assert status["decodeDeploymentRef"] == f"{name}-decode-requester"
    assert (status["decodeReady"], status["decodeAvailable"]) == ("2/2", 2)
    assert status["decodeServiceAccountRef"] == f"{name}-sa"


def test_a_condition_keeps_its_transition_time_until_its_status_changes() -> None:
    rendering = run(*load_sample(REPO_SAMPLES, "opt125m-plain"))
    first = _status(rendering, name="facebook-opt-125m")
    assert _condition(first, "Reconciled")["lastTransitionTime"] == NOW
    again = _status(rendering, name="facebook-opt-125m", previous=first, now=LATER)
    assert _condition(again, "Reconciled")["lastTransitionTime"] == NOW
    failed = Outcome(False, "ApplyFailed", "Deployment.apps/x: denied")
    flipped = _status(
        rendering, name="facebook-opt-125m", previous=again, outcome=failed, now=LATER
    )
    reconciled = _condition(flipped, "Reconciled")
    assert (reconciled["status"], reconciled["reason"]) == ("False", "ApplyFailed")
    assert reconciled["lastTransitionTime"] == LATER
    assert reconciled["message"] == "Deployment.apps/x: denied"


def test_without_a_rendering_only_the_reconciled_condition_changes() -> None:
    rendering = run(*load_sample(REPO_SAMPLES, "opt125m-plain"))
    live = {"facebook-opt-125m-decode": _deployment(1, 1)}
    before = _status(rendering, live, name="facebook-opt-125m")
    bad = Outcome(False, "InvalidSpec", "spec.decode.containers[0].args[0]: unknown key")
    after = _status(None, name="facebook-opt-125m", previous=before, outcome=bad, now=LATER)
    assert after["decodeReady"] == "1/1"  # what serves keeps serving
    assert after["decodeDeploymentRef"] == "facebook-opt-125m-decode"
    assert _condition(after, "Reconciled")["reason"] == "InvalidSpec"
    assert _condition(after, "Ready") == _condition(before, "Ready")
