"""Sleep and wake lines of an engine's log (vLLM's, and the stub engine's in vLLM's format).

vLLM logs, at the end of a level-1 sleep and of a wake::

    (EngineCore pid=7) INFO 01-02 03:04:05 [abstract.py:391] It took 0.51 seconds to fall asleep.
    (EngineCore pid=7) INFO 01-02 03:04:09 [abstract.py:409] It took 0.30 seconds to wake up ...

The timestamp is ``MM-DD HH:MM:SS`` (optionally ``.mmm``), in the engine's local time, without
a year; llm-d-benchmark's harness reads it in its own local time, and so does this module (the
year is given). A line is the *end* of the move; it began ``took_s`` earlier. An engine's start
is its ``non-default args:`` line (the harness's start marker).
"""

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from fma.launcher.vllm_lines import SLEEP_RE, STAMP_FORMAT, STAMP_RE, START_MARKER, WAKE_RE

_FORMAT = "%Y-" + STAMP_FORMAT


@dataclass(frozen=True, slots=True)
class Move:
    """One sleep or wake: when it ended (Unix seconds) and how long it took."""

    kind: Literal["sleep", "wake"]
    ended_s: float
    took_s: float

    @property
    def started_s(self) -> float:
        return self.ended_s - self.took_s


def stamp_s(line: str, *, year: int, zone: dt.tzinfo | None = None) -> float | None:
    """The line's timestamp in Unix seconds, read in ``zone`` (None: local time); None when
    it has none."""
    match = STAMP_RE.search(line)
    if match is None:
        return None
    text = match.group(0)
    try:
        moment = dt.datetime.strptime(f"{year}-{text}", _FORMAT + (".%f" if "." in text else ""))
    except ValueError:  # a day that does not exist in that year
        return None
    return moment.replace(tzinfo=zone).timestamp() if zone else moment.timestamp()


def moves(text: str, *, year: int, zone: dt.tzinfo | None = None) -> list[Move]:
    """The sleeps and wakes of a log, in log order. Timestamps are read in ``zone`` (None:
    this machine's local time) in ``year``; lines without one are skipped."""
    found: list[Move] = []
    for line in text.splitlines():
        for kind, pattern in (("sleep", SLEEP_RE), ("wake", WAKE_RE)):
            match = pattern.search(line)
            if match is None:
                continue
            ended_s = stamp_s(line, year=year, zone=zone)
            if ended_s is not None:
                found.append(Move(kind, ended_s, float(match.group(1))))  # type: ignore[arg-type]
    return found


def starts(text: str, *, year: int, zone: dt.tzinfo | None = None) -> list[float]:
    """When the engine started (its ``non-default args:`` lines), in log order."""
    found = (
        stamp_s(line, year=year, zone=zone) for line in text.splitlines() if START_MARKER in line
    )
    return [t for t in found if t is not None]
