"""The simulated controller: per-node work serialised like upstream's node queues.

A change on a node marks it dirty; the node's worker, after the watch delay and the
controller's reaction time, runs *gather -> decide -> apply*: it reads a snapshot, calls
:func:`fma.core.dualpods.plan_node` (the same function the operator calls) and applies the plan.
Only one reconcile per node runs at a time; changes that arrive meanwhile cause one more pass.
"""

from fma.adapters.sim.cluster import SimCluster, SimProcess
from fma.adapters.sim.executor import SimExecutor
from fma.core.dualpods import plan_node
from fma.core.policy import Policy


class SimController:
    def __init__(self, cluster: SimCluster, policy: Policy) -> None:
        self.cluster = cluster
        self.policy = policy
        self.executor = SimExecutor(cluster)
        self._due_s: dict[str, float] = {}
        """Node -> when its next reconcile runs; one pending reconcile per node at most."""
        self.reconciles = 0
        self.stopped = False
        """A stopped controller (a crashed process) does nothing more; a new one takes over."""
        cluster.on_change = self.trigger

    def trigger(self, node: str, delay_s: float | None = None) -> None:
        """Level-triggered: triggers of one node before it runs merge into the earliest one."""
        latency = self.cluster.latency
        if delay_s is None:
            delay_s = latency.watch_delay_s + latency.controller_reaction_s
        due_s = self.cluster.now_s() + delay_s
        if self._due_s.get(node, float("inf")) <= due_s:
            return
        self._due_s[node] = due_s
        self.cluster.env.process(self._reconcile_at(node, due_s, delay_s))

    def _reconcile_at(self, node: str, due_s: float, delay_s: float) -> SimProcess:
        yield self.cluster.env.timeout(delay_s)
        if self._due_s.get(node) != due_s or self.stopped:
            return  # superseded by an earlier trigger, which already ran; or this one is gone
        del self._due_s[node]
        # 1. gather
        snapshot = self.cluster.state.snapshot(node)
        # 2. decide
        plan = plan_node(snapshot, now_s=self.cluster.now_s(), policy=self.policy)
        self.reconciles += 1
        # 3. apply
        outcomes = self.executor.apply(plan)
        if any(not o.ok for o in outcomes):
            self.trigger(node, self.policy.retry_delay_s)
        elif plan.requeue_after_s is not None:
            self.trigger(node, max(plan.requeue_after_s, self.cluster.latency.api_write_s))
