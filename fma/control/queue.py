"""A per-key work queue with client-go's semantics, independent of the world's clock.

- **Dedupe.** A key is queued at most once; adding a queued key does nothing.
- **One at a time.** A key is processed by at most one worker at once; a key added while it is
  processed is marked *dirty* and runs once more afterwards.
- **Workers.** ``workers`` keys are processed at once (upstream runs 2), taken in FIFO order.
- **Delayed adds.** :meth:`WorkQueue.add_after` adds a key later; the earliest pending time
  wins, so a key is never pending twice.
- **Back-off.** A failed processing re-adds the key after ``backoff_base_s x 2^(n-1)`` for its
  n-th failure in a row, capped at ``backoff_max_s`` (client-go's default controller limiter:
  5 ms doubling, 20 s upstream); a success resets the count; an invalid request backs off at
  the cap at once.
- **Stop.** :meth:`WorkQueue.stop` forgets everything (the memory of a process that died);
  callbacks scheduled before it do nothing.

Processing is the world's: ``process(key, done)`` starts it and calls ``done(follow_up)`` when
it has finished, at once or later (after simulated busy time, or when an asyncio task ends).
The queue is bounded: one queued entry, one pending delayed add and one dirty mark per key.
"""

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from fma.control.ports import Scheduler
from fma.core.outcomes import FollowUp

Done = Callable[[FollowUp], None]
Process = Callable[[str, Done], None]


@dataclass(slots=True)
class QueueStats:
    """Counters for metrics: unique adds, retries after failures, processings started."""

    adds: int = 0
    retries: int = 0
    processed: int = 0
    waits_s: list[float] = field(default_factory=list)
    """Queue durations (add to start) since the last :meth:`WorkQueue.take_waits`."""


class WorkQueue:
    """Keys in, ``process`` calls out, with the semantics of the module docstring."""

    def __init__(
        self,
        scheduler: Scheduler,
        process: Process,
        *,
        workers: int = 2,
        backoff_base_s: float = 0.005,
        backoff_max_s: float = 20.0,
        record_waits: bool = False,
    ) -> None:
        if workers < 1:
            raise ValueError("a work queue needs at least one worker")
        self._scheduler = scheduler
        self._process = process
        self._workers = workers
        self._backoff_base_s = backoff_base_s
        self._backoff_max_s = backoff_max_s
        self._record_waits = record_waits
        self.stats = QueueStats()
        self._epoch = 0
        self._queue: deque[str] = deque()
        self._queued: dict[str, float] = {}
        """Queued key -> when it was added (for queue-duration metrics)."""
        self._busy: set[str] = set()
        self._dirty: set[str] = set()
        self._due: dict[str, float] = {}
        self._failures: dict[str, int] = {}
        self._stopped = False

    # --- adding --------------------------------------------------------------------------------

    def add(self, key: str) -> None:
        """Queue ``key`` now (or mark it dirty while it is processed)."""
        if self._stopped:
            return
        if key in self._busy:
            self._dirty.add(key)
        elif key not in self._queued:
            self._queued[key] = self._scheduler.now_s()
            self._queue.append(key)
            self.stats.adds += 1
            self._dispatch()

    def add_after(self, key: str, delay_s: float) -> None:
        """Queue ``key`` after ``delay_s``; an earlier pending add covers it."""
        if self._stopped:
            return
        due_s = self._scheduler.now_s() + max(0.0, delay_s)
        if self._due.get(key, float("inf")) <= due_s:
            return
        self._due[key] = due_s
        epoch = self._epoch

        def fire() -> None:
            if epoch == self._epoch and self._due.get(key) == due_s:
                del self._due[key]
                self.add(key)

        self._scheduler.call_later(max(0.0, delay_s), fire)

    def stop(self) -> None:
        """Forget every key, retry count and pending add; add nothing from now on."""
        self._epoch += 1
        self._stopped = True
        self._queue.clear()
        self._queued.clear()
        self._busy.clear()
        self._dirty.clear()
        self._due.clear()
        self._failures.clear()

    # --- looking -------------------------------------------------------------------------------

    @property
    def idle(self) -> bool:
        """Nothing queued, processing, pending or dirty."""
        return not (self._queue or self._busy or self._due or self._dirty)

    @property
    def depth(self) -> int:
        """Keys waiting for a worker."""
        return len(self._queue)

    @property
    def busy(self) -> int:
        """Keys being processed."""
        return len(self._busy)

    def failures(self, key: str) -> int:
        """Consecutive failed processings of ``key``."""
        return self._failures.get(key, 0)

    def take_waits(self) -> list[float]:
        """The queue durations recorded since the last call (with ``record_waits``)."""
        waits, self.stats.waits_s = self.stats.waits_s, []
        return waits

    # --- processing ----------------------------------------------------------------------------

    def backoff_s(self, failures: int) -> float:
        """client-go's exponential failure limiter: base x 2^(n-1), capped."""
        exponent = min(max(failures - 1, 0), 62)  # bounded: 2^62 x 5 ms is far past any cap
        return float(min(self._backoff_base_s * 2.0**exponent, self._backoff_max_s))

    def _dispatch(self) -> None:
        while len(self._busy) < self._workers and self._queue:
            key = self._queue.popleft()
            added_s = self._queued.pop(key)
            if self._record_waits:
                self.stats.waits_s.append(self._scheduler.now_s() - added_s)
            self._busy.add(key)
            self.stats.processed += 1
            self._process(key, partial(self._done, key, self._epoch))

    def _done(self, key: str, epoch: int, follow: FollowUp) -> None:
        if epoch != self._epoch:
            return  # processing begun before a stop: that memory is gone
        self._busy.discard(key)
        if follow.failed:
            failures = self._failures.get(key, 0) + 1
            self._failures[key] = failures
            self.stats.retries += 1
            delay_s = self._backoff_max_s if follow.at_slowest else self.backoff_s(failures)
            self.add_after(key, delay_s)
        else:
            self._failures.pop(key, None)
            if follow.requeue_after_s is not None:
                self.add_after(key, follow.requeue_after_s)
        if key in self._dirty:
            self._dirty.discard(key)
            self.add(key)
        self._dispatch()
