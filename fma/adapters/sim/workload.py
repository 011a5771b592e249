"""Demand: requester Pods arriving over time, held for a while, then scaled away.

Each arrival is a *replica* that its owner (think of a ReplicaSet) keeps until its hold time
has passed after it became ready. If the controller deletes the requester before that (its
provider was lost, its node cordoned), the owner creates a replacement, as Kubernetes would.
A ``trace`` demand instead sets the number of replicas wanted over time: the owner adds
replicas when the count rises and removes some (not-ready ones first, then the newest) when it
falls.

Every random draw comes from generators derived from the run's seed (see
:mod:`fma.adapters.sim.arrivals`), one per demand entry and concern.
"""

import random
from collections.abc import Callable
from dataclasses import dataclass

from fma.adapters.sim.arrivals import ZipfChooser, arrival_times, draw_hold_s
from fma.adapters.sim.cluster import SimCluster, SimProcess
from fma.adapters.sim.state import SimRequester
from fma.api.demand import Demand
from fma.core.model import ServerSpec


@dataclass(slots=True)
class Replica:
    index: int
    demand_index: int
    model: str
    spec: ServerSpec
    gpus: int
    hold_s: float | None
    """Seconds kept once ready; None: until the trace lowers the count."""
    done: bool = False
    current_uid: str | None = None


@dataclass(frozen=True, slots=True)
class DemandRandom:
    """Independent generators for one demand entry, so one concern never shifts another."""

    arrivals: random.Random
    holds: random.Random
    models: random.Random

    @classmethod
    def derive(cls, parent: random.Random) -> "DemandRandom":
        sub = random.Random(parent.getrandbits(64))
        return cls(*(random.Random(sub.getrandbits(64)) for _ in range(3)))


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
        self._live: dict[int, list[Replica]] = {}
        """Demand index -> its replicas not yet scaled away (trace demand only)."""
        self._count = 0
        self._uid_seq = 0
        cluster.on_requester_gone = self._on_gone
        cluster.on_requester_ready = self._on_ready

    def start(self, demands: list[Demand], rng: random.Random) -> None:
        for index, demand in enumerate(demands):
            draws = DemandRandom.derive(rng)
            chooser = ZipfChooser(demand.model_names(), demand.zipf_exponent())
            if demand.pattern == "trace":
                self.cluster.env.process(self._follow_trace(index, demand, chooser, draws))
            else:
                self.cluster.env.process(self._arrivals(index, demand, chooser, draws))

    def _new_replica(
        self, index: int, chooser: ZipfChooser, draws: DemandRandom, hold_s: float | None
    ) -> Replica:
        model = chooser.choose(draws.models)
        spec, gpus = self.spec_for(model)
        self._count += 1
        return Replica(self._count, index, model, spec, gpus, hold_s)

    def _arrivals(
        self, index: int, demand: Demand, chooser: ZipfChooser, draws: DemandRandom
    ) -> SimProcess:
        hold = demand.hold_time()
        for t in arrival_times(demand, self.end_s, draws.arrivals):
            yield self.cluster.env.timeout(t - self.cluster.now_s())
            self._submit(self._new_replica(index, chooser, draws, draw_hold_s(hold, draws.holds)))

    def _follow_trace(
        self, index: int, demand: Demand, chooser: ZipfChooser, draws: DemandRandom
    ) -> SimProcess:
        """Set the replica count at each trace point (trace time 0 is the demand's start)."""
        assert demand.points is not None
        live = self._live.setdefault(index, [])
        for point in demand.points:
            t = demand.start + point.t_s
            if t >= self.end_s or (demand.stop is not None and t >= demand.stop):
                return
            if t > self.cluster.now_s():
                yield self.cluster.env.timeout(t - self.cluster.now_s())
            live[:] = [r for r in live if not r.done]
            for _ in range(point.replicas - len(live)):
                replica = self._new_replica(index, chooser, draws, None)
                live.append(replica)
                self._submit(replica)
            for replica in self._scale_down_order(live)[: max(0, len(live) - point.replicas)]:
                replica.done = True
                if replica.current_uid is not None:
                    self.cluster.delete_requester(replica.current_uid, "scaled down")

    def _scale_down_order(self, live: list[Replica]) -> list[Replica]:
        """Like a ReplicaSet: replicas not ready go first, then the newest."""

        def ready(replica: Replica) -> bool:
            requester = self.cluster.state.requesters.get(replica.current_uid or "")
            return requester is not None and requester.ready

        return sorted(live, key=lambda r: (ready(r), -r.index))

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
        if replica is not None and requester.actuated and replica.hold_s is not None:
            self.cluster.env.process(
                self._hold_then_scale_down(replica, requester.uid, replica.hold_s)
            )

    def _hold_then_scale_down(self, replica: Replica, uid: str, hold_s: float) -> SimProcess:
        yield self.cluster.env.timeout(hold_s)
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
