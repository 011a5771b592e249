"""The shared work queue, alone: dedupe, dirty bit, workers, delayed adds, back-off, stop.

The same queue runs on SimPy time in the simulator and on an asyncio loop in the operator; it
is tested here on a hand-driven clock (every timer fires when the test says) and once on a
real asyncio loop.
"""

import asyncio
import heapq
import itertools
from collections.abc import Callable

from fma.adapters.k8s.scheduler import AsyncioScheduler
from fma.control.queue import Done, WorkQueue
from fma.core.outcomes import FollowUp


class ManualClock:
    """A Scheduler whose timers fire only when :meth:`advance` passes them."""

    def __init__(self) -> None:
        self.t = 0.0
        self._timers: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = 0

    def now_s(self) -> float:
        return self.t

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None:
        self._seq += 1
        heapq.heappush(self._timers, (self.t + delay_s, self._seq, fn))

    def advance(self, dt_s: float = 0.0) -> None:
        end = self.t + dt_s
        while self._timers and self._timers[0][0] <= end:
            self.t, _, fn = heapq.heappop(self._timers)
            fn()
        self.t = end


class Worker:
    """Records what is processed; finishes each key when told (or at once)."""

    def __init__(self, *, inline: bool = False, follow: FollowUp | None = None) -> None:
        self.inline = inline
        self.follow = follow or FollowUp()
        self.started: list[str] = []
        self.open: dict[str, Done] = {}

    def __call__(self, key: str, done: Done) -> None:
        self.started.append(key)
        if self.inline:
            done(self.follow)
        else:
            self.open[key] = done

    def finish(self, key: str, follow: FollowUp | None = None) -> None:
        self.open.pop(key)(follow or self.follow)


def queue(worker: Worker, clock: ManualClock, workers: int = 2) -> WorkQueue:
    return WorkQueue(clock, worker, workers=workers, backoff_base_s=0.005, backoff_max_s=20.0)


def test_a_queued_key_is_queued_once() -> None:
    clock, worker = ManualClock(), Worker()
    q = queue(worker, clock, workers=1)
    q.add("busy")
    for _ in range(5):
        q.add("n1")
    assert q.depth == 1 and worker.started == ["busy"]
    worker.finish("busy")
    assert worker.started == ["busy", "n1"]


def test_a_key_added_while_processed_runs_once_more_afterwards() -> None:
    clock, worker = ManualClock(), Worker()
    q = queue(worker, clock)
    q.add("n1")
    q.add("n1")
    q.add("n1")
    assert worker.started == ["n1"]  # never two at once
    worker.finish("n1")
    assert worker.started == ["n1", "n1"]
    worker.finish("n1")
    assert q.idle


def test_workers_bound_how_many_keys_run_at_once() -> None:
    clock, worker = ManualClock(), Worker()
    q = queue(worker, clock, workers=2)
    for key in ("a", "b", "c"):
        q.add(key)
    assert worker.started == ["a", "b"] and q.depth == 1 and q.busy == 2
    worker.finish("b")
    assert worker.started == ["a", "b", "c"]


def test_the_earliest_delayed_add_wins() -> None:
    clock, worker = ManualClock(), Worker(inline=True)
    q = queue(worker, clock)
    q.add_after("n1", 10.0)
    q.add_after("n1", 3.0)
    q.add_after("n1", 7.0)
    clock.advance(2.9)
    assert worker.started == []
    clock.advance(0.2)
    assert worker.started == ["n1"]
    clock.advance(20.0)
    assert worker.started == ["n1"]  # the later adds were covered by the earlier one


def test_failures_back_off_doubling_to_the_cap_and_a_success_resets() -> None:
    clock, worker = ManualClock(), Worker(follow=FollowUp(failed=True))
    q = queue(worker, clock)
    q.add("n1")
    starts = []
    for _ in range(14):
        starts.append(clock.t)
        worker.finish("n1")
        clock.advance(q.backoff_s(q.failures("n1")))
    gaps = [round(b - a, 6) for a, b in itertools.pairwise(starts)]
    assert gaps[:4] == [0.005, 0.01, 0.02, 0.04]
    assert max(gaps) == 20.0 and gaps[-1] == 20.0
    assert q.stats.retries == 14
    worker.finish("n1", FollowUp())
    assert q.failures("n1") == 0


def test_an_invalid_request_backs_off_at_the_cap_at_once() -> None:
    clock, worker = ManualClock(), Worker()
    q = queue(worker, clock)
    q.add("n1")
    worker.finish("n1", FollowUp(failed=True, at_slowest=True))
    clock.advance(19.9)
    assert worker.started == ["n1"]
    clock.advance(0.2)
    assert worker.started == ["n1", "n1"]


def test_a_plans_requeue_after_is_honoured() -> None:
    clock, worker = ManualClock(), Worker()
    q = queue(worker, clock)
    q.add("n1")
    worker.finish("n1", FollowUp(requeue_after_s=5.0))
    clock.advance(4.0)
    assert worker.started == ["n1"]
    clock.advance(1.0)
    assert worker.started == ["n1", "n1"]


def test_a_stopped_queue_forgets_everything_and_ignores_late_completions() -> None:
    clock, worker = ManualClock(), Worker()
    q = queue(worker, clock)
    q.add("n1")
    q.add_after("n2", 1.0)
    q.stop()
    worker.finish("n1", FollowUp(requeue_after_s=0.0))
    clock.advance(5.0)
    q.add("n3")
    assert worker.started == ["n1"] and q.idle


def test_queue_durations_are_recorded_for_metrics() -> None:
    clock, worker = ManualClock(), Worker()
    q = WorkQueue(clock, worker, workers=1, record_waits=True)
    q.add("a")
    q.add("b")
    clock.advance(2.0)
    worker.finish("a")
    assert q.take_waits() == [0.0, 2.0] and q.take_waits() == []


def test_the_same_queue_runs_on_an_asyncio_loop() -> None:
    """The operator's driver: asyncio timers, completions from tasks."""

    async def main() -> list[str]:
        seen: list[str] = []

        def process(key: str, done: Done) -> None:
            async def reconcile() -> None:
                await asyncio.sleep(0.01)
                seen.append(key)
                done(FollowUp(requeue_after_s=0.02) if len(seen) == 1 else FollowUp())

            asyncio.get_running_loop().create_task(reconcile())

        q = WorkQueue(AsyncioScheduler(), process, workers=2)
        q.add("n1")
        q.add("n1")  # dirty while it runs
        q.add("n2")
        for _ in range(100):
            await asyncio.sleep(0.01)
            if q.idle:
                break
        assert q.idle
        return seen

    seen = asyncio.run(main())
    assert sorted(seen) == ["n1", "n1", "n1", "n2"]  # once, once more (dirty), once requeued
