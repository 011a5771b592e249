"""How often an asking task asks again: eagerly at first, then with a doubling back-off.

A requester's SPI and a new engine are asked until they answer. Right after the process
started (a requester's container runs, a launcher accepted an instance) the answer is
usually a fraction of a second away, and every moment between it being there and the
operator asking is latency the controller adds to the actuation. So each asker first asks
*eagerly* — every ``eager_interval_s`` — for ``eager_s``, and only then backs off, doubling
from ``interval_s_min`` to ``interval_s_max``, as for a process that is slow or broken.

Eager asking is shared: all eager askers together ask at most ``eager_per_s`` times a second,
so a burst of new requesters or engines spreads its questions instead of flooding the
operator's event loop (with N eager askers each waits at least N / ``eager_per_s``).
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Final, Self

ATTEMPTS_QUIET: Final = 3
"""Patient failures (after the eager phase) that are only logged; the next one is a warning
for the user too."""


@dataclass(frozen=True, slots=True)
class PaceSettings:
    eager_s: float = 5.0
    eager_interval_s: float = 0.02
    eager_per_s: float = 100.0
    interval_s_min: float = 0.25
    interval_s_max: float = 2.0


class Pace:
    """The shared pace of one kind of asking (see the module docstring)."""

    def __init__(
        self, settings: PaceSettings, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._eager = 0

    @property
    def eager_askers(self) -> int:
        return self._eager

    def asker(self) -> "Asker":
        """One task's pace, eager from now; use it as a context manager."""
        return Asker(self)


class Asker:
    """One asking task: :meth:`wait_s` says how long to wait before the next question."""

    def __init__(self, pace: Pace) -> None:
        self._pace = pace
        self._started_s = pace._clock()
        self._eager = False
        self._delay_s = pace.settings.interval_s_min
        self.attempts_patient = 0
        """Questions asked after the eager phase (the slow or broken cases)."""

    def __enter__(self) -> Self:
        self._set_eager(self._pace.settings.eager_s > 0)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._set_eager(False)

    @property
    def eager(self) -> bool:
        """Whether this asker is still in its eager phase."""
        if self._eager and self._pace._clock() - self._started_s >= self._pace.settings.eager_s:
            self._set_eager(False)
        return self._eager

    def asked(self) -> None:
        """A question went unanswered; counts the patient ones."""
        if not self.eager:
            self.attempts_patient += 1

    def wait_s(self) -> float:
        """How long to wait before asking again."""
        settings = self._pace.settings
        if self.eager:
            return max(settings.eager_interval_s, self._pace._eager / settings.eager_per_s)
        wait_s = self._delay_s
        self._delay_s = min(settings.interval_s_max, self._delay_s * 2)
        return wait_s

    def _set_eager(self, eager: bool) -> None:
        if eager != self._eager:
            self._pace._eager += 1 if eager else -1
            self._eager = eager
