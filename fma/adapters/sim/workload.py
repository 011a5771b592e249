"""Demand: requester Pods arriving over time, held for a while, then scaled away.

Each arrival is a *replica* that its owner (think of a ReplicaSet) keeps until its hold time
has passed after it became ready. If the controller deletes the requester before that (its
provider was lost, its node cordoned), the owner creates a replacement, as Kubernetes would.
"""

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from fma.adapters.sim.cluster import SimCluster, SimProcess
from fma.adapters.sim.state import SimRequester
from fma.api.scenario import Demand
from fma.core.model import ServerSpec


@dataclass(slots=True)
class Replica:
    index: int
    demand_index: int
    model: str
    spec: ServerSpec
    gpus: int
    hold_s: float
    done: bool = False
    current_uid: str | None = None


def poisson_arrivals(
    rate_per_h: float, start_s: float, end_s: float, rng: random.Random
) -> Iterator[float]:
    """Arrival times of a Poisson process on [start_s, end_s)."""
    if rate_per_h <= 0:
        return
    t = start_s
    while True:
        t += rng.expovariate(rate_per_h / 3600.0)
        if t >= end_s:
            return
        yield t


class Workload:
    """Drives the demand of a scenario into the cluster."""

    def __init__(
        self,
        cluster: SimCluster,
        end_s: float,
        spec_for: Callable[[str], tuple[ServerSpec, int]],
        isc_for: Callable[[str], str | None] = lambda model: None,
    ) -> None:
        self.cluster = cluster
        self.end_s = end_s
        self.spec_for = spec_for
        self.isc_for = isc_for
        """Model -> the InferenceServerConfig its requesters name (None: the direct path)."""
        self.replicas: dict[str, Replica] = {}
        """Requester UID -> the replica it currently embodies."""
        self._count = 0
        self._uid_seq = 0
        cluster.on_requester_gone = self._on_gone
        cluster.on_requester_ready = self._on_ready

    def start(self, demands: list[Demand], rng: random.Random) -> None:
        for index, demand in enumerate(demands):
            sub = random.Random(rng.getrandbits(64))
            self.cluster.env.process(self._arrivals(index, demand, sub))

    def _arrivals(self, index: int, demand: Demand, rng: random.Random) -> SimProcess:
        spec, gpus = self.spec_for(demand.model)
        for t in poisson_arrivals(demand.rate_per_h, demand.start, self.end_s, rng):
            yield self.cluster.env.timeout(t - self.cluster.now_s())
            hold = rng.expovariate(1.0 / demand.hold) if demand.hold > 0 else 0.0
            self._count += 1
            replica = Replica(self._count, index, demand.model, spec, gpus, hold)
            self._submit(replica)

    def _submit(self, replica: Replica) -> None:
        self._uid_seq += 1
        uid = f"req-{self._uid_seq}"
        replica.current_uid = uid
        self.replicas[uid] = replica
        requester = SimRequester(
            uid,
            uid,
            replica.model,
            replica.spec,
            self.cluster.now_s(),
            replica.demand_index,
            gpus=replica.gpus,
            isc_name=self.isc_for(replica.model),
        )
        self.cluster.submit(requester)

    def _on_ready(self, requester: SimRequester) -> None:
        replica = self.replicas.get(requester.uid)
        if replica is not None and requester.actuated:
            self.cluster.env.process(self._hold_then_scale_down(replica, requester.uid))

    def _hold_then_scale_down(self, replica: Replica, uid: str) -> SimProcess:
        yield self.cluster.env.timeout(replica.hold_s)
        if replica.current_uid == uid and not replica.done:
            replica.done = True
            self.cluster.delete_requester(uid, "scaled down")

    def _on_gone(self, requester: SimRequester) -> None:
        replica = self.replicas.pop(requester.uid, None)
        if replica is not None and not replica.done and self.cluster.now_s() < self.end_s:
            self._submit(replica)  # the owner replaces a requester it still wants

    def unserved(self) -> list[str]:
        """Requesters still wanted and not ready: demand the cluster did not meet."""
        return sorted(
            uid
            for uid, r in self.cluster.state.requesters.items()
            if not r.ready and not r.deleting and uid in self.replicas
        )
