"""Liveness and leaks, once faults are over.

- :func:`liveness` — after ``faults_off``, every scheduled requester becomes ready (or fails
  with a status because its model cannot fit its GPUs, or is deleted) within ``bound_s``, and
  every deletion completes within ``bound_s``;
- :func:`nothing_leaked` — when the run is ``quiescent``, nothing is left but sleepers and the
  launchers the population policy wants.
"""

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from fma.bench.invariants.replay import Event, Violation

_INSTANCE_KINDS = frozenset(
    {
        "instance_starting",
        "instance_awake",
        "instance_waking",
        "instance_falling_asleep",
        "instance_sleeping",
        "instance_stopping",
        "instance_stopped",
        "instance_deleted",
    }
)


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
        self.model_need: dict[str, tuple[int, float]] = {}
        """Model -> (weights per GPU, share of a GPU its engine may claim)."""

    def fits(self, uid: str) -> bool:
        """Whether the requester's model share fits what its engine may claim of a GPU of its
        node (True when unknown)."""
        need = self.model_need.get(self.model.get(uid, ""))
        memory = self.node_memory.get(self.node.get(uid, ""))
        if need is None or memory is None:
            return True
        share, utilization = need
        return share <= utilization * memory

    def replay(self, e: Event) -> None:
        kind, t = e["kind"], e["t"]
        if kind == "node_added":
            self.node_memory[e["node"]] = e["gpu_memory_bytes"]
        elif kind == "model_added":
            share = e["bytes"] // max(1, e["gpus"])
            self.model_need[e["model"]] = (share, float(e.get("utilization", 1.0)))
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
