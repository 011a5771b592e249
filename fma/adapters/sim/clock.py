"""Calling a function later in simulated time, for the cost of one scheduled SimPy event.

Most of what the simulated cluster waits for is "call this in *d* seconds": a Pod start, a
copy's end, a watch delivery. ``env.timeout(d).callbacks.append(...)`` does it with a full
:class:`simpy.Timeout` and a closure per call; :func:`call_later` schedules a bare object that
carries the function, which SimPy's loop processes the same way (it reads only an event's
``callbacks`` and ``_ok``) and in the same order (scheduling draws the same event number), so
runs stay identical.
"""

from collections.abc import Callable

import simpy
from simpy.events import NORMAL


class _Call:
    """The least a scheduled event needs: its callbacks, and that it succeeded."""

    __slots__ = ("callbacks", "fn")
    _ok = True

    def __init__(self, fn: Callable[[], object]) -> None:
        self.fn = fn
        self.callbacks = _FIRE


def _fire(call: _Call) -> None:
    call.fn()


_FIRE = [_fire]
"""Shared: SimPy sets an event's ``callbacks`` to None once processed, never changes the list."""


def call_later(env: simpy.Environment, delay_s: float, fn: Callable[[], object]) -> None:
    """Call ``fn()`` after ``delay_s`` (>= 0) of simulated time, after the events already due
    then."""
    if delay_s < 0:
        raise ValueError(f"negative delay {delay_s}")
    env.schedule(_Call(fn), NORMAL, delay_s)  # type: ignore[arg-type]
