"""The simulated controller: upstream's work model (fma-spec §1.3) around the core's decisions.

- **Watch.** A change on a node reaches the controller after the informer's delay
  (``watch_delay_s``). Notifications of one node that arrive before its delivery merge into it:
  the reconcile reads the node's state when it runs, so one delivery covers them all. A
  :class:`WatchFilter` (installed by the fault injector) may hold a notification back longer or
  drop it; a *re-list* enqueues every node and so repairs whatever was lost.
- **Work queue.** Nodes are the work items. A node is queued at most once and processed by at
  most one worker at a time; a change while it is processed marks it dirty, and it runs once
  more afterwards (client-go's workqueue semantics). ``controller_workers`` workers (upstream
  ``--num-workers=2``) take nodes in FIFO order.
- **Reconcile.** After ``controller_reaction_s`` a worker runs *gather -> decide -> apply*:
  a snapshot of the node, :func:`fma.core.dualpods.plan_node` (the function the operator calls),
  and the executor. Writes that changed something come back as a watch event on the node. The
  worker stays busy ``api_write_s`` per call made, plus any stall (a call that hung until its
  timeout).
- **Retries.** A plan that failed part-way is retried with per-node exponential backoff:
  ``backoff_base_s`` doubling per consecutive failure, capped at ``backoff_max_s`` (client-go's
  default controller limiter: 5 ms doubling, capped at 20 s upstream); a success resets it. A
  plan's own ``requeue_after_s`` is honoured as a delayed add.
- **Restart.** :meth:`SimController.restart` loses every queue, retry count and pending delivery
  (all in memory), stays down for the given time, then re-lists.

The queue and retries are bounded: one queued entry, one delayed entry and one pending delivery
per node at most, and retry delays never exceed ``backoff_max_s``.
"""

from collections import deque
from collections.abc import Callable
from functools import partial
from typing import Any, Protocol

from fma.adapters.sim.cluster import SimCluster
from fma.adapters.sim.executor import SimExecutor
from fma.core.dualpods import plan_node
from fma.core.policy import Policy
from fma.core.ports import ActionExecutor


class WatchFilter(Protocol):
    """Decides the fate of one watch notification (the fault injector implements it)."""

    def extra_delay_s(self, node: str, now_s: float) -> float | None:
        """Seconds to add to the informer's delay, or None to drop the notification."""
        ...


def _no_stall() -> float:
    return 0.0


class SimController:
    """Per-node work queue, workers, retries and restarts around the core's ``plan_node``."""

    def __init__(
        self, cluster: SimCluster, policy: Policy, *, executor: ActionExecutor | None = None
    ) -> None:
        self.cluster = cluster
        self.env = cluster.env
        self.policy = policy
        self.latency = cluster.latency
        self.executor: ActionExecutor = executor if executor is not None else SimExecutor(cluster)
        self.stall_s: Callable[[], float] = _no_stall
        """Seconds the last apply hung (a call that ran into its timeout); set with faults."""
        self.watch: WatchFilter | None = None
        self.up = True
        self._stopped = False
        self.reconciles = 0
        self.retries = 0
        self._epoch = 0
        """Bumped on restart: callbacks scheduled before it are ignored (that memory is gone)."""
        self._delivery_due: dict[str, float] = {}
        self._requeue_due: dict[str, float] = {}
        self._queue: deque[str] = deque()
        self._queued: set[str] = set()
        self._busy: set[str] = set()
        self._dirty: set[str] = set()
        self._failures: dict[str, int] = {}
        self._idle_workers = self.latency.controller_workers
        cluster.on_change = self.notify

    # --- the informer ------------------------------------------------------------------------

    def notify(self, node: str) -> None:
        """A watch event concerning ``node``: deliver it after the informer's delay."""
        if not self.up:
            return  # nobody is watching; the re-list at start-up repairs it
        delay_s = self.latency.watch_delay_s
        if self.watch is not None:
            extra_s = self.watch.extra_delay_s(node, float(self.env.now))
            if extra_s is None:
                return
            delay_s += extra_s
        self._add_after(node, delay_s, self._delivery_due)

    def trigger(self, node: str, delay_s: float | None = None) -> None:
        """Enqueue ``node`` now (or after ``delay_s``), as a notification would."""
        if delay_s is None:
            self.notify(node)
        elif self.up:
            self._add_after(node, delay_s, self._requeue_due)

    def relist(self) -> None:
        """The informer listed everything again: every node is enqueued once."""
        if not self.up:
            return
        self.cluster.trace.record(float(self.env.now), "relist")
        for node in self.cluster.state.nodes:
            self._add(node)

    @property
    def idle(self) -> bool:
        """Nothing queued, processing, delayed or in delivery."""
        return not (
            self._queue or self._busy or self._delivery_due or self._requeue_due or self._dirty
        )

    @property
    def stopped(self) -> bool:
        """A stopped controller (its process is gone) does nothing more; a new one takes over."""
        return self._stopped

    @stopped.setter
    def stopped(self, value: bool) -> None:
        self._stopped = value
        if value:
            self._epoch += 1  # forget every pending delivery, retry and reconcile
            self.up = False

    # --- restart -----------------------------------------------------------------------------

    def restart(self, down_s: float) -> None:
        """The controller process dies: its memory is lost; it is back after ``down_s``."""
        self._epoch += 1
        self.up = False
        self._delivery_due.clear()
        self._requeue_due.clear()
        self._queue.clear()
        self._queued.clear()
        self._busy.clear()
        self._dirty.clear()
        self._failures.clear()
        self._idle_workers = self.latency.controller_workers
        self.cluster.trace.record(float(self.env.now), "controller_down")
        epoch = self._epoch
        self._call_later(down_s, lambda: self._come_up(epoch))

    def _come_up(self, epoch: int) -> None:
        if epoch != self._epoch or self._stopped:
            return
        self.up = True
        self.cluster.trace.record(float(self.env.now), "controller_up")
        self._call_later(self.latency.relist_s, lambda: self._relist_if(epoch))

    def _relist_if(self, epoch: int) -> None:
        if epoch == self._epoch:
            self.relist()

    # --- the work queue ----------------------------------------------------------------------

    def _call_later(self, delay_s: float, fn: Callable[[], None]) -> None:
        event = self.env.timeout(delay_s)
        event.callbacks.append(lambda _event: fn())

    def _add_after(self, node: str, delay_s: float, dues: dict[str, float]) -> None:
        """Add ``node`` after ``delay_s``; an earlier pending add of the same kind covers it."""
        due_s = float(self.env.now) + delay_s
        if dues.get(node, float("inf")) <= due_s:
            return
        dues[node] = due_s
        epoch = self._epoch

        def fire(_event: Any) -> None:
            if epoch == self._epoch and dues.get(node) == due_s:
                del dues[node]
                self._add(node)

        self.env.timeout(delay_s).callbacks.append(fire)

    def _add(self, node: str) -> None:
        if node in self._busy:
            self._dirty.add(node)
        elif node not in self._queued:
            self._queued.add(node)
            self._queue.append(node)
            self._dispatch()

    def _dispatch(self) -> None:
        while self._idle_workers > 0 and self._queue:
            node = self._queue.popleft()
            self._queued.discard(node)
            self._busy.add(node)
            self._idle_workers -= 1
            self._call_later(
                self.latency.controller_reaction_s, partial(self._reconcile, node, self._epoch)
            )

    def _reconcile(self, node: str, epoch: int) -> None:
        if epoch != self._epoch:
            return
        now_s = float(self.env.now)
        # 1. gather
        snapshot = self.cluster.state.snapshot(node)
        # 2. decide
        plan = plan_node(snapshot, now_s=now_s, policy=self.policy)
        self.reconciles += 1
        # 3. apply
        recorded = len(self.cluster.trace)
        outcomes = self.executor.apply(plan) if plan.actions else ()
        if len(self.cluster.trace) > recorded and any(o.ok for o in outcomes):
            # Our own writes come back as watch events; a no-op write (nothing recorded) does
            # not, as an update that changes nothing makes no event.
            self.notify(node)
        busy_s = len(outcomes) * self.latency.api_write_s + self.stall_s()
        if any(not o.ok for o in outcomes):
            failures = self._failures.get(node, 0) + 1
            self._failures[node] = failures
            self.retries += 1
            follow_s: float | None = self._backoff_s(failures)
        else:
            self._failures.pop(node, None)
            follow_s = plan.requeue_after_s
            if follow_s is not None:
                follow_s = max(follow_s, self.latency.api_write_s)
        if busy_s > 0:
            self._call_later(busy_s, lambda: self._done(node, follow_s, epoch))
        else:
            self._done(node, follow_s, epoch)

    def _backoff_s(self, failures: int) -> float:
        """client-go's exponential failure limiter: base x 2^(n-1), capped."""
        lat = self.latency
        exponent = min(failures - 1, 62)  # bounded: 2^62 x 5 ms is far past any cap
        return float(min(lat.backoff_base_s * 2.0**exponent, lat.backoff_max_s))

    def _done(self, node: str, follow_s: float | None, epoch: int) -> None:
        if epoch != self._epoch:
            return
        self._busy.discard(node)
        self._idle_workers += 1
        if follow_s is not None:
            self._add_after(node, follow_s, self._requeue_due)
        if node in self._dirty:
            self._dirty.discard(node)
            self._add(node)
        self._dispatch()
