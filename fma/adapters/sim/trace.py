"""The event trace of a simulation: one JSON object per line in ``events.jsonl``.

Every record has ``t`` (simulated seconds, rounded to microseconds so the file is the same
byte for byte on every machine), ``kind`` and the ids it concerns. The schema is in
``docs/events.md``; the invariant checkers and reports read only this trace.
"""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

Event = dict[str, Any]


class Trace:
    """An append-only list of events, in the order they happened."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def record(self, t: float, kind: str, **ids: Any) -> None:
        self.events.append({"t": round(t, 6), "kind": kind, **ids})

    def __iter__(self) -> Iterator[Event]:
        return iter(self.events)

    def __len__(self) -> int:
        return len(self.events)

    def write_jsonl(self, path: Path) -> None:
        with path.open("w", encoding="utf-8") as out:
            for event in self.events:
                out.write(json.dumps(event, separators=(",", ":")) + "\n")


def read_jsonl(path: Path) -> list[Event]:
    """Read an ``events.jsonl`` file written by the simulator or the operator."""
    with path.open(encoding="utf-8") as src:
        return [json.loads(line) for line in src if line.strip()]
