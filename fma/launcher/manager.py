"""The instance table and its change history: the launcher's state machine, without I/O.

Why it exists apart from the processes: every rule about ids, revisions and watch positions
lives here, where a test can drive it with plain calls, and the same rules hold whatever
starts the processes (a fork, a fake, a simulator).

States of one instance::

    (absent) --add--> running --mark_stopped--> stopped --remove--> (absent)
                         \\------------------remove------------------/

Each transition increments the launcher's revision by exactly one and appends one event
(CREATED, STOPPED, DELETED) to a bounded buffer, so the events with revisions
``since+1 .. revision`` are all in the buffer exactly when ``since >= revision - len(buffer)``.
"""

from collections import deque
from collections.abc import Callable

from fma.launcher.api import (
    WATCH_BUFFER_EVENTS_MAX,
    EventType,
    InstanceState,
    InstanceStatus,
    VllmConfig,
    WatchEvent,
)
from fma.launcher.errors import CapacityExhausted, DuplicateInstance, RevisionGone, UnknownInstance


class InstanceManager:
    """Holds the instances, the revision counter and the last events; pure bookkeeping.

    ``on_change`` is called after every transition (the service wakes its watchers with it).
    """

    def __init__(
        self,
        *,
        instance_count_max: int,
        event_buffer_max: int = WATCH_BUFFER_EVENTS_MAX,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        if instance_count_max < 1 or event_buffer_max < 1:
            raise ValueError("instance_count_max and event_buffer_max must be positive")
        self._instance_count_max = instance_count_max
        self._instances: dict[str, InstanceState] = {}
        self._events: deque[WatchEvent] = deque(maxlen=event_buffer_max)
        self._revision = 0
        self._on_change = on_change

    @property
    def revision(self) -> int:
        """The revision of the latest transition (0 before the first)."""
        return self._revision

    def check_can_add(self, instance_id: str) -> None:
        """Raise ``DuplicateInstance`` or ``CapacityExhausted`` if ``add`` would fail.

        Stopped instances count against the limit until deleted: they still hold a log.
        """
        if instance_id in self._instances:
            raise DuplicateInstance(instance_id)
        if len(self._instances) >= self._instance_count_max:
            raise CapacityExhausted(
                f"instance limit {self._instance_count_max} reached; delete one first"
            )

    def add(
        self,
        instance_id: str,
        config: VllmConfig,
        *,
        env_vars: dict[str, str] | None,
        pid: int,
    ) -> InstanceState:
        """Record a started instance as running (CREATED)."""
        self.check_can_add(instance_id)
        state = InstanceState(
            instance_id=instance_id,
            status=InstanceStatus.RUNNING,
            revision=self._revision + 1,
            options=list(config.options),
            gpu_uuids=config.gpu_uuids,
            env_vars=env_vars,
            annotations=config.annotations,
            pid=pid,
        )
        self._instances[instance_id] = state
        self._record(EventType.CREATED, state)
        return state

    def mark_stopped(self, instance_id: str, exit_code: int) -> InstanceState | None:
        """Record that the instance's process exited (STOPPED).

        Returns the new state, or None when there is nothing to record: the instance is gone
        already or was recorded stopped before (an exit is reported once).
        """
        state = self._instances.get(instance_id)
        if state is None or state.status is InstanceStatus.STOPPED:
            return None
        stopped = state.model_copy(
            update={
                "status": InstanceStatus.STOPPED,
                "exit_code": exit_code,
                "revision": self._revision + 1,
            }
        )
        self._instances[instance_id] = stopped
        self._record(EventType.STOPPED, stopped)
        return stopped

    def remove(self, instance_id: str) -> InstanceState:
        """Forget the instance (DELETED); returns its last state, stamped with the new revision."""
        state = self.get(instance_id)
        del self._instances[instance_id]
        removed = state.model_copy(update={"revision": self._revision + 1})
        self._record(EventType.DELETED, removed)
        return removed

    def get(self, instance_id: str) -> InstanceState:
        """The instance's state; raises ``UnknownInstance``."""
        try:
            return self._instances[instance_id]
        except KeyError:
            raise UnknownInstance(instance_id) from None

    def instances(self) -> list[InstanceState]:
        """Every instance, the most recently activated (created, or woken: :meth:`activate`)
        last."""
        return list(self._instances.values())

    def activate(self, instance_id: str) -> None:
        """The instance was just woken: list it last. Not a transition (no revision, no
        event); an unknown id is ignored."""
        state = self._instances.pop(instance_id, None)
        if state is not None:
            self._instances[instance_id] = state

    def snapshot(self) -> tuple[int, list[WatchEvent]]:
        """The current revision and a synthetic CREATED event for each existing instance."""
        events = [WatchEvent(type=EventType.CREATED, object=s) for s in self._instances.values()]
        return self._revision, events

    def events_since(self, since: int) -> list[WatchEvent]:
        """Every event after revision ``since``, oldest first; raises ``RevisionGone`` when
        some of them fell out of the buffer, or ``since`` is ahead of this launcher."""
        oldest_resumable = self._revision - len(self._events)
        if since < oldest_resumable or since > self._revision:
            raise RevisionGone(since, oldest_resumable, self._revision)
        missing = self._revision - since
        if missing == 0:
            return []
        return list(self._events)[-missing:]

    def _record(self, event_type: EventType, state: InstanceState) -> None:
        self._revision += 1
        assert state.revision == self._revision, "a state is stamped with its own revision"
        self._events.append(WatchEvent(type=event_type, object=state))
        if self._on_change is not None:
            self._on_change()
