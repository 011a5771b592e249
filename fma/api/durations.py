"""Durations in scenario files: a number of seconds, or a string with s/m/h/d units.

Units may be combined, largest first or not: ``"1h30m"``, ``"2d 6h"``, ``"90s"``.
"""

import re
from typing import Annotated

from pydantic import BeforeValidator

_NUMBER = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*$")
_PARTS = re.compile(r"^(?:\s*\d+(?:\.\d+)?\s*[smhd])+\s*$")
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")
_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration_s(value: object) -> float:
    """``90``, ``"90s"``, ``"1.5m"``, ``"2h"``, ``"1h30m"``, ``"1d"`` -> seconds.

    Raises ValueError for anything else (negative numbers, unknown units, booleans).
    """
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '10m'")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if isinstance(value, str):
        number = _NUMBER.match(value)
        if number:
            return float(number.group(1))
        if _PARTS.match(value):
            return sum(float(n) * _UNIT_S[unit] for n, unit in _PART.findall(value))
    raise ValueError(f"not a duration: {value!r} (use seconds, or units s, m, h, d as in 1h30m)")


Duration = Annotated[float, BeforeValidator(parse_duration_s)]
"""A pydantic field type: seconds, accepting ``"10m"`` or ``"1h30m"`` strings."""
