"""The operator's event trace: ``events.jsonl`` as the simulator writes it (``docs/events.md``).

With ``fma operator run --trace FILE`` every decision applied and every change observed is
appended as one JSON line, ``t`` in Unix seconds, so the invariant checkers, ``fma sim
calibrate`` and the reports judge a live run exactly as a simulated one. Listeners (the
operator's metrics) get every record too. Without a file or a listener, recording costs
nothing.
"""

import json
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, Any


class OperatorTrace:
    """Appends events to a file (line-buffered, so a crash loses nothing already recorded)
    and hands each to ``listeners`` as ``(kind, ids)``."""

    def __init__(
        self,
        path: Path | None,
        clock: Callable[[], float],
        listeners: tuple[Callable[[str, Mapping[str, Any]], None], ...] = (),
    ) -> None:
        self._clock = clock
        self._listeners = listeners
        self._lock = threading.Lock()
        self._out: IO[str] | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._out = path.open("a", encoding="utf-8", buffering=1)

    @property
    def enabled(self) -> bool:
        return self._out is not None

    def record(self, kind: str, *, at_s: float | None = None, **ids: Any) -> None:
        """One event, at ``at_s`` (default: now). Records of one act share one time (a Pod
        created with its binding is bound in the instant it was created)."""
        for listener in self._listeners:
            listener(kind, ids)
        if self._out is None:
            return
        t = self._clock() if at_s is None else at_s
        line = json.dumps({"t": round(t, 6), "kind": kind, **ids}, default=str)
        with self._lock:
            self._out.write(line + "\n")

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None
