"""The :class:`~fma.control.ports.Scheduler` port on an asyncio event loop, for the operator.

Time is the Unix epoch (the core compares it with Kubernetes timestamps); timers are the
loop's own (``call_later`` on its monotonic clock), so a wall-clock step does not fire or
delay them.
"""

import asyncio
import time
from collections.abc import Callable


class AsyncioScheduler:
    """``now_s`` in epoch seconds; ``call_later`` on the running loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self._loop = loop

    def now_s(self) -> float:
        return time.time()

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> None:
        loop = self._loop or asyncio.get_running_loop()
        loop.call_later(max(0.0, delay_s), fn)
