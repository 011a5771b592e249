"""The simulated controller: the shared reconcile shell (:mod:`fma.control`) on SimPy time,
behind a simulated informer.

- **Informer.** A change on a node reaches the controller after the informer's delay
  (``watch_delay_s``). Notifications of one node that arrive before its delivery merge into it:
  the reconcile reads the node's state when it runs, so one delivery covers them all. A
  :class:`WatchFilter` (installed by the fault injector) may hold a notification back longer or
  drop it; a *re-list* enqueues every node and so repairs whatever was lost. The controller
  re-lists when it starts, so launcher pools are filled before any requester arrives.
- **Work queue.** :class:`~fma.control.queue.WorkQueue`, the operator's own, with
  ``controller_workers`` workers (upstream ``--num-workers=2``) and client-go's back-off
  (``backoff_base_s`` doubling, capped at ``backoff_max_s``).
- **Reconcile.** After ``controller_reaction_s`` a worker runs *gather -> decide -> apply*
  (:func:`fma.control.reconcile.decide`, the executor, :func:`fma.control.reconcile.conclude`).
  Writes that changed something come back as a watch event on the node. The worker stays busy
  for the calls it waits for, as the operator's: ``api_write_s`` per API write, ``http_call_s``
  per instance create or delete and readiness relay (and a sleeper's exit, ``sleeper_stop_s``,
  which a launcher's delete waits for), plus any stall (a call that hung until its timeout).
  Wakes, sleeps and stops do not hold it: they are in flight until their end is observed; nor
  do Events, sent in the background as client-go's recorder does.
- **Restart.** :meth:`SimController.restart` loses the queue, retry counts and pending
  deliveries (all in memory), stays down for the given time, then re-lists.
"""

from collections.abc import Callable, Sequence
from functools import partial
from typing import Protocol

import simpy

from fma.adapters.sim.clock import call_later
from fma.adapters.sim.cluster import SimCluster
from fma.adapters.sim.executor import SimExecutor
from fma.control.queue import Done, WorkQueue
from fma.control.reconcile import CONFIGS, Decision, conclude, decide
from fma.core.actions import (
    API_WRITES,
    Action,
    CreateInstance,
    DeleteInstance,
    RelayReadiness,
    SleepInstance,
)
from fma.core.outcomes import FollowUp, Outcome, OutcomeKind
from fma.core.policy import Policy

AWAITED_CALLS: tuple[type, ...] = (CreateInstance, DeleteInstance, RelayReadiness)
"""HTTP calls a worker waits for, as the operator's executor does; a wake or a sleep is started
in the background (it is in flight until its end is observed), and so is an Event."""


class WatchFilter(Protocol):
    """Decides the fate of one watch notification (the fault injector implements it)."""

    def extra_delay_s(self, node: str, now_s: float) -> float | None:
        """Seconds to add to the informer's delay, or None to drop the notification."""
        ...


class Executor(Protocol):
    """Applies plans (the simulator's executor, or it wrapped by the fault injector)."""

    def apply(self, decision: Decision) -> Sequence[Outcome]: ...

    def apply_one(self, action: Action) -> Outcome: ...

    def refuse_sleep(self, action: SleepInstance) -> None: ...

    def take_waited_s(self) -> float: ...


class SimScheduler:
    """The :class:`~fma.control.ports.Scheduler` port on a SimPy environment."""

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env

    def now_s(self) -> float:
        return float(self.env.now)

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None:
        call_later(self.env, delay_s, fn)


def _no_stall() -> float:
    return 0.0


class SimController:
    """The informer, the shared work queue and the reconcile shell around the core."""

    def __init__(
        self, cluster: SimCluster, policy: Policy, *, executor: Executor | None = None
    ) -> None:
        self.cluster = cluster
        self.env = cluster.env
        self.policy = policy
        self.latency = cluster.latency
        self.scheduler = SimScheduler(cluster.env)
        self.executor: Executor = executor if executor is not None else SimExecutor(cluster)
        self.stall_s: Callable[[], float] = _no_stall
        """Seconds the last apply hung (a call that ran into its timeout); set with faults."""
        self.watch: WatchFilter | None = None
        self.up = True
        self._stopped = False
        self._epoch = 0
        """Bumped on restart: deliveries scheduled before it are ignored (that memory is gone)."""
        self._delivery_due: dict[str, float] = {}
        self.reconciles = 0
        self.retries = 0
        self._call_s: dict[type, float] = {
            **{kind: self.latency.api_write_s for kind in API_WRITES},
            **{kind: self.latency.http_call_s for kind in AWAITED_CALLS},
        }
        """Seconds a worker waits for each kind of action (the rest are started and left:
        wakes, sleeps and Events)."""
        self.queue = self._new_queue()
        cluster.on_change = self.notify

    def _new_queue(self) -> WorkQueue:
        return WorkQueue(
            self.scheduler,
            self._process,
            workers=self.latency.controller_workers,
            backoff_base_s=self.latency.backoff_base_s,
            backoff_max_s=self.latency.backoff_max_s,
        )

    # --- the informer ------------------------------------------------------------------------

    def notify(self, key: str) -> None:
        """A watch event concerning ``key``: deliver it after the informer's delay."""
        if not self.up:
            return  # nobody is watching; the re-list at start-up repairs it
        delay_s = self.latency.watch_delay_s
        if self.watch is not None:
            extra_s = self.watch.extra_delay_s(key, float(self.env.now))
            if extra_s is None:
                return
            delay_s += extra_s
        due_s = self.env.now + delay_s
        pending_s = self._delivery_due.get(key)
        if pending_s is not None and pending_s <= due_s:
            return
        self._delivery_due[key] = due_s
        call_later(self.env, delay_s, partial(self._deliver, key, due_s, self._epoch))

    def _deliver(self, key: str, due_s: float, epoch: int) -> None:
        if epoch == self._epoch and self._delivery_due.get(key) == due_s:
            del self._delivery_due[key]
            self.queue.add(key)

    def configs_changed(self) -> None:
        """An InferenceServerConfig or LauncherConfig changed: its status, and every node."""
        self.notify(CONFIGS)
        for node in list(self.cluster.state.nodes):
            self.notify(node)

    def trigger(self, node: str, delay_s: float | None = None) -> None:
        """Enqueue ``node`` now (or after ``delay_s``), as a notification would."""
        if delay_s is None:
            self.notify(node)
        elif self.up:
            self.queue.add_after(node, delay_s)

    def relist(self) -> None:
        """The informer listed everything again: every node (and the configs) enqueued once."""
        if not self.up:
            return
        self.cluster.trace.record(float(self.env.now), "relist")
        self.queue.add(CONFIGS)
        for node in self.cluster.state.nodes:
            self.queue.add(node)

    def start(self) -> None:
        """The controller's first list: every node is reconciled once, demand or not."""
        self.relist()

    @property
    def idle(self) -> bool:
        """Nothing queued, processing, delayed or in delivery."""
        return self.queue.idle and not self._delivery_due

    @property
    def stopped(self) -> bool:
        """A stopped controller (its process is gone) does nothing more; a new one takes over."""
        return self._stopped

    @stopped.setter
    def stopped(self, value: bool) -> None:
        self._stopped = value
        if value:
            self._epoch += 1  # forget every pending delivery, retry and reconcile
            self.queue.stop()
            self.up = False

    # --- restart -----------------------------------------------------------------------------

    def restart(self, down_s: float) -> None:
        """The controller process dies: its memory is lost; it is back after ``down_s``."""
        self._epoch += 1
        self.up = False
        self.queue.stop()
        self._delivery_due.clear()
        self.cluster.trace.record(float(self.env.now), "controller_down")
        epoch = self._epoch
        self.scheduler.call_later(down_s, lambda: self._come_up(epoch))

    def _come_up(self, epoch: int) -> None:
        if epoch != self._epoch or self._stopped:
            return
        self.up = True
        self.queue = self._new_queue()
        self.cluster.trace.record(float(self.env.now), "controller_up")
        self.scheduler.call_later(self.latency.relist_s, lambda: self._relist_if(epoch))

    def _relist_if(self, epoch: int) -> None:
        if epoch == self._epoch:
            self.relist()

    # --- one reconcile -------------------------------------------------------------------------

    def _process(self, key: str, done: Done) -> None:
        call_later(
            self.env,
            self.latency.controller_reaction_s,
            partial(self._reconcile, key, done, self._epoch),
        )

    def _reconcile(self, key: str, done: Done, epoch: int) -> None:
        if epoch != self._epoch:
            return
        state = self.cluster.state
        # 1. gather, 2. decide
        decision = decide(state, key, now_s=float(self.env.now), policy=self.policy)
        self.reconciles += 1
        if not decision.plan.actions:
            follow = FollowUp(requeue_after_s=decision.plan.requeue_after_s)
            busy_s = self.stall_s()
        else:
            # 3. apply
            outcomes = self.executor.apply(decision)
            busy_s = self.stall_s() + self.executor.take_waited_s()
            wrote = False
            for outcome in outcomes:
                action = outcome.action
                busy_s += self._call_s.get(type(action), 0.0)
                if not wrote and outcome.kind is OutcomeKind.OK and isinstance(action, API_WRITES):
                    wrote = True
            if wrote:
                # Our own writes to watched objects come back as watch events; calls to
                # launchers, engines and requesters, and Events, do not (what they change is
                # observed when it is done: the cluster re-queues the node then).
                self.notify(key)
            follow = conclude(state, decision, outcomes)
            if follow.failed:
                self.retries += 1
        if busy_s > 0:
            call_later(self.env, busy_s, partial(done, follow))
        else:
            done(follow)
