"""What the operator knows of each engine beyond what its launcher or its Pod reports.

A launcher reports an instance as ``running`` or ``stopped``; a direct provider's Pod as a
container that runs and is Ready or not. Neither says whether vLLM is loading, serving, asleep
or moving weights: that is the operator's own knowledge, kept here per (provider, instance)
as an :class:`EngineNote`:

- the executor writes the in-flight phases when it starts a wake (``WAKING``), a sleep
  (``FALLING_ASLEEP``) or a stop (``STOPPING``), and the end when the engine's answer arrives;
- the engine prober writes ``STARTING``, ``AWAKE`` or ``SLEEPING`` when it has asked an engine
  it has no note of (one just created, or found after a restart) and when a starting engine
  begins to answer.

Each change that a decision may wait for calls ``on_change(provider)``, which re-queues the
provider's node: that is how "done when started, finished when observed" works in this world.
Last use (the LRU order) and refused sleeps are kept here too; the executor writes them onto
the provider Pod with its next update of that Pod, and a restarted operator reads them back
from there (:data:`~fma.api.constants.ANN_INSTANCES_LAST_USED`,
:data:`~fma.api.constants.ANN_SLEEP_REFUSED`).
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from fma.core.model import InstanceState


@dataclass(frozen=True, slots=True)
class EngineNote:
    """The operator's knowledge of one engine: its phase since ``since_s``. For a direct
    provider ``run`` names the container run it is about (its ``startedAt``): a restarted
    container has lost its weights, so a note of an earlier run no longer applies."""

    phase: InstanceState
    since_s: float
    run: str | None = None


def _no_change(provider: str) -> None:
    return None


class EngineBook:
    """Per provider Pod name and instance ID: the note, last use and refused sleeps."""

    def __init__(self, on_change: Callable[[str], None] = _no_change) -> None:
        self.on_change = on_change
        self._notes: dict[str, dict[str, EngineNote]] = {}
        self._last_used: dict[str, dict[str, float]] = {}
        self._refused: dict[str, set[str]] = {}

    # --- phases --------------------------------------------------------------------------------

    def note(self, provider: str, instance_id: str) -> EngineNote | None:
        return self._notes.get(provider, {}).get(instance_id)

    def notes(self, provider: str) -> Mapping[str, EngineNote]:
        return self._notes.get(provider, {})

    def set_phase(
        self,
        provider: str,
        instance_id: str,
        phase: InstanceState,
        now_s: float,
        *,
        run: str | None = None,
    ) -> bool:
        """Record a phase; returns whether it changed (and then calls ``on_change``). A wake or
        a sleep that ends refreshes the instance's last use."""
        old = self.note(provider, instance_id)
        if old is not None and old.phase is phase and old.run == run:
            return False
        self._notes.setdefault(provider, {})[instance_id] = EngineNote(phase, now_s, run)
        if old is not None and old.phase.in_flight and not phase.in_flight:
            self.touch(provider, instance_id, now_s)
        self.on_change(provider)
        return True

    def forget(self, provider: str, instance_id: str | None = None) -> None:
        """Drop what is known of one instance, or of every instance of ``provider`` (its Pod is
        gone, or its launcher restarted and lost them all)."""
        if instance_id is None:
            self._notes.pop(provider, None)
            self._last_used.pop(provider, None)
            self._refused.pop(provider, None)
            return
        for book in (self._notes, self._last_used):
            book.get(provider, {}).pop(instance_id, None)
        self._refused.get(provider, set()).discard(instance_id)

    # --- last use and refused sleeps -----------------------------------------------------------

    def touch(self, provider: str, instance_id: str, now_s: float) -> None:
        self._last_used.setdefault(provider, {})[instance_id] = now_s

    def last_used(self, provider: str) -> Mapping[str, float]:
        return self._last_used.get(provider, {})

    def refuse_sleep(self, provider: str, instance_id: str) -> None:
        self._refused.setdefault(provider, set()).add(instance_id)
        self.on_change(provider)

    def refused(self, provider: str) -> frozenset[str]:
        return frozenset(self._refused.get(provider, ()))
