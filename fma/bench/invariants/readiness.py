"""Readiness and routing: a requester (or an endpoint picker) must never be told an engine
serves when it does not.

- :class:`ReadyOnlyWhenAwake` — readiness is relayed only while the bound instance is awake;
  the controller never puts a bound instance to sleep, stops it or unbinds it while its
  requester still shows ready (it withdraws readiness first); and when the instance stops
  being awake for a reason the controller did not choose (a crash, a launcher restart), the
  requester's readiness is withdrawn (or the requester deleted) within ``grace_s`` of the
  inventory's limits. Checked continuously, not only at ``ready`` events.
- :class:`RoutingOnlyWhenAwake` — routing metadata is put on a provider only while its bound
  instance is awake, and taken off before that instance is put to sleep or stopped.
"""

from fma.bench.invariants.replay import Checker, Event, Overdue, World, concerned


def _chosen_exit(e: Event) -> bool:
    """The controller's own ways of taking a bound instance out of service: a sleep, or a
    stop it asked for (a user's deletion of a Pod is not its choice)."""
    kind = e["kind"]
    return bool(
        kind == "instance_falling_asleep"
        or (kind == "instance_stopping" and e.get("by", "controller") == "controller")
    )


class ReadyOnlyWhenAwake(Checker):
    name = "ready_only_when_awake"

    def __init__(self) -> None:
        super().__init__()
        self._stale = Overdue(self, "still ready {grace_s} s after its engine stopped serving")
        """Requesters that show ready while their engine does not serve."""
        self._touched: list[str] = []

    def before(self, e: Event, world: World) -> None:
        kind = e["kind"]
        self._touched = concerned(e, world)
        if _chosen_exit(e):
            self._chosen_exit(e, world)
        elif kind == "unbind":
            provider = world.providers.get(e["provider"])
            requester = world.requesters.get(provider.bound_to or "") if provider else None
            if requester is not None and requester.ready:
                self.breach(
                    e["t"],
                    requester=requester.uid,
                    provider=e["provider"],
                    why="unbound while ready",
                )

    def _chosen_exit(self, e: Event, world: World) -> None:
        provider = world.providers.get(e["provider"])
        if provider is None or provider.bound_instance != e["instance"] or not provider.bound_to:
            return
        requester = world.requesters.get(provider.bound_to)
        if requester is not None and requester.ready:
            self.breach(
                e["t"],
                requester=requester.uid,
                provider=provider.name,
                why=f"{e['kind'].removeprefix('instance_')} while its requester is ready",
            )

    def after(self, e: Event, world: World) -> None:
        if e["kind"] == "ready":
            provider = world.provider_of(e["requester"])
            instance = world.bound_instance(provider)
            state = instance.state if instance is not None else None
            if state != "awake":
                self.breach(
                    e["t"],
                    requester=e["requester"],
                    provider=provider.name if provider else None,
                    instance_state=state,
                )
        for uid in self._touched:
            self._refresh(uid, world)
        self._stale.judge(world, world.now_s)

    def _refresh(self, uid: str, world: World) -> None:
        requester = world.requesters.get(uid)
        instance = world.bound_instance(world.provider_of(uid))
        stale = (
            requester is not None
            and requester.ready
            and (instance is None or instance.state != "awake")
        )
        self._stale.mark(uid, stale, world)

    def finish(self, world: World, now_s: float) -> None:
        self._stale.judge(world, now_s)


class RoutingOnlyWhenAwake(Checker):
    name = "routing_only_when_awake"

    def before(self, e: Event, world: World) -> None:
        if not _chosen_exit(e):
            return
        provider = world.providers.get(e["provider"])
        if provider is not None and provider.routing and provider.bound_instance == e["instance"]:
            self.breach(
                e["t"],
                provider=provider.name,
                why=f"routed to while {e['kind'].removeprefix('instance_')}",
            )

    def after(self, e: Event, world: World) -> None:
        if e["kind"] != "routing" or not e.get("on"):
            return
        provider = world.providers.get(e["provider"])
        instance = world.bound_instance(provider)
        if instance is None or instance.state != "awake":
            self.breach(
                e["t"],
                provider=e["provider"],
                why="routing put on while its instance is "
                + (instance.state if instance is not None else "missing"),
            )
