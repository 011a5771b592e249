"""Transfers sharing a node's links, max-min fairly, in simulated time.

A wake, a sleep or a load moves bytes along a path of a node's topology
(:mod:`fma.adapters.sim.topology`), at most at its own rate (``cap``: what the software doing
the copy achieves alone). Transfers that cross one link share it: the rates are the max-min
fair allocation (progressive filling: every transfer's rate grows together until a link is
full or the transfer reaches its cap; those are fixed and the rest go on), recomputed whenever
a transfer starts or ends. Between those moments every rate is constant, so one scheduled
event — the next transfer to finish — is all a node's transfers cost; an event made stale by
a later change is ignored when it comes.
"""

import math
from collections.abc import Callable, Mapping
from functools import partial

import simpy

from fma.adapters.sim.clock import call_later
from fma.adapters.sim.topology import Edge

DONE_BYTES = 1.0
"""A transfer with less than this left is done (what float rounding leaves)."""


class Transfer:
    """``remaining`` bytes along ``edges``, at most ``cap`` bytes per second; ``rate`` now."""

    __slots__ = ("cap", "edges", "on_done", "rate", "remaining")

    def __init__(
        self, edges: tuple[Edge, ...], nbytes: float, cap: float, on_done: Callable[[], None]
    ) -> None:
        self.edges = edges
        self.remaining = float(nbytes)
        self.cap = cap
        self.on_done = on_done
        self.rate = 0.0


class Links:
    """The transfers under way on one node (see the module docstring)."""

    def __init__(self, env: simpy.Environment, capacity: Mapping[Edge, float]) -> None:
        self.env = env
        self.capacity = capacity
        self.active: list[Transfer] = []
        self._since_s = 0.0
        self._token = 0

    def start(
        self, edges: tuple[Edge, ...], nbytes: float, cap: float, on_done: Callable[[], None]
    ) -> Transfer:
        """Start moving ``nbytes`` along ``edges``; ``on_done()`` is called when they are there."""
        transfer = Transfer(edges, nbytes, cap, on_done)
        self._advance()
        self.active.append(transfer)
        self._reshare()
        return transfer

    def cancel(self, transfer: Transfer) -> None:
        """Stop a transfer (its engine is gone); the others get its share."""
        if transfer in self.active:
            self._advance()
            self.active.remove(transfer)
            self._reshare()

    # --- time ------------------------------------------------------------------------------------

    def _advance(self) -> None:
        """Bring every transfer's remaining bytes up to now."""
        now_s = float(self.env.now)
        elapsed_s = now_s - self._since_s
        if elapsed_s > 0:
            for transfer in self.active:
                transfer.remaining -= transfer.rate * elapsed_s
        self._since_s = now_s

    def _reshare(self) -> None:
        share(self.active, self.capacity)
        self._token += 1
        if not self.active:
            return
        due_s = min(t.remaining / t.rate if t.rate > 0 else math.inf for t in self.active)
        if math.isfinite(due_s):
            call_later(self.env, max(0.0, due_s), partial(self._due, self._token))

    def _due(self, token: int) -> None:
        if token != self._token:
            return  # the transfers changed since this was scheduled
        self._advance()
        done = [t for t in self.active if t.remaining < DONE_BYTES]
        self.active = [t for t in self.active if t.remaining >= DONE_BYTES]
        self._reshare()
        for transfer in done:
            transfer.on_done()


def share(transfers: list[Transfer], capacity: Mapping[Edge, float]) -> None:
    """Set each transfer's ``rate``: the max-min fair allocation of the links' ``capacity``
    (bytes per second) among them, none above its own ``cap``."""
    users: dict[Edge, list[Transfer]] = {}
    for t in transfers:
        t.rate = -1.0  # not fixed yet
        for edge in t.edges:
            users.setdefault(edge, []).append(t)
    left = {edge: capacity[edge] for edge in users}
    unfixed = list(transfers)
    while unfixed:
        level = min(t.cap for t in unfixed)
        for edge, on in users.items():
            count = sum(1 for t in on if t.rate < 0)
            if count:
                level = min(level, left[edge] / count)
        level = max(0.0, level)
        fixed = [t for t in unfixed if t.cap <= level * (1 + 1e-12)]
        for edge, on in users.items():
            count = sum(1 for t in on if t.rate < 0)
            if count and left[edge] / count <= level * (1 + 1e-12):
                fixed += [t for t in on if t.rate < 0 and t not in fixed]
        for t in fixed:
            t.rate = level
            for edge in t.edges:
                left[edge] -= level
        unfixed = [t for t in unfixed if t.rate < 0]
