"""Bindings and launchers: who serves whom, and what one launcher may hold.

- :class:`OneProviderPerRequester` — a requester is bound to at most one provider and a
  provider to at most one requester; the provider is on the requester's node, and the bound
  instance runs on exactly the requester's GPUs;
- :class:`LauncherInstanceCap` — a launcher never holds more instances than its
  LauncherConfig's ``maxInstances`` (stopping ones are on their way out and do not count);
- :class:`LauncherPortsUnique` — the instances of one launcher share its network namespace, so
  no two of them (a stopping one included: it holds its port until it exits) use one port;
- :class:`StoppedNotKept` — a requester whose bound instance stopped (it crashed: the
  controller never stops an instance it keeps bound) is deleted within ``grace_s``, so that
  its owner replaces it; checked continuously, like readiness.
"""

from collections import Counter

from fma.bench.invariants.replay import (
    ON_GPUS,
    TAKES_A_SLOT,
    Checker,
    Event,
    Overdue,
    World,
    concerned,
)


class OneProviderPerRequester(Checker):
    name = "one_provider_per_requester"

    def before(self, e: Event, world: World) -> None:
        if e["kind"] != "bind":
            return
        uid, name = e["requester"], e["provider"]
        other = world.provider_of(uid)
        if other is not None and other.name != name:
            self.breach(e["t"], requester=uid, providers=[other.name, name])
        provider = world.providers.get(name)
        if provider is None:
            return
        if provider.bound_to is not None and provider.bound_to != uid:
            self.violations.append(
                {
                    "t": e["t"],
                    "invariant": "one_requester_per_provider",
                    "provider": name,
                    "requesters": [provider.bound_to, uid],
                }
            )
        requester = world.requesters.get(uid)
        if requester is not None and requester.node and provider.node != requester.node:
            self.violations.append(
                {
                    "t": e["t"],
                    "invariant": "provider_on_requester_node",
                    "requester": uid,
                    "provider": name,
                    "node": provider.node,
                    "expected": requester.node,
                }
            )

    def after(self, e: Event, world: World) -> None:
        if e["kind"].removeprefix("instance_") not in ON_GPUS:
            return
        provider = world.providers.get(e["provider"])
        if provider is None or provider.bound_instance != e["instance"] or not provider.bound_to:
            return
        requester = world.requesters.get(provider.bound_to)
        if requester is not None and requester.gpus and set(e["gpus"]) != set(requester.gpus):
            self.violations.append(
                {
                    "t": e["t"],
                    "invariant": "provider_runs_requester_gpus",
                    "requester": requester.uid,
                    "provider": provider.name,
                    "gpus": sorted(e["gpus"]),
                    "expected": sorted(requester.gpus),
                }
            )


class LauncherInstanceCap(Checker):
    name = "launcher_instance_cap"

    def after(self, e: Event, world: World) -> None:
        if e["kind"] != "instance_starting":
            return
        provider = world.providers.get(e["provider"])
        if provider is None or provider.max_instances is None:
            return
        held = sum(1 for i in world.instances_of(provider.name) if i.state in TAKES_A_SLOT)
        if held > provider.max_instances:
            self.breach(e["t"], provider=provider.name, instances=held, cap=provider.max_instances)


class LauncherPortsUnique(Checker):
    name = "launcher_ports_unique"

    def after(self, e: Event, world: World) -> None:
        if e["kind"] != "instance_starting":
            return
        provider = world.providers.get(e["provider"])
        if provider is None or provider.kind != "launcher":
            return
        ports = Counter(
            i.port for i in world.instances_of(provider.name) if i.state != "stopped" and i.port
        )
        for port, count in ports.items():
            if count > 1:
                self.breach(e["t"], provider=provider.name, port=port, instances=count)


class StoppedNotKept(Checker):
    name = "stopped_not_kept"

    def __init__(self) -> None:
        super().__init__()
        self._kept = Overdue(self, "still bound {grace_s} s after its instance stopped")

    def after(self, e: Event, world: World) -> None:
        for uid in concerned(e, world):
            requester = world.requesters.get(uid)
            instance = world.bound_instance(world.provider_of(uid))
            kept = (
                requester is not None
                and not requester.deleting
                and instance is not None
                and instance.state == "stopped"
            )
            self._kept.mark(uid, kept, world)
        self._kept.judge(world, world.now_s)

    def finish(self, world: World, now_s: float) -> None:
        self._kept.judge(world, now_s)
