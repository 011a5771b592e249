"""Why things are done, in the words users read, and the Events that tell them.

Deletions carry one of the reasons below (the simulator's trace and the operator's log show
them as they are). :func:`narrate` adds, after each decision a user would want to see, the
Kubernetes Event that says it: bound (hot, warm, cold_launcher or cold), evicted or reclaimed,
a stuck launcher, an engine that refused to sleep, a requester deleted and why, and
user-facing problems. An Event follows its action, so a failed action (which stops the plan)
is never announced.
"""

from collections.abc import Iterable

from fma.core.actions import (
    Action,
    Bind,
    ConfigKind,
    CreateDirectProvider,
    CreateLauncher,
    DeleteInstance,
    DeleteProvider,
    DeleteRequester,
    EmitEvent,
    SetConfigStatus,
    SetRequesterStatus,
    SubjectKind,
)

# --- Instances and providers -----------------------------------------------------------------
EVICTED = "evicted to fit the sleeping-memory budget"
RECLAIMED = "reclaimed for a new instance"
OBSOLETE = "obsolete config"
STOPPED = "stopped"
NOTHING_TO_KEEP = "unbound, nothing to keep"
NOT_KEPT = "unbound, not kept"
NO_ROOM_TO_SLEEP = "no room to sleep"
SLEEP_REFUSED = "its engine refused to sleep"
IN_TROUBLE = "in trouble: restarted and not ready"
STALE_TEMPLATE = "stale launcher template"
STUCK = "stuck: not ready in time"
SURPLUS = "surplus launcher"

# --- Requesters ------------------------------------------------------------------------------
PROVIDER_DELETING = "its provider is being deleted"
INSTANCE_STOPPED = "its instance stopped"
INSTANCE_GONE = "its instance is gone"
PROVIDER_NOT_READY = "its provider stayed not ready"
NODE_CORDONED = "node is cordoned"

REQUESTER_DELETIONS = frozenset(
    {PROVIDER_DELETING, INSTANCE_STOPPED, INSTANCE_GONE, PROVIDER_NOT_READY, NODE_CORDONED}
)
"""Every reason for which the controller deletes a requester (an oracle checks each cause)."""

_PROVIDER_EVENTS: dict[str, tuple[str, bool]] = {
    EVICTED: ("Evicted", False),
    RECLAIMED: ("Evicted", False),
    STUCK: ("LauncherStuck", True),
    SLEEP_REFUSED: ("SleepRefused", True),
    IN_TROUBLE: ("ProviderInTrouble", True),
}
"""Deletion reason -> (Event reason, warning) for the deletions worth an Event."""


def event_for(action: Action) -> EmitEvent | None:
    """The Event that tells a user about ``action``, or None when it is routine."""
    match action:
        case Bind():
            return EmitEvent(
                SubjectKind.REQUESTER,
                action.requester_uid,
                "Bound",
                f"bound to {action.provider} ({action.path.value})",
            )
        case CreateLauncher(requester_uid=str() as uid):
            return EmitEvent(
                SubjectKind.REQUESTER,
                uid,
                "Bound",
                f"bound to a new launcher of LauncherConfig {action.launcher_config}"
                " (cold_launcher)",
            )
        case CreateDirectProvider():
            return EmitEvent(
                SubjectKind.REQUESTER,
                action.requester_uid,
                "Bound",
                "bound to a new provider (cold)",
            )
        case DeleteInstance() | DeleteProvider() if action.reason in _PROVIDER_EVENTS:
            reason, warning = _PROVIDER_EVENTS[action.reason]
            what = f"instance {action.instance_id}" if isinstance(action, DeleteInstance) else "Pod"
            return EmitEvent(
                SubjectKind.PROVIDER,
                action.provider,
                reason,
                f"{what} deleted: {action.reason}",
                warning,
            )
        case DeleteRequester():
            return EmitEvent(
                SubjectKind.REQUESTER,
                action.requester_uid,
                "RequesterDeleted",
                f"deleted: {action.reason}",
                action.reason != NODE_CORDONED,
            )
        case SetRequesterStatus(errors=errors) if errors:
            return EmitEvent(
                SubjectKind.REQUESTER,
                action.requester_uid,
                "ServerProblem",
                "; ".join(errors),
                True,
            )
        case SetConfigStatus(errors=errors) if errors:
            return EmitEvent(
                SubjectKind.CONFIG,
                config_key(action.kind, action.name),
                "ConfigurationProblem",
                "; ".join(errors),
                True,
            )
        case _:
            return None


def config_key(kind: ConfigKind, name: str) -> str:
    """The Event subject key of a configuration object: ``<kind>/<name>``."""
    return f"{kind.value}/{name}"


def narrate(actions: Iterable[Action]) -> tuple[Action, ...]:
    """``actions`` with each one's Event (:func:`event_for`) right after it."""
    told: list[Action] = []
    for action in actions:
        told.append(action)
        event = event_for(action)
        if event is not None:
            told.append(event)
    return tuple(told)
