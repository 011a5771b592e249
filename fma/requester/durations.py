"""Durations as Go's ``time.ParseDuration`` writes them (``10s``, ``500ms``, ``1m30s``), or plain
seconds (``10``, ``2.5``), for flags that upstream's requester takes as Go durations.

Units: ``ns``, ``us`` (or ``µs``), ``ms``, ``s``, ``m``, ``h``. No sign is accepted: every
duration here is a timeout, and a negative one means nothing.
"""

import re
from typing import Final

_UNIT_S: Final = {
    "ns": 1e-9,
    "us": 1e-6,
    "\u00b5s": 1e-6,  # MICRO SIGN, as Go accepts it
    "\u03bcs": 1e-6,  # GREEK SMALL LETTER MU, as Go accepts it
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_NUMBER: Final = r"(?:\d+(?:\.\d*)?|\.\d+)"
_PLAIN_SECONDS_RE: Final = re.compile(_NUMBER)
_TERM_RE: Final = re.compile(rf"({_NUMBER})(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")
_GO_DURATION_RE: Final = re.compile(rf"(?:{_TERM_RE.pattern})+")
TEXT_CHARS_MAX: Final = 64


def parse_duration_s(text: str) -> float:
    """The duration ``text`` names, in seconds; raises ``ValueError`` saying what is accepted."""
    value = text.strip()
    if len(value) > TEXT_CHARS_MAX:
        raise ValueError(f"a duration has at most {TEXT_CHARS_MAX} characters")
    if _PLAIN_SECONDS_RE.fullmatch(value):
        return float(value)
    if _GO_DURATION_RE.fullmatch(value):
        return sum(float(number) * _UNIT_S[unit] for number, unit in _TERM_RE.findall(value))
    raise ValueError(f"{text!r} is not a duration (like 10s, 500ms, 1m30s, or seconds)")
