"""The Pod status a kubelet would write, computed from the runner's view (pure, no I/O).

:func:`pod_status` gives the ``status`` object for a strategic-merge patch of the status
subresource: ``phase`` (the kubelet's ``getPhase`` rules), the conditions the kubelet owns
(``PodReadyToStartContainers``, ``Initialized``, ``ContainersReady``, ``Ready``; the
scheduler's ``PodScheduled`` and other writers' conditions are left alone, as conditions merge
by type), ``containerStatuses``/``initContainerStatuses``, ``podIP(s)``, ``hostIP(s)`` and
``startTime``. A condition keeps its ``lastTransitionTime`` while its status does not change.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def now() -> str:
    """The current time as Kubernetes writes it (RFC 3339, seconds, UTC)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def waiting(reason: str, message: str = "") -> dict[str, Any]:
    """A ``waiting`` container state."""
    state: dict[str, Any] = {"reason": reason}
    if message:
        state["message"] = message
    return {"waiting": state}


def running(started_at: str) -> dict[str, Any]:
    """A ``running`` container state."""
    return {"running": {"startedAt": started_at}}


def terminated(
    exit_code: int, started_at: str | None, finished_at: str, message: str = "", reason: str = ""
) -> dict[str, Any]:
    """A ``terminated`` state; the reason is ``Completed`` for 0, ``Error`` otherwise."""
    state: dict[str, Any] = {
        "exitCode": exit_code,
        "reason": reason or ("Completed" if exit_code == 0 else "Error"),
        "finishedAt": finished_at,
    }
    if started_at:
        state["startedAt"] = started_at
    if message:
        state["message"] = message
    return {"terminated": state}


@dataclass
class ContainerView:
    """What the runner knows of one container (init or regular)."""

    name: str
    image: str
    state: dict[str, Any] = field(default_factory=lambda: waiting("ContainerCreating"))
    last_state: dict[str, Any] = field(default_factory=dict)
    ready: bool = False
    started: bool = False
    restart_count: int = 0
    container_id: str = ""

    def as_status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "name": self.name,
            "image": self.image,
            "imageID": self.image,
            "ready": self.ready,
            "started": self.started,
            "restartCount": self.restart_count,
            "state": self.state,
            "lastState": self.last_state,
        }
        if self.container_id:
            status["containerID"] = self.container_id
        return status


@dataclass
class PodView:
    """What the runner knows of one Pod."""

    restart_policy: str
    init: list[ContainerView]
    containers: list[ContainerView]
    pod_ip: str = ""
    host_ip: str = ""
    start_time: str = ""
    sandbox_ready: bool = False
    init_failed: bool = False
    terminating: bool = False
    readiness_gates: list[str] = field(default_factory=list)
    phase_override: str = ""
    """A phase decided outside the container states (``Failed`` when admission fails)."""
    reason: str = ""
    message: str = ""


def _init_done(view: PodView) -> bool:
    return all(
        "terminated" in c.state and c.state["terminated"].get("exitCode") == 0 for c in view.init
    )


def phase(view: PodView) -> str:
    """The Pod phase by the kubelet's ``getPhase`` rules (``kubelet_pods.go``)."""
    if view.phase_override:
        return view.phase_override
    if view.init_failed:
        return "Failed"
    if not _init_done(view):
        return "Pending"
    running_ = stopped = succeeded = waiting_ = 0
    for c in view.containers:
        if "running" in c.state:
            running_ += 1
        elif "terminated" in c.state:
            stopped += 1
            succeeded += c.state["terminated"].get("exitCode") == 0
        elif "terminated" in c.last_state:
            stopped += 1  # waiting to restart after a run
        else:
            waiting_ += 1
    if waiting_:
        return "Pending"
    if running_:
        return "Running"
    if stopped:
        if view.terminating:
            return "Succeeded" if stopped == succeeded else "Failed"
        if view.restart_policy == "Always":
            return "Running"
        if stopped == succeeded:
            return "Succeeded"
        if view.restart_policy == "Never":
            return "Failed"
        return "Running"
    return "Pending"


def _condition(
    kind: str, ok: bool, previous: Mapping[str, Any], reason: str = "", message: str = ""
) -> dict[str, Any]:
    status = "True" if ok else "False"
    old = previous.get(kind) or {}
    since = old.get("lastTransitionTime") if old.get("status") == status else None
    condition: dict[str, Any] = {
        "type": kind,
        "status": status,
        "lastTransitionTime": since or now(),
    }
    # A patch merges conditions field by field: null clears what a False one said.
    condition["reason"] = reason if not ok and reason else None
    condition["message"] = message if not ok and message else None
    return condition


def conditions(view: PodView, previous: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The four kubelet-owned conditions, keeping unchanged transition times.

    ``previous`` lists the conditions seen before (a later one of a type wins); readiness
    gates are looked up there too.
    """
    before = {str(c.get("type")): c for c in previous}
    unready = [c.name for c in view.containers if not c.ready]
    uninitialized = [c.name for c in view.init if "terminated" not in c.state]
    containers_ready = not unready and phase(view) == "Running"
    gates_missing = [
        g for g in view.readiness_gates if (before.get(g) or {}).get("status") != "True"
    ]
    unready_message = f"containers with unready status: [{' '.join(unready)}]" if unready else ""
    ready_reason = "ContainersNotReady" if not containers_ready else "ReadinessGatesNotReady"
    ready_message = unready_message or (
        f"corresponding condition of pod readiness gate {gates_missing[0]!r} does not exist."
        if gates_missing
        else ""
    )
    return [
        _condition("PodReadyToStartContainers", view.sandbox_ready, before),
        _condition(
            "Initialized",
            not uninitialized and not view.init_failed,
            before,
            "ContainersNotInitialized",
            f"containers with incomplete status: [{' '.join(uninitialized)}]",
        ),
        _condition(
            "ContainersReady", containers_ready, before, "ContainersNotReady", unready_message
        ),
        _condition(
            "Ready", containers_ready and not gates_missing, before, ready_reason, ready_message
        ),
    ]


def pod_status(view: PodView, previous: Mapping[str, Any]) -> dict[str, Any]:
    """The ``status`` to patch; ``previous`` is the Pod's current status (for times)."""
    status: dict[str, Any] = {
        "phase": phase(view),
        "conditions": conditions(view, list(previous.get("conditions") or [])),
        "containerStatuses": [c.as_status() for c in view.containers],
    }
    if view.init:
        status["initContainerStatuses"] = [c.as_status() for c in view.init]
    if view.pod_ip:
        status["podIP"] = view.pod_ip
        status["podIPs"] = [{"ip": view.pod_ip}]
    if view.host_ip:
        status["hostIP"] = view.host_ip
        status["hostIPs"] = [{"ip": view.host_ip}]
    if view.start_time:
        status["startTime"] = view.start_time
    if view.reason:
        status["reason"] = view.reason
    if view.message:
        status["message"] = view.message
    return status
