"""The cluster as a trace tells it: replayed event by event, for the invariant checkers.

:class:`World` applies ``events.jsonl`` records in order and keeps what they say — instances
and their states, providers and their bindings, requesters and their readiness, the
inventory's capacities and limits. It shares no code with the decisions or the simulator: it
knows only the trace's vocabulary (``docs/events.md``), so a bug in the core cannot hide here.

Checkers are :class:`Checker` objects that look at each event just before and just after the
world applies it, and once more at the end; :func:`run` drives any number of them in one pass.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

Event = dict[str, Any]
Violation = dict[str, Any]

ON_GPUS = frozenset({"starting", "awake", "waking", "falling_asleep", "stopping"})
"""Instance states that hold their GPUs' memory."""
IN_HOST = frozenset({"sleeping", "falling_asleep", "waking"})
"""Instance states whose weights are (also) in host memory."""
TAKES_A_SLOT = frozenset({"starting", "awake", "waking", "falling_asleep", "sleeping"})
"""Instance states that count against a launcher's instance cap."""


GRACE_S_DEFAULT = 600.0


@dataclass(slots=True)
class Inst:
    provider: str
    instance: str
    node: str
    gpus: tuple[str, ...]
    bytes: int
    utilization: float
    port: int | None
    state: str
    since_s: float


@dataclass(slots=True)
class Prov:
    name: str
    node: str
    kind: str
    created_s: float
    max_instances: int | None = None
    bound_to: str | None = None
    bound_instance: str | None = None
    path: str | None = None
    bound_s: float | None = None
    bound_at_creation: bool = False
    deleting: bool = False
    ready: bool = True
    not_ready_since_s: float | None = None
    routing: bool = False


@dataclass(slots=True)
class Req:
    uid: str
    model: str | None = None
    node: str | None = None
    gpus: tuple[str, ...] = ()
    ready: bool = False
    deleting: bool = False
    deleting_s: float | None = None


@dataclass
class World:
    """What the trace has said so far."""

    gpu_memory: dict[str, int] = field(default_factory=dict)
    node_of_gpu: dict[str, str] = field(default_factory=dict)
    host_memory: dict[str, int] = field(default_factory=dict)
    launchers_wanted: dict[str, int] = field(default_factory=dict)
    models: dict[str, Event] = field(default_factory=dict)
    limits: Event = field(default_factory=dict)
    instances: dict[str, Inst] = field(default_factory=dict)
    providers: dict[str, Prov] = field(default_factory=dict)
    requesters: dict[str, Req] = field(default_factory=dict)
    cordoned: set[str] = field(default_factory=set)
    now_s: float = 0.0
    binding: dict[str, str] = field(default_factory=dict)
    """Requester UID -> the provider bound to it (the latest, should there be two)."""
    by_gpu: dict[str, set[str]] = field(default_factory=dict)
    by_node: dict[str, set[str]] = field(default_factory=dict)
    by_provider: dict[str, set[str]] = field(default_factory=dict)
    """Instance keys by GPU, node and provider: every lookup costs what it touches."""
    controller_down_since_s: float | None = None
    controller_down_total_s: float = 0.0
    """When the controller went down (None while it is up), and how long it has been down in
    all before that: the controller's restarts, as the simulator records them."""

    # --- lookups -------------------------------------------------------------------------------

    @property
    def grace_s(self) -> float:
        """How long the controller may take to react to a change it did not cause (from the
        ``limits`` record; generous without one)."""
        return float(self.limits.get("grace_s", GRACE_S_DEFAULT))

    def provider_of(self, uid: str) -> Prov | None:
        """The provider bound to requester ``uid``."""
        name = self.binding.get(uid)
        return self.providers.get(name) if name is not None else None

    def bound_instance(self, provider: Prov | None) -> Inst | None:
        if provider is None or provider.bound_instance is None:
            return None
        return self.instances.get(f"{provider.name}/{provider.bound_instance}")

    def instances_of(self, provider: str) -> list[Inst]:
        return [self.instances[k] for k in self.by_provider.get(provider, ())]

    def instances_on_gpu(self, gpu: str) -> list[Inst]:
        return [self.instances[k] for k in self.by_gpu.get(gpu, ())]

    def instances_on_node(self, node: str) -> list[Inst]:
        return [self.instances[k] for k in self.by_node.get(node, ())]

    def forget_instance(self, key: str) -> None:
        inst = self.instances.pop(key, None)
        if inst is None:
            return
        for gpu in inst.gpus:
            self.by_gpu.get(gpu, set()).discard(key)
        self.by_node.get(inst.node, set()).discard(key)
        self.by_provider.get(inst.provider, set()).discard(key)

    def controller_time_s(self, t: float) -> float:
        """Seconds the controller has been up by time ``t`` (``t`` at or after the last down
        or up event): a reaction is owed only while it runs, so the grace of a change made
        while it was down starts when it comes back."""
        if self.controller_down_since_s is not None:
            t = min(t, max(self.controller_down_since_s, 0.0))
        return t - self.controller_down_total_s

    def wall_time_s(self, controller_s: float) -> float:
        """The earliest time at which :meth:`controller_time_s` reaches ``controller_s``
        (when it is past now, as if the controller stayed up)."""
        return (
            controller_s
            + self.controller_down_total_s
            + (
                self.now_s - self.controller_down_since_s
                if self.controller_down_since_s is not None
                else 0.0
            )
        )

    # --- applying ------------------------------------------------------------------------------

    def apply(self, e: Event) -> None:
        self.now_s = max(self.now_s, float(e["t"]))
        kind = e["kind"]
        handler = _HANDLERS.get(kind)
        if handler is not None:
            handler(self, e)
        elif kind.startswith("instance_"):
            self._instance(e, kind.removeprefix("instance_"))

    def _instance(self, e: Event, state: str) -> None:
        key = f"{e['provider']}/{e['instance']}"
        if state == "deleted":
            self.forget_instance(key)
            return
        known = self.instances.get(key)
        if known is not None:
            known.state = state
            known.since_s = float(e["t"])
            return
        inst = self.instances[key] = Inst(
            e["provider"],
            e["instance"],
            e.get("node", ""),
            tuple(e.get("gpus", ())),
            int(e.get("bytes", 0)),
            float(e.get("utilization", 0.0)),
            e.get("port"),
            state,
            float(e["t"]),
        )
        for gpu in inst.gpus:
            self.by_gpu.setdefault(gpu, set()).add(key)
        self.by_node.setdefault(inst.node, set()).add(key)
        self.by_provider.setdefault(inst.provider, set()).add(key)


def _node_added(w: World, e: Event) -> None:
    for gpu in e["gpus"]:
        w.gpu_memory[gpu] = e["gpu_memory_bytes"]
        w.node_of_gpu[gpu] = e["node"]
    w.host_memory[e["node"]] = e["host_memory_bytes"]
    w.launchers_wanted[e["node"]] = e.get("launchers_wanted", 0)


def _provider_created(w: World, e: Event) -> None:
    launcher = e.get("provider_kind") == "launcher"
    w.providers[e["provider"]] = Prov(
        e["provider"],
        e["node"],
        e.get("provider_kind", "direct"),
        float(e["t"]),
        e.get("max_instances"),
        ready=not launcher,
        not_ready_since_s=float(e["t"]) if launcher else None,
    )


def _bind(w: World, e: Event) -> None:
    p = w.providers.get(e["provider"])
    if p is None:
        return
    # Bound in the instant it was created (and never before): made for this requester.
    p.bound_at_creation = p.bound_s is None and p.created_s == float(e["t"])
    p.bound_to = e["requester"]
    w.binding[e["requester"]] = p.name
    p.bound_instance = e.get("instance")
    p.path = e.get("path")
    p.bound_s = float(e["t"])


def _unbind(w: World, e: Event) -> None:
    p = w.providers.get(e["provider"])
    if p is not None:
        _drop_binding(w, p)
        p.bound_to = p.bound_instance = p.path = None
        p.routing = False


def _drop_binding(w: World, p: Prov) -> None:
    if p.bound_to is not None and w.binding.get(p.bound_to) == p.name:
        del w.binding[p.bound_to]


def _provider_deleting(w: World, e: Event) -> None:
    p = w.providers.get(e["provider"])
    if p is not None:
        p.deleting = True


def _provider_deleted(w: World, e: Event) -> None:
    p = w.providers.pop(e["provider"], None)
    if p is not None:
        _drop_binding(w, p)
    for key in list(w.by_provider.pop(e["provider"], ())):
        w.forget_instance(key)


def _launcher_ready(w: World, e: Event) -> None:
    p = w.providers.get(e["provider"])
    if p is not None:
        p.ready = True
        p.not_ready_since_s = None


def _launcher_crashed(w: World, e: Event) -> None:
    p = w.providers.get(e["provider"])
    if p is not None:
        p.ready = False
        p.not_ready_since_s = float(e["t"])
    for key in list(w.by_provider.get(e["provider"], ())):
        w.forget_instance(key)


def _routing(w: World, e: Event) -> None:
    p = w.providers.get(e["provider"])
    if p is not None:
        p.routing = bool(e.get("on"))


def _requester_created(w: World, e: Event) -> None:
    w.requesters[e["requester"]] = Req(e["requester"], e.get("model"))


def _requester_scheduled(w: World, e: Event) -> None:
    r = w.requesters.setdefault(e["requester"], Req(e["requester"]))
    r.node = e.get("node")
    r.gpus = tuple(e.get("gpus", ()))


def _requester_deleting(w: World, e: Event) -> None:
    r = w.requesters.get(e["requester"])
    if r is not None and not r.deleting:
        r.deleting = True
        r.deleting_s = float(e["t"])


def _requester_deleted(w: World, e: Event) -> None:
    w.requesters.pop(e["requester"], None)


def _ready(w: World, e: Event) -> None:
    r = w.requesters.get(e["requester"])
    if r is not None:
        r.ready = e["kind"] == "ready"


def _node_lost(w: World, e: Event) -> None:
    w.cordoned.discard(e["node"])


def _cordon(w: World, e: Event) -> None:
    if e["kind"] == "node_cordoned":
        w.cordoned.add(e["node"])
    else:
        w.cordoned.discard(e["node"])


def _model_added(w: World, e: Event) -> None:
    w.models[e["model"]] = e


def _limits(w: World, e: Event) -> None:
    w.limits = e


def _controller_down(w: World, e: Event) -> None:
    if w.controller_down_since_s is None:
        w.controller_down_since_s = float(e["t"])


def _controller_up(w: World, e: Event) -> None:
    if w.controller_down_since_s is not None:
        w.controller_down_total_s += float(e["t"]) - w.controller_down_since_s
        w.controller_down_since_s = None


_HANDLERS = {
    "node_added": _node_added,
    "model_added": _model_added,
    "limits": _limits,
    "controller_down": _controller_down,
    "controller_up": _controller_up,
    "provider_created": _provider_created,
    "bind": _bind,
    "unbind": _unbind,
    "provider_deleting": _provider_deleting,
    "provider_deleted": _provider_deleted,
    "launcher_ready": _launcher_ready,
    "launcher_crashed": _launcher_crashed,
    "routing": _routing,
    "requester_created": _requester_created,
    "requester_scheduled": _requester_scheduled,
    "requester_deleting": _requester_deleting,
    "requester_deleted": _requester_deleted,
    "ready": _ready,
    "unready": _ready,
    "node_lost": _node_lost,
    "node_cordoned": _cordon,
    "node_uncordoned": _cordon,
}


def concerned(e: Event, world: World) -> list[str]:
    """The requesters whose readiness or engine ``e`` may change (looked up before it)."""
    if "requester" in e and e["kind"] != "bind":
        return [e["requester"]]
    provider = world.providers.get(e.get("provider", ""))
    if e["kind"] == "bind":
        return [e["requester"]]
    if provider is not None and provider.bound_to is not None:
        return [provider.bound_to]
    return []


class Checker:
    """One invariant: looks at every event before and after the world applies it, and at the
    end (``now_s``: how far time has got, perhaps past the last event)."""

    name = "invariant"

    def __init__(self) -> None:
        self.violations: list[Violation] = []

    def breach(self, t: float, **ids: Any) -> None:
        self.violations.append({"t": t, "invariant": self.name, **ids})

    def before(self, e: Event, world: World) -> None:
        """``e`` is about to be applied."""

    def after(self, e: Event, world: World) -> None:
        """``e`` has been applied."""

    def finish(self, world: World, now_s: float) -> None:
        """The trace ends; time is ``now_s``."""


class Overdue:
    """Requesters in a state the controller must end within ``World.grace_s`` of its own
    running time (a stretch while it is down does not count): since when each has been in it,
    and a breach of ``checker`` for each that lasts longer (once per stretch)."""

    def __init__(self, checker: Checker, why: str) -> None:
        self._checker = checker
        self._why = why
        self._since: dict[str, float] = {}
        """Requester UID -> the controller's time (``World.controller_time_s``) it began."""

    def mark(self, uid: str, wrong: bool, world: World) -> None:
        """Whether ``uid`` is in the state now."""
        if wrong:
            self._since.setdefault(uid, world.controller_time_s(world.now_s))
        else:
            self._since.pop(uid, None)

    def judge(self, world: World, now_s: float) -> None:
        if not self._since:
            return
        grace_s = world.grace_s
        running_s = world.controller_time_s(now_s)
        for uid, since_s in list(self._since.items()):
            if running_s - since_s > grace_s:
                self._checker.breach(
                    round(world.wall_time_s(since_s + grace_s), 6),
                    requester=uid,
                    why=self._why.format(grace_s=f"{grace_s:g}"),
                )
                del self._since[uid]


def run(
    checkers: Sequence[Checker], events: Iterable[Event], *, now_s: float | None = None
) -> list[Violation]:
    """Replay ``events`` once past every checker; their breaches, in time order."""
    world = World()
    for e in events:
        for checker in checkers:
            checker.before(e, world)
        world.apply(e)
        for checker in checkers:
            checker.after(e, world)
    end_s = world.now_s if now_s is None else max(now_s, world.now_s)
    for checker in checkers:
        checker.finish(world, end_s)
    found = [v for checker in checkers for v in checker.violations]
    return sorted(found, key=lambda v: (v["t"], v["invariant"]))
