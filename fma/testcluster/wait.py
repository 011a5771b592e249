"""Bounded polling: wait for a condition with a deadline, never an open-ended sleep."""

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(TimeoutError):
    """The condition did not hold before the deadline; the message names what was awaited."""


def wait_until(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.1,
    max_interval: float = 1.0,
) -> T:
    """Call ``probe`` until it returns something other than ``None`` or ``False``; return it.

    Polls at ``interval`` seconds, backing off to ``max_interval``. Raises
    :class:`WaitTimeout` saying ``what`` was awaited once ``timeout`` seconds have passed.
    Exceptions from ``probe`` propagate (a probe that expects transient errors catches them).
    """
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result is not None and result is not False:
            return result
        now = time.monotonic()
        if now >= deadline:
            raise WaitTimeout(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(min(interval, deadline - now))
        interval = min(interval * 1.5, max_interval)
