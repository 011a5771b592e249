"""Invariant checkers over an event trace, outside the system they judge.

They replay ``events.jsonl`` (from the simulator or the operator; schema in ``docs/events.md``)
and report every breach as a dict with the time ``t``, the invariant's name and the ids
involved. They share no code with the decisions, so a bug in the core cannot hide itself here.
Capacities come from the trace's inventory records (``node_added``, ``model_added``); a checker
that needs them and finds none judges nothing.

Safety, at every moment:

- :func:`gpu_exclusive_awake` — no GPU is used by two starting, waking or awake instances;
- :func:`gpu_memory_fits` — no GPU's memory is oversubscribed by awake instances;
- :func:`gpu_single_requester` — no GPU is held by two requesters;
- :func:`one_provider_per_requester` — at most one provider per requester, on the requester's
  node, running the requester's GPUs;
- :func:`host_memory_fits` — sleepers never hold more than a node's host memory;
- :func:`ready_only_when_awake` — readiness is relayed only while the bound instance is awake
  (an asleep engine refuses inference).

Liveness and leaks, once faults are over:

- :func:`liveness` — after ``faults_off``, every scheduled requester becomes ready (or fails
  with a status because its model cannot fit its GPUs, or is deleted) within ``bound_s``, and
  every deletion completes within ``bound_s``;
- :func:`nothing_leaked` — when the run is ``quiescent``, nothing is left but sleepers and the
  launchers the population policy wants.
"""

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any

Event = dict[str, Any]
Violation = dict[str, Any]
Checker = Callable[[Sequence[Event]], list[Violation]]

_AWAKE_KINDS = frozenset({"instance_starting", "instance_awake", "instance_waking"})
_GONE_KINDS = frozenset({"instance_deleted", "instance_stopped"})
_INSTANCE_KINDS = _AWAKE_KINDS | _GONE_KINDS | {"instance_sleeping"}


def _key(e: Event) -> str:
    return f"{e['provider']}/{e['instance']}"


def _breach(e: Event, invariant: str, **ids: Any) -> Violation:
    return {"t": e["t"], "invariant": invariant, **ids}


def gpu_exclusive_awake(events: Iterable[Event]) -> list[Violation]:
    """No GPU is ever used by two instances that are starting, awake or waking at once."""
    holder: dict[str, str] = {}
    owned: dict[str, tuple[str, ...]] = {}
    violations: list[Violation] = []
    for e in events:
        kind = e["kind"]
        if kind not in _INSTANCE_KINDS:
            continue
        key = _key(e)
        if kind not in _AWAKE_KINDS:
            for gpu in owned.pop(key, ()):
                if holder.get(gpu) == key:
                    del holder[gpu]
            continue
        gpus = tuple(e["gpus"])
        for gpu in gpus:
            other = holder.get(gpu)
            if other is not None and other != key:
                violations.append(
                    _breach(e, "gpu_exclusive_awake", gpu=gpu, instances=[other, key])
                )
            holder[gpu] = key
        owned[key] = gpus
    return violations


def gpu_memory_fits(events: Iterable[Event]) -> list[Violation]:
    """The weights of the awake (starting, waking) instances on a GPU fit its memory."""
    capacity: dict[str, int] = {}
    used: dict[str, int] = defaultdict(int)
    awake: dict[str, tuple[tuple[str, ...], int]] = {}
    violations: list[Violation] = []
    for e in events:
        kind = e["kind"]
        if kind == "node_added":
            for gpu in e["gpus"]:
                capacity[gpu] = e["gpu_memory_bytes"]
            continue
        if kind not in _INSTANCE_KINDS:
            continue
        key = _key(e)
        previous = awake.pop(key, None)
        if previous is not None:
            for gpu in previous[0]:
                used[gpu] -= previous[1]
        if kind not in _AWAKE_KINDS:
            continue
        gpus = tuple(e["gpus"])
        share = e["bytes"] // max(1, len(gpus))
        awake[key] = (gpus, share)
        for gpu in gpus:
            used[gpu] += share
            if gpu in capacity and used[gpu] > capacity[gpu]:
                violations.append(
                    _breach(
                        e, "gpu_memory_fits", gpu=gpu, used_bytes=used[gpu], memory=capacity[gpu]
                    )
                )
    return violations


def gpu_single_requester(events: Iterable[Event]) -> list[Violation]:
    """No GPU is held by two requesters at once (what the scheduler promises)."""
    holder: dict[str, str] = {}
    held: dict[str, list[str]] = defaultdict(list)
    violations: list[Violation] = []
    for e in events:
        if e["kind"] == "requester_scheduled":
            for gpu in e["gpus"]:
                if gpu in holder:
                    violations.append(
                        _breach(
                            e,
                            "gpu_single_requester",
                            gpu=gpu,
                            requesters=[holder[gpu], e["requester"]],
                        )
                    )
                holder[gpu] = e["requester"]
                held[e["requester"]].append(gpu)
        elif e["kind"] == "requester_deleted":
            for gpu in held.pop(e["requester"], []):
                if holder.get(gpu) == e["requester"]:
                    del holder[gpu]
    return violations


def one_provider_per_requester(events: Iterable[Event]) -> list[Violation]:
    """A requester is bound to at most one provider, on its node, serving its GPUs."""
    bound_to: dict[str, str] = {}
    bound_instance: dict[str, str | None] = {}
    requester_of: dict[str, str] = {}
    provider_node: dict[str, str] = {}
    placed: dict[str, tuple[str, frozenset[str]]] = {}
    violations: list[Violation] = []
    for e in events:
        kind = e["kind"]
        if kind == "requester_scheduled":
            placed[e["requester"]] = (e.get("node", ""), frozenset(e["gpus"]))
        elif kind == "provider_created":
            provider_node[e["provider"]] = e["node"]
        elif kind == "bind":
            violations.extend(_check_bind(e, bound_to, requester_of, provider_node, placed))
            bound_to[e["requester"]] = e["provider"]
            requester_of[e["provider"]] = e["requester"]
            bound_instance[e["provider"]] = e.get("instance")
        elif kind in ("unbind", "provider_deleted"):
            uid = requester_of.pop(e["provider"], None)
            bound_instance.pop(e["provider"], None)
            if uid is not None and bound_to.get(uid) == e["provider"]:
                del bound_to[uid]
        elif kind in _AWAKE_KINDS:
            uid = requester_of.get(e["provider"])
            if uid is None or bound_instance.get(e["provider"]) != e["instance"]:
                continue
            if uid in placed and frozenset(e["gpus"]) != placed[uid][1]:
                violations.append(
                    _breach(
                        e,
                        "provider_runs_requester_gpus",
                        requester=uid,
                        provider=e["provider"],
                        gpus=sorted(e["gpus"]),
                        expected=sorted(placed[uid][1]),
                    )
                )
    return violations


def _check_bind(
    e: Event,
    bound_to: dict[str, str],
    requester_of: dict[str, str],
    provider_node: dict[str, str],
    placed: dict[str, tuple[str, frozenset[str]]],
) -> list[Violation]:
    uid, provider = e["requester"], e["provider"]
    found: list[Violation] = []
    if uid in bound_to and bound_to[uid] != provider:
        found.append(
            _breach(
                e, "one_provider_per_requester", requester=uid, providers=[bound_to[uid], provider]
            )
        )
    other = requester_of.get(provider)
    if other is not None and other != uid:
        found.append(
            _breach(e, "one_requester_per_provider", provider=provider, requesters=[other, uid])
        )
    node = provider_node.get(provider)
    if uid in placed and node is not None and node != placed[uid][0]:
        found.append(
            _breach(
                e,
                "provider_on_requester_node",
                requester=uid,
                provider=provider,
                node=node,
                expected=placed[uid][0],
            )
        )
    return found


def host_memory_fits(events: Iterable[Event]) -> list[Violation]:
    """The weights of a node's sleeping instances fit its host memory."""
    capacity: dict[str, int] = {}
    used: dict[str, int] = defaultdict(int)
    sleeping: dict[str, tuple[str, int]] = {}
    violations: list[Violation] = []
    for e in events:
        kind = e["kind"]
        if kind == "node_added":
            capacity[e["node"]] = e["host_memory_bytes"]
            continue
        if kind not in _INSTANCE_KINDS:
            continue
        key = _key(e)
        previous = sleeping.pop(key, None)
        if previous is not None:
            used[previous[0]] -= previous[1]
        if kind != "instance_sleeping":
            continue
        node = e["node"]
        sleeping[key] = (node, e["bytes"])
        used[node] += e["bytes"]
        if node in capacity and used[node] > capacity[node]:
            violations.append(
                _breach(
                    e, "host_memory_fits", node=node, used_bytes=used[node], memory=capacity[node]
                )
            )
    return violations


def ready_only_when_awake(events: Iterable[Event]) -> list[Violation]:
    """A requester is made ready only while the instance bound to it is awake: an asleep (or
    starting) engine answers no inference, so readiness must not say otherwise."""
    bound: dict[str, tuple[str, str | None]] = {}
    state: dict[str, str] = {}
    violations: list[Violation] = []
    for e in events:
        kind = e["kind"]
        if kind == "bind":
            bound[e["requester"]] = (e["provider"], e.get("instance"))
        elif kind in ("unbind", "requester_deleted"):
            bound.pop(e["requester"], None)
        elif kind in _INSTANCE_KINDS:
            state[_key(e)] = kind
        elif kind == "ready":
            provider, instance = bound.get(e["requester"], ("", None))
            now = state.get(f"{provider}/{instance}")
            if now != "instance_awake":
                violations.append(
                    _breach(
                        e,
                        "ready_only_when_awake",
                        requester=e["requester"],
                        provider=provider or None,
                        instance_state=now,
                    )
                )
    return violations


# --- liveness --------------------------------------------------------------------------------


class _Lives:
    """What liveness needs to know of each requester, replayed from the trace."""

    def __init__(self) -> None:
        self.model: dict[str, str] = {}
        self.node: dict[str, str] = {}
        self.scheduled_s: dict[str, float] = {}
        self.settled_s: dict[str, float] = {}
        self.deleting_s: dict[str, float] = {}
        self.deleted_s: dict[str, float] = {}
        self.node_memory: dict[str, int] = {}
        self.model_need: dict[str, int] = {}

    def fits(self, uid: str) -> bool:
        """Whether the requester's model share fits a GPU of its node (True when unknown)."""
        need = self.model_need.get(self.model.get(uid, ""))
        memory = self.node_memory.get(self.node.get(uid, ""))
        return need is None or memory is None or need <= memory

    def replay(self, e: Event) -> None:
        kind, t = e["kind"], e["t"]
        if kind == "node_added":
            self.node_memory[e["node"]] = e["gpu_memory_bytes"]
        elif kind == "model_added":
            self.model_need[e["model"]] = e["bytes"] // max(1, e["gpus"])
        elif kind == "requester_created":
            self.model[e["requester"]] = e["model"]
        elif kind == "requester_scheduled":
            self.scheduled_s[e["requester"]] = t
            self.node[e["requester"]] = e["node"]
        elif kind == "ready" or (
            kind == "status" and e["errors"] and not self.fits(e["requester"])
        ):
            self.settled_s.setdefault(e["requester"], t)
        elif kind == "requester_deleting":
            self.settled_s.setdefault(e["requester"], t)
            self.deleting_s.setdefault(e["requester"], t)
        elif kind == "requester_deleted":
            self.settled_s.setdefault(e["requester"], t)
            self.deleted_s.setdefault(e["requester"], t)


def liveness(events: Sequence[Event]) -> list[Violation]:
    """After ``faults_off``, requesters settle and deletions complete within ``bound_s``.

    A scheduled requester settles when it becomes ready, is being deleted, or — when its model
    cannot fit its node's GPUs — carries an error status. Its clock starts at the later of
    ``faults_off`` and its scheduling; a deletion's at the later of ``faults_off`` and its
    start. Deadlines past the end of the trace are not judged.
    """
    off = next((e for e in events if e["kind"] == "faults_off"), None)
    if off is None:
        return []
    t_off, bound_s, end_s = off["t"], off["bound_s"], events[-1]["t"]
    lives = _Lives()
    for e in events:
        lives.replay(e)
    violations: list[Violation] = []
    checks = (
        ("requester_ready", lives.scheduled_s, lives.settled_s),
        ("requester_deleted", lives.deleting_s, lives.deleted_s),
    )
    for expected, since, done in checks:
        for uid, since_s in since.items():
            due_s = max(t_off, since_s) + bound_s
            done_s = done.get(uid)
            late = done_s > due_s if done_s is not None else due_s <= end_s
            if late:
                violations.append(
                    {
                        "t": round(due_s, 6),
                        "invariant": "liveness",
                        "requester": uid,
                        "expected": expected,
                        "bound_s": bound_s,
                    }
                )
    return sorted(violations, key=lambda v: (v["t"], v["requester"]))


# --- leaks -----------------------------------------------------------------------------------


def nothing_leaked(events: Sequence[Event]) -> list[Violation]:
    """At ``quiescent``: no requester, no bound or deleting provider, no instance but sleepers,
    no empty direct provider, and no more empty launchers on a node than it wants."""
    quiet = next((e for e in events if e["kind"] == "quiescent"), None)
    if quiet is None:
        return []
    requesters: set[str] = set()
    providers: dict[str, dict[str, Any]] = {}
    instances: dict[str, dict[str, str]] = {}
    wanted: dict[str, int] = {}
    for e in events:
        if e is quiet:
            break
        _replay_objects(e, requesters, providers, instances, wanted)
    found: list[Violation] = [
        {"t": quiet["t"], "invariant": "nothing_leaked", "requester": uid}
        for uid in sorted(requesters)
    ]
    empty_launchers: dict[str, int] = defaultdict(int)
    for name, p in providers.items():
        held = instances.get(name, {})
        leaked = {iid: s for iid, s in held.items() if s != "instance_sleeping"}
        problem = None
        if p["deleting"] or p["bound"]:
            problem = "deleting" if p["deleting"] else "bound"
        elif leaked:
            problem = "instances not asleep: " + ", ".join(sorted(set(leaked.values())))
        elif not held and p["kind"] == "direct":
            problem = "direct provider without an instance"
        elif not held:
            empty_launchers[p["node"]] += 1
        if problem is not None:
            found.append(
                {"t": quiet["t"], "invariant": "nothing_leaked", "provider": name, "why": problem}
            )
    for node, count in sorted(empty_launchers.items()):
        if count > wanted.get(node, 0):
            found.append(
                {
                    "t": quiet["t"],
                    "invariant": "nothing_leaked",
                    "node": node,
                    "why": f"{count} empty launchers, {wanted.get(node, 0)} wanted",
                }
            )
    return found


def _replay_objects(
    e: Event,
    requesters: set[str],
    providers: dict[str, dict[str, Any]],
    instances: dict[str, dict[str, str]],
    wanted: dict[str, int],
) -> None:
    kind = e["kind"]
    if kind == "node_added":
        wanted[e["node"]] = e.get("launchers_wanted", 0)
    elif kind == "requester_created":
        requesters.add(e["requester"])
    elif kind == "requester_deleted":
        requesters.discard(e["requester"])
    elif kind == "provider_created":
        providers[e["provider"]] = {
            "node": e["node"],
            "kind": e["provider_kind"],
            "bound": False,
            "deleting": False,
        }
    elif kind == "provider_deleted":
        providers.pop(e["provider"], None)
        instances.pop(e["provider"], None)
    elif kind in ("bind", "unbind", "provider_deleting") and e["provider"] in providers:
        p = providers[e["provider"]]
        if kind == "provider_deleting":
            p["deleting"] = True
        else:
            p["bound"] = kind == "bind"
    elif kind == "instance_deleted":
        instances.get(e["provider"], {}).pop(e["instance"], None)
    elif kind in _INSTANCE_KINDS:
        instances.setdefault(e["provider"], {})[e["instance"]] = kind


CHECKERS: tuple[Checker, ...] = (
    gpu_exclusive_awake,
    gpu_memory_fits,
    gpu_single_requester,
    one_provider_per_requester,
    host_memory_fits,
    ready_only_when_awake,
    liveness,
    nothing_leaked,
)


def check_all(events: Sequence[Event]) -> list[Violation]:
    """Every breach of every invariant, in time order."""
    found = [v for checker in CHECKERS for v in checker(events)]
    return sorted(found, key=lambda v: (v["t"], v["invariant"]))
