"""The launcher's domain errors; :mod:`fma.launcher.app` maps each to one HTTP status.

Keeping the taxonomy small and explicit is what fixes upstream's error codes: only a
duplicate id is a conflict (409), an unknown id is 404, and anything wrong with the input,
including a GPU UUID this node does not have, is 422.
"""


class LauncherError(Exception):
    """Base of every error the launcher reports to its clients."""


class UnknownInstance(LauncherError):
    """No instance has this id (404)."""

    def __init__(self, instance_id: str) -> None:
        super().__init__(f"instance {instance_id!r} not found")
        self.instance_id = instance_id


class DuplicateInstance(LauncherError):
    """An instance with this id exists already, running or stopped (409)."""

    def __init__(self, instance_id: str) -> None:
        super().__init__(f"instance {instance_id!r} already exists")
        self.instance_id = instance_id


class InvalidRequest(LauncherError):
    """The request is well-formed JSON but cannot be carried out as asked (422)."""


class UnknownGpu(InvalidRequest):
    """A GPU UUID that this node's translation map does not know (422)."""


class InvalidOptions(InvalidRequest):
    """The engine's own argument parser rejected the options (422)."""


class CapacityExhausted(LauncherError):
    """A bounded resource (instances, watchers) is at its limit; retry later (503)."""


class RevisionGone(LauncherError):
    """A watch position this launcher cannot resume from (410): older than its buffer, or
    newer than its counter (a revision from before a launcher restart)."""

    def __init__(self, since: int, oldest: int, current: int) -> None:
        super().__init__(
            f"revision {since} cannot be resumed: this launcher can resume from {oldest} "
            f"to {current}; list again and watch from the list's revision"
        )


class SpawnFailed(LauncherError):
    """The operating system refused to start the engine process (500)."""
