"""Invariant checkers over an event trace, outside the system they judge.

They replay ``events.jsonl`` (from the simulator or the operator) and report every breach as a
dict with the time, the invariant's name and the ids involved. They share no code with the
decisions, so a bug in the core cannot hide itself here.
"""

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

Event = dict[str, Any]
Violation = dict[str, Any]

_AWAKE_KINDS = {"instance_starting", "instance_awake", "instance_waking"}
_NOT_AWAKE_KINDS = {"instance_sleeping", "instance_deleted", "instance_stopped"}


def gpu_exclusive_awake(events: Iterable[Event]) -> list[Violation]:
    """No GPU is ever used by two instances that are starting, awake or waking at once."""
    holder: dict[str, str] = {}
    owned: dict[str, tuple[str, ...]] = {}
    violations: list[Violation] = []
    for e in events:
        kind = e["kind"]
        if kind not in _AWAKE_KINDS and kind not in _NOT_AWAKE_KINDS:
            continue
        key = f"{e['provider']}/{e['instance']}"
        if kind in _NOT_AWAKE_KINDS:
            for gpu in owned.pop(key, ()):
                if holder.get(gpu) == key:
                    del holder[gpu]
            continue
        gpus = tuple(e["gpus"])
        for gpu in gpus:
            other = holder.get(gpu)
            if other is not None and other != key:
                violations.append(
                    {
                        "t": e["t"],
                        "invariant": "gpu_exclusive_awake",
                        "gpu": gpu,
                        "instances": [other, key],
                    }
                )
            holder[gpu] = key
        owned[key] = gpus
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
                        {
                            "t": e["t"],
                            "invariant": "gpu_single_requester",
                            "gpu": gpu,
                            "requesters": [holder[gpu], e["requester"]],
                        }
                    )
                holder[gpu] = e["requester"]
                held[e["requester"]].append(gpu)
        elif e["kind"] == "requester_deleted":
            for gpu in held.pop(e["requester"], []):
                if holder.get(gpu) == e["requester"]:
                    del holder[gpu]
    return violations


def one_provider_per_requester(events: Iterable[Event]) -> list[Violation]:
    """A requester is bound to at most one provider, and that provider serves its GPUs."""
    bound_to: dict[str, str] = {}
    requester_of: dict[str, str] = {}
    violations: list[Violation] = []
    for e in events:
        if e["kind"] == "bind":
            uid, provider = e["requester"], e["provider"]
            if uid in bound_to and bound_to[uid] != provider:
                violations.append(
                    {
                        "t": e["t"],
                        "invariant": "one_provider_per_requester",
                        "requester": uid,
                        "providers": [bound_to[uid], provider],
                    }
                )
            bound_to[uid] = provider
            requester_of[provider] = uid
        elif e["kind"] in ("unbind", "provider_deleted"):
            uid = requester_of.pop(e["provider"], None)
            if uid is not None:
                bound_to.pop(uid, None)
    return violations


CHECKERS = (gpu_exclusive_awake, gpu_single_requester, one_provider_per_requester)


def check_all(events: list[Event]) -> list[Violation]:
    """Every breach of every invariant, in time order."""
    found = [v for checker in CHECKERS for v in checker(events)]
    return sorted(found, key=lambda v: (v["t"], v["invariant"]))
